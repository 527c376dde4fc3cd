"""m fitted by expectation–maximisation over the base's own candidate pairs.

m, how often two records of one customer land on a level, depends on how a business's records
were kept: a list typed from forms carries slips, a vendor's sync almost none, and some lists
replace a given name outright. It is fitted from the pairs blocking finds, as Splink does, once
per family of blocking keys, leaving out the fields that family agrees on by construction
(pairs found by a shared name say nothing about how often one person's records share a name):

- pairs that share a name key fit m for the address fields;
- pairs that share an address key fit m for the names.

A phone's and an e-mail's m stay the file's: callers call from numbers a base's records never
show (people keep several), so how often duplicates in the base disagree on one says too little.

Within each family, EM fits the share of matches and m, with u held at what random pairs of the
base say (`estimate_u`): on fields outside the family's keys, strangers among the candidates
agree about as often as strangers anywhere, and a u fitted beside m lets EM explain a duplicate's
replaced name as two strangers sharing a surname. Each fitted m is blended with the file's, as so
many pairs' worth of prior, so a base with few duplicates keeps the reviewed values and no
level's m falls to zero.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from fsm_mcp.identity.compare import LEVELS, compare
from fsm_mcp.identity.keys import Profile, record_keys
from fsm_mcp.identity.model import MIN_LEARN, Model

ADDRESS = frozenset({"house", "street", "line2", "locality", "postal", "region"})
NAMES = frozenset({"given", "family"})
_FAMILIES = {  # key prefix -> (family, the fields it agrees on by construction)
    "n:": ("names", NAMES), "m:": ("names", NAMES),
    "a:": ("address", ADDRESS), "h:": ("address", ADDRESS), "l:": ("address", ADDRESS), "u:": ("address", ADDRESS),
}
MAX_BLOCK = 30  # a key shared by more records than this is a crowd: its pairs are mostly strangers
PRIOR = 50.0  # the file's m counts as this many matched pairs
MIN_MATCHES = 50  # fewer sure (or expected) matches than this in a family: too few duplicates to learn from
_FLOOR = 1e-4


def fit_m(model: Model, profiles: Sequence[Profile], iterations: int = 25, max_pairs: int = 200_000) -> Model:
    """The model with m fitted from these customers' candidate pairs; the file's m where they say too little,
    and in a base too small to learn from (as for u)."""
    if len(profiles) < MIN_LEARN:
        return model
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, profile in enumerate(profiles):
        for key in record_keys(profile):
            if key[:2] in _FAMILIES:
                blocks[key].append(i)
    pairs: dict[str, set[tuple[int, int]]] = {"names": set(), "address": set()}
    for key, members in blocks.items():
        if 2 <= len(members) <= MAX_BLOCK:
            family = _FAMILIES[key[:2]][0]
            pairs[family].update((a, b) for k, a in enumerate(members) for b in members[k + 1 :])
    m = {f: dict(levels) for f, levels in model.m.items()}
    fitted = 0
    for family, found in pairs.items():
        left_out = NAMES if family == "names" else ADDRESS
        rows = [{f: level for f, level in compare(profiles[a], profiles[b], {}, model.total).levels.items()
                 if f not in left_out}
                for a, b in sorted(found)[:max_pairs]]
        if sum(map(_sure, rows)) < MIN_MATCHES:
            continue  # too few pairs that are surely one customer: a base without duplicates to learn from
        learned, matches = _em(model, rows, iterations)
        if matches < MIN_MATCHES:
            continue
        fitted += len(rows)
        for field, levels in learned.items():
            if field in left_out or field in ("phone", "email"):
                continue  # a caller calls from numbers the base's records never show: the file's m stands
            for level, share in levels.items():
                m[field][level] = max(_FLOOR, share)
    return replace(model, m=m, fitted_pairs=fitted) if fitted else model


def _sure(row: dict[str, str]) -> bool:
    """Surely one customer whatever the weights: both names agree exactly, or the whole place does (a pair
    is in one family because it agrees on the other)."""
    if "given" in row or "family" in row:
        return row.get("given") in ("exact", "nickname") and row.get("family") == "exact"
    return row.get("house") == "exact" and "exact" in (row.get("street"), row.get("line2")) and \
        "exact" in (row.get("postal"), row.get("locality"))


def _em(model: Model, rows: list[dict[str, str]], iterations: int) -> tuple[dict[str, dict[str, float]], float]:
    """EM over these pairs' levels: the matches' m per level, blended with the file's, and how many
    matches the pairs hold by expectation."""
    if not rows:
        return {}, 0.0
    fields = sorted({f for row in rows for f in row})
    m = {f: dict(model.m[f]) for f in fields}
    share = 0.2
    total = 0.0
    keyed = [tuple(row.items()) for row in rows]  # a row's levels in its own order: the rows repeat a few patterns
    for _ in range(iterations):
        counts = {f: dict.fromkeys(LEVELS[f], 0.0) for f in fields}
        total = 0.0
        prior = math.log(share / (1 - share))
        chance: dict[tuple[tuple[str, str], ...], float] = {}  # each pattern's p, worked out once per iteration
        for items in keyed:
            p = chance.get(items)
            if p is None:
                odds = prior + sum(math.log(m[f][lv] / model.u[f][lv]) for f, lv in items)
                p = chance[items] = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, odds))))
            total += p  # added row by row, in order, as before: the same sums to the last bit
            for f, lv in items:
                counts[f][lv] += p
        share = min(0.999, max(0.001, total / len(rows)))
        for f in fields:
            seen = sum(counts[f].values())
            for lv in LEVELS[f]:  # blended with the file's m as PRIOR matched pairs: stable where matches are few
                m[f][lv] = (counts[f][lv] + PRIOR * model.m[f][lv]) / (seen + PRIOR)
    return m, total
