"""What earlier imports wrote: the rows of a file that a rerun skips, looked up a batch at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from fsm_mcp.store.db import placeholders

CHUNK = 2000  # values per query: well under the databases' limits on parameters
# The tables an import writes and the columns that recognise a row imported before.
_LOOKUPS = {(table, column) for table in ("customers", "technicians") for column in ("external_id", "import_key")}


def seen(conn: sqlite3.Connection, table: str, column: str, tenant: str, values: Sequence[str]) -> set[str]:
    """Which of `values` are already in `table`'s `column` for this business, in one query per CHUNK values."""
    if (table, column) not in _LOOKUPS:
        raise ValueError(f"no import lookup on {table}.{column}")
    found: set[str] = set()
    for start in range(0, len(values), CHUNK):
        chunk = values[start:start + CHUNK]
        # IN alone implies NOT NULL, so SQLite uses the partial index; an explicit "IS NOT NULL" made it a range scan.
        rows = conn.execute(f"SELECT {column} FROM {table} WHERE tenant_id=? AND {column} IN ({placeholders(len(chunk))})",
                            (tenant, *chunk))
        found.update(r[0] for r in rows)
    return found
