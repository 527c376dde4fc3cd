"""The technicians' rows; their skills are stored as a JSON list, already folded."""

from __future__ import annotations

import json
from typing import Any

from fsm_mcp.errors import NotFound
from fsm_mcp.models import Technician
from fsm_mcp.store.db import new_id


def _from_row(row: Any) -> Technician:
    return Technician(
        technician_id=row["id"], external_id=row["external_id"], name=row["name"], phone=row["phone"],
        skills=json.loads(row["skills"]), active=bool(row["active"]),
    )


def insert(conn: Any, tenant: str, name: str, skills: list[str], phone: str | None, external_id: str | None,
           active: bool, import_key: str | None) -> str:
    technician_id = new_id("tech")
    conn.execute(
        "INSERT INTO technicians (tenant_id, id, external_id, name, phone, skills, active, import_key) "
        "VALUES (?,?,?,?,?,?,?,?)",
        (tenant, technician_id, external_id, name, phone, json.dumps(skills), int(active), import_key),
    )
    return technician_id


def load(conn: Any, tenant: str, technician_id: str) -> Technician:
    row = conn.execute("SELECT * FROM technicians WHERE tenant_id=? AND id=?", (tenant, technician_id)).fetchone()
    if row is None:
        raise NotFound("technician", technician_id, "technician_id", "Call list_technicians to see who works here.")
    return _from_row(row)


def every(conn: Any, tenant: str, include_inactive: bool) -> list[Technician]:
    """By name."""
    rows = conn.execute(
        "SELECT * FROM technicians WHERE tenant_id=? AND (?=1 OR active=1) ORDER BY name, id", (tenant, int(include_inactive))
    ).fetchall()
    return [_from_row(r) for r in rows]
