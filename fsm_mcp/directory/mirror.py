"""Keeping a vendor's customers in the directory: upserts by the vendor's own ids, and their identity keys.

A vendor connector's sync and its write-through both land here (the rows are written by `store/mirror.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from fsm_mcp.directory.customers import reindex
from fsm_mcp.store import mirror as store
from fsm_mcp.store.directory import names_and_addresses
from fsm_mcp.store.mirror import MirroredContact, MirroredCustomer, MirroredLocation, primary

__all__ = ["MirroredContact", "MirroredCustomer", "MirroredLocation", "names_and_addresses", "primary", "upsert"]


def upsert(
    conn: Any, tenant: str, now: datetime, *,
    customers: Iterable[MirroredCustomer] = (), locations: Iterable[MirroredLocation] = (),
    contacts: Iterable[MirroredContact] = (), index: bool = True,
) -> set[str]:
    """Write these records, re-index the customers they touch (unless `index` is False: a bulk load
    indexes everything once at its end), and return those customers' ids."""
    touched = store.write(conn, tenant, now, customers, locations, contacts)
    if touched and index:
        reindex(conn, tenant, touched)
    return touched
