"""Technicians and their skills."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from fsm_mcp.errors import NotFound
from fsm_mcp.identity.text import fold
from fsm_mcp.models import Technician
from fsm_mcp.store.db import new_id


def _from_row(row: sqlite3.Row) -> Technician:
    return Technician(
        technician_id=row["id"], external_id=row["external_id"], name=row["name"], phone=row["phone"],
        skills=json.loads(row["skills"]), active=bool(row["active"]),
    )


def insert(
    conn: sqlite3.Connection, tenant: str, name: str, skills: Sequence[str], phone: str | None = None,
    external_id: str | None = None, active: bool = True, import_key: str | None = None,
) -> str:
    technician_id = new_id("tech")
    conn.execute(
        "INSERT INTO technicians (tenant_id, id, external_id, name, phone, skills, active, import_key) "
        "VALUES (?,?,?,?,?,?,?,?)",
        (tenant, technician_id, external_id, name.strip(), phone, json.dumps(sorted({fold(s) for s in skills if fold(s)})),
         int(active), import_key),
    )
    return technician_id


def load(conn: sqlite3.Connection, tenant: str, technician_id: str) -> Technician:
    row = conn.execute("SELECT * FROM technicians WHERE tenant_id=? AND id=?", (tenant, technician_id)).fetchone()
    if row is None:
        raise NotFound("technician", technician_id, "technician_id", "Call list_technicians to see who works here.")
    return _from_row(row)


def list_all(conn: sqlite3.Connection, tenant: str, skill: str | None, include_inactive: bool) -> list[Technician]:
    rows = conn.execute(
        "SELECT * FROM technicians WHERE tenant_id=? AND (?=1 OR active=1) ORDER BY name, id", (tenant, int(include_inactive))
    ).fetchall()
    found = [_from_row(r) for r in rows]
    return [t for t in found if skill is None or fold(skill) in t.skills]
