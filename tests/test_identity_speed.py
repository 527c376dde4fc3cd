"""The shortcuts identity takes for speed give the answers the plain computation gives, to the last bit."""

from __future__ import annotations

import math
import random
from dataclasses import replace

from fsm_mcp.identity import em
from fsm_mcp.identity.compare import LEVELS
from fsm_mcp.identity.model import Model, default_model


def _plain_em(model: Model, rows: list[dict[str, str]], iterations: int) -> tuple[dict[str, dict[str, float]], float]:
    """EM as it was written before each pattern's chance was worked out once per iteration."""
    fields = sorted({f for row in rows for f in row})
    m = {f: dict(model.m[f]) for f in fields}
    share, total = 0.2, 0.0
    for _ in range(iterations):
        counts = {f: dict.fromkeys(LEVELS[f], 0.0) for f in fields}
        total = 0.0
        for row in rows:
            odds = math.log(share / (1 - share)) + sum(math.log(m[f][lv] / model.u[f][lv]) for f, lv in row.items())
            p = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, odds))))
            total += p
            for f, lv in row.items():
                counts[f][lv] += p
        share = min(0.999, max(0.001, total / len(rows)))
        for f in fields:
            seen = sum(counts[f].values())
            for lv in LEVELS[f]:
                m[f][lv] = (counts[f][lv] + em.PRIOR * model.m[f][lv]) / (seen + em.PRIOR)
    return m, total


def _rows(rng: random.Random, count: int) -> list[dict[str, str]]:
    fields = ["house", "street", "locality", "postal", "region", "given", "family"]
    rows = []
    for _ in range(count):
        present = [f for f in fields if rng.random() < 0.8]
        rng.shuffle(present)  # a row's own field order is part of its pattern
        rows.append({f: rng.choice(LEVELS[f][:2] if rng.random() < 0.7 else LEVELS[f]) for f in present})
    return rows


def test_em_with_shared_patterns_matches_the_plain_loop_exactly() -> None:
    model = default_model()
    for seed in range(3):
        rows = _rows(random.Random(seed), 3000)
        assert em._em(model, rows, 25) == _plain_em(model, rows, 25)


def test_remembered_weights_are_the_computed_ones_and_each_model_has_its_own() -> None:
    model = replace(default_model(), customers=64_000, tf={"family": {"smith": 0.01}})
    cases = [("phone", "exact", 3, None), ("family", "exact", 1, "smith"), ("family", "exact", 1, "potempa"),
             ("street", "close", 1, None), ("given", "different", 1, None)]
    for case in cases:
        assert model.weight(*case) == model._weight(*case)
        assert model.weight(*case) == model._weight(*case)  # the second answer is the remembered one
    levels = {"given": "exact", "family": "exact", "street": "close"}
    assert model.total(levels, 1, {"family": "smith"}) == sum(
        model._weight(f, lv, 1, "smith" if f == "family" else None) for f, lv in levels.items())
    other = replace(model, m={f: {lv: v / 2 for lv, v in levels_.items()} for f, levels_ in model.m.items()})
    assert other.weight("street", "close") == other._weight("street", "close", 1, None) != model.weight("street", "close")
