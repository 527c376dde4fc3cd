"""Technicians and their skills: a skill is matched folded (case and accents aside)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fsm_mcp.identity.text import fold
from fsm_mcp.models import Technician
from fsm_mcp.store import technicians as rows


def insert(
    conn: Any, tenant: str, name: str, skills: Sequence[str], phone: str | None = None,
    external_id: str | None = None, active: bool = True, import_key: str | None = None,
) -> str:
    return rows.insert(conn, tenant, name.strip(), sorted({fold(s) for s in skills if fold(s)}), phone, external_id,
                       active, import_key)


def list_all(conn: Any, tenant: str, skill: str | None, include_inactive: bool) -> list[Technician]:
    return [t for t in rows.every(conn, tenant, include_inactive) if skill is None or fold(skill) in t.skills]
