"""The business's own identity model, stored with its customers: the default weights with
`u` re-estimated from random pairs of this base (see `identity/model.py`)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import datetime

from fsm_mcp.directory.customers import load_profiles
from fsm_mcp.identity.model import Model, default_model, estimate_u
from fsm_mcp.store.db import to_db

SAMPLE = 8_000  # customers drawn to pair at random; a larger base says nothing more about u

_loaded: dict[str, tuple[str, Model]] = {}  # tenant -> (stored text, model): parse once per training


def load(conn: sqlite3.Connection, tenant: str) -> Model:
    row = conn.execute("SELECT model FROM identity_model WHERE tenant_id=?", (tenant,)).fetchone()
    if row is None:
        return default_model()
    text = row[0]
    cached = _loaded.get(tenant)
    if cached is None or cached[0] != text:
        cached = _loaded[tenant] = (text, Model.from_json(json.loads(text)))
    return cached[1]


def train(conn: sqlite3.Connection, tenant: str, now: datetime) -> Model:
    """Re-estimate u from this base and store the model; lookups use it from their next call."""
    total = conn.execute("SELECT count(*) FROM customers WHERE tenant_id=?", (tenant,)).fetchone()[0]
    live = conn.execute("SELECT count(*) FROM customers WHERE tenant_id=? AND merged_into IS NULL", (tenant,)).fetchone()[0]
    share = min(1.0, 1.5 * SAMPLE / max(1, total))  # a random share of the rows, without sorting them all
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM customers WHERE tenant_id=? AND merged_into IS NULL AND abs(random()) % 1000000 < ? LIMIT ?",
        (tenant, int(share * 1_000_000), SAMPLE))]
    profiles = list(load_profiles(conn, tenant, ids).values())
    model = replace(estimate_u(default_model(), profiles, pairs=20_000), customers=live)
    conn.execute("INSERT INTO identity_model (tenant_id, model, trained_at) VALUES (?,?,?) "
                 "ON CONFLICT (tenant_id) DO UPDATE SET model=excluded.model, trained_at=excluded.trained_at",
                 (tenant, json.dumps(model.to_json(), sort_keys=True), to_db(now)))
    return model
