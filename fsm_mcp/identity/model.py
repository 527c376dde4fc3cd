"""The identity model: weights of evidence per comparison level (Fellegi–Sunter), and the
bands of match weight that make a pair `exact`, `likely` or `possible`.

A level's weight is log2(m/u): m, how often two records of one customer land on it; u, how
often two different customers do. The defaults are a reviewed file (`weights.toml`); `u`
is re-estimated from random pairs of the business's own customers (`estimate_u`), since
what a shared town or surname says depends on the base, and `m` from its candidate pairs by
expectation–maximisation (`em.fit_m`), since how a business's duplicates differ depends on how
its records were kept.
"""

from __future__ import annotations

import dataclasses
import math
import random
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

from fsm_mcp.identity.compare import LEVELS, compare, street_value
from fsm_mcp.identity.keys import Profile

_FLOOR = 1e-6  # no level is impossible by chance
TF_FIELDS = ("given", "family", "street", "locality")  # where one value is far commoner than another
_RARE_BOOST = 4.0  # a value too rare to count says at most 2 bits more than the level's average
REFERENCE_CUSTOMERS = 1000  # the base size the file's bands are for
MIN_LEARN = 1000  # below this many customers, frequencies learned from the base are noise: keep the file's


@dataclass(frozen=True, slots=True)
class Model:
    version: int
    m: dict[str, dict[str, float]]
    u: dict[str, dict[str, float]]
    bands: dict[str, float]
    sampled_pairs: int = 0  # random pairs u was estimated from; 0: the file's defaults
    # Term frequencies: field -> value -> its share of the sampled customers, for values common enough
    # to count. Agreeing on "smith" is likelier by chance than agreeing on "potempa", and says less.
    tf: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    customers: int = 0  # the base's size when trained; 0: not trained (the bands of the file's reference size)
    fitted_pairs: int = 0  # candidate pairs m was fitted on by EM; 0: the file's m
    # Each (field, level, owners, value)'s weight once computed: a duplicate search weighs the same few hundred
    # levels millions of times. Not an init field, so `replace` gives a new model a cache of its own; a model
    # is read-only once made (its m, u and tf are never changed in place).
    _weights: dict[tuple[str, str, int, str | None], float] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False)
    _bands: dict[int, dict[str, float]] = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    def bands_for(self, customers: int | None = None) -> dict[str, float]:
        """The bands for a base of this many customers. A pair of records, or a caller and a record,
        is one customer with prior odds of about 1 in N, so the match weight that makes a pair as sure
        grows by log2 N: one bit for each doubling of the base beyond the size the file's bands were
        reviewed at. Smaller bases keep the file's bands (their weights are the reviewed defaults).
        Worked out once per size (every pair scored asks): read the answer, never change it."""
        n = customers if customers is not None else self.customers
        found = self._bands.get(n)
        if found is None:
            rise = max(0.0, math.log2(max(1, n) / REFERENCE_CUSTOMERS))
            found = self._bands[n] = {band: value + rise for band, value in self.bands.items()}
        return found

    def weight(self, field: str, level: str, owners: int = 1, value: str | None = None) -> float:
        key = (field, level, owners, value)
        found = self._weights.get(key)
        if found is None:
            found = self._weights[key] = self._weight(field, level, owners, value)
        return found

    def _weight(self, field: str, level: str, owners: int, value: str | None) -> float:
        u = self.u[field][level]
        if field in ("phone", "email") and level == "exact" and self.customers > REFERENCE_CUSTOMERS:
            # Two strangers share a number or an address by chance about 1 in N times (a number is held by
            # a household, however large the base): u falls as the bands rise, and a shared line says as much.
            u *= REFERENCE_CUSTOMERS / self.customers
        if field == "phone" and level == "exact" and owners > 1:
            u = min(1.0, u * owners)  # a number several customers share agrees by chance that much more often
        elif value is not None and field in self.tf:
            u = max(self.tf[field].get(value, 0.0), u / _RARE_BOOST)
        return math.log2(self.m[field][level] / u)

    def total(self, levels: dict[str, str], owners: int = 1, values: dict[str, str] | None = None) -> float:
        values = values or {}
        weights, weight = self._weights, self.weight
        total = 0.0
        for f, level in levels.items():
            value = values.get(f)
            found = weights.get((f, level, owners, value))
            total += found if found is not None else weight(f, level, owners, value)
        return total

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "m": self.m, "u": self.u, "bands": self.bands,
                "sampled_pairs": self.sampled_pairs, "tf": self.tf, "customers": self.customers,
                "fitted_pairs": self.fitted_pairs}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Model:
        return cls(int(data["version"]), data["m"], data["u"], data["bands"], int(data.get("sampled_pairs", 0)),
                   data.get("tf", {}), int(data.get("customers", 0)), int(data.get("fitted_pairs", 0)))


@cache
def default_model() -> Model:
    raw = tomllib.loads(resources.files("fsm_mcp.identity").joinpath("weights.toml").read_text())
    m = {f: {level: float(raw[f][level]["m"]) for level in LEVELS[f]} for f in LEVELS}
    u = {f: {level: float(raw[f][level]["u"]) for level in LEVELS[f]} for f in LEVELS}
    return Model(int(raw["version"]), m, u, {k: float(v) for k, v in raw["bands"].items()})


def estimate_u(base: Model, profiles: Sequence[Profile], pairs: int = 40_000, seed: int = 0) -> Model:
    """u for each level as it occurs among random pairs of these customers (almost all of them two
    different people). A field seen on too few pairs, and the rare levels (a shared phone or e-mail
    between strangers), keep the file's value; no estimate falls to zero (Laplace smoothing, then a floor)."""
    if len(profiles) < MIN_LEARN:
        return base
    rng = random.Random(seed)
    counts: dict[str, Counter[str]] = {f: Counter() for f in LEVELS}
    for _ in range(pairs):
        a, b = rng.sample(range(len(profiles)), 2)
        for field, level in compare(profiles[a], profiles[b], {}, base.total).levels.items():
            counts[field][level] += 1
    u = {f: dict(levels) for f, levels in base.u.items()}
    for field, seen in counts.items():
        n = sum(seen.values())
        if n < 2_000 or field in ("phone", "email"):
            continue
        for level in LEVELS[field]:
            # Laplace smoothing keeps a level never seen in the sample possible; a level met by chance
            # more often than the file thought (everyone in one town) gets that higher u.
            u[field][level] = max(_FLOOR, (seen[level] + 1) / (n + len(LEVELS[field])))
    return replace(base, u=u, sampled_pairs=pairs, tf=term_frequencies(profiles))


def term_frequencies(profiles: Sequence[Profile], least: int = 3) -> dict[str, dict[str, float]]:
    """Each value's share of these customers, for values held by at least `least` of them (rarer ones
    are rare: the model's cap on their boost applies)."""
    counts: dict[str, Counter[str]] = {f: Counter() for f in TF_FIELDS}
    for p in profiles:
        if p.name and p.name.parts:
            counts["given"][p.name.given] += 1
            if p.name.family:
                counts["family"][p.name.family] += 1
        for address, _ in p.addresses[:1]:
            if address.street:
                counts["street"][street_value(address.street)] += 1
            if address.locality:
                counts["locality"][address.locality] += 1
    n = max(1, len(profiles))
    return {f: {v: round(c / n, 6) for v, c in seen.items() if c >= least} for f, seen in counts.items()}
