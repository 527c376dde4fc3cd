"""The business's own identity model, stored with its customers: the default weights with
`u` re-estimated from random pairs of this base (see `identity/model.py`)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from fsm_mcp.directory.profiles import load_profiles
from fsm_mcp.identity.em import fit_m
from fsm_mcp.identity.model import Model, default_model, estimate_u
from fsm_mcp.store import directory as store

SAMPLE = 8_000  # customers drawn to pair at random; a larger base says nothing more about u


def load(conn: Any, tenant: str) -> Model:
    """The model this business's store holds (the defaults before its first training)."""
    text = store.model_text(conn, tenant)
    return default_model() if text is None else _parsed(text)


@lru_cache(maxsize=32)
def _parsed(text: str) -> Model:
    """A stored model parsed once, whichever store and business it is read from: keyed by what is stored, so two
    stores (or tenants) never share one by name alone, and a new training is a new text. Treat it as read-only."""
    return Model.from_json(json.loads(text))


def train(conn: Any, tenant: str, now: datetime) -> Model:
    """Re-estimate u from this base and store the model; lookups use it from their next call."""
    total = store.count_customers(conn, tenant, live=False)
    live = store.count_customers(conn, tenant)
    share = min(1.0, 1.5 * SAMPLE / max(1, total))  # a random share of the rows, without sorting them all
    profiles = list(load_profiles(conn, tenant, store.sample_live_ids(conn, tenant, share, SAMPLE)).values())
    model = replace(fit_m(estimate_u(default_model(), profiles, pairs=20_000), profiles), customers=live)
    store.save_model(conn, tenant, json.dumps(model.to_json(), sort_keys=True), now)
    return model
