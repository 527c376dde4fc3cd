"""SQL of the accounting sinks (`fsm_mcp/accounting`): a business's grant with its books, the links between
our records and theirs, payments read back from the books, and the change-data-capture cursors.

Tokens arrive here already encrypted; nothing in this module sees one in the clear.

A refresh is done by one process at a time among all that share the store: `claim_refresh` is a
conditional update on the grant's row (its version unchanged and no live claim), and `rotate` writes
the new tokens only while the claim is still this holder's and the version the one it read, bumping
the version, so a refresh token the vendor has rotated out is never written back over its successor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fsm_mcp.store.db import from_db, to_db


@dataclass(frozen=True, slots=True)
class GrantRow:
    company: str
    refresh_token: str  # encrypted
    access_token: str | None  # encrypted
    access_until: datetime | None
    version: int
    claimed_by: str | None
    claimed_until: datetime | None


def save_grant(conn: Any, tenant: str, provider: str, company: str, refresh: str, access: str | None,
               access_until: datetime | None, now: datetime) -> None:
    """A new grant (the administrator connected the books): it replaces any earlier one."""
    conn.execute(
        "INSERT INTO accounting_grants (tenant_id, provider, company, refresh_token, access_token, access_until, "
        "version, claimed_by, claimed_until, updated_at) VALUES (?,?,?,?,?,?,1,NULL,NULL,?) "
        "ON CONFLICT (tenant_id, provider) DO UPDATE SET company = excluded.company, "
        "refresh_token = excluded.refresh_token, access_token = excluded.access_token, "
        "access_until = excluded.access_until, version = accounting_grants.version + 1, claimed_by = NULL, "
        "claimed_until = NULL, updated_at = excluded.updated_at",
        (tenant, provider, company, refresh, access, to_db(access_until) if access_until else None, to_db(now)),
    )


def load_grant(conn: Any, tenant: str, provider: str) -> GrantRow | None:
    row = conn.execute(
        "SELECT company, refresh_token, access_token, access_until, version, claimed_by, claimed_until "
        "FROM accounting_grants WHERE tenant_id=? AND provider=?", (tenant, provider)).fetchone()
    if row is None:
        return None
    return GrantRow(row[0], row[1], row[2], from_db(row[3]) if row[3] else None, int(row[4]), row[5],
                    from_db(row[6]) if row[6] else None)


def claim_refresh(conn: Any, tenant: str, provider: str, version: int, holder: str, now: datetime,
                  until: datetime) -> bool:
    cursor = conn.execute(
        "UPDATE accounting_grants SET claimed_by=?, claimed_until=? WHERE tenant_id=? AND provider=? AND version=? "
        "AND (claimed_by IS NULL OR claimed_by=? OR claimed_until <= ?)",
        (holder, to_db(until), tenant, provider, version, holder, to_db(now)))
    return bool(cursor.rowcount == 1)


def rotate(conn: Any, tenant: str, provider: str, version: int, holder: str, refresh: str, access: str,
           access_until: datetime, now: datetime) -> bool:
    cursor = conn.execute(
        "UPDATE accounting_grants SET refresh_token=?, access_token=?, access_until=?, version=version + 1, "
        "claimed_by=NULL, claimed_until=NULL, updated_at=? WHERE tenant_id=? AND provider=? AND version=? "
        "AND claimed_by=?",
        (refresh, access, to_db(access_until), to_db(now), tenant, provider, version, holder))
    return bool(cursor.rowcount == 1)


def release_claim(conn: Any, tenant: str, provider: str, holder: str) -> None:
    conn.execute("UPDATE accounting_grants SET claimed_by=NULL, claimed_until=NULL "
                 "WHERE tenant_id=? AND provider=? AND claimed_by=?", (tenant, provider, holder))


def link(conn: Any, tenant: str, kind: str, our_id: str, provider: str, their_id: str, now: datetime) -> str:
    """Record that our `kind` record `our_id` is `their_id` in the books; the first link recorded stands."""
    conn.execute(
        "INSERT INTO accounting_links (tenant_id, kind, our_id, provider, their_id, created_at) VALUES (?,?,?,?,?,?) "
        "ON CONFLICT (tenant_id, kind, our_id, provider) DO NOTHING",
        (tenant, kind, our_id, provider, their_id, to_db(now)))
    found = linked(conn, tenant, kind, our_id, provider)
    assert found is not None
    return found


def linked(conn: Any, tenant: str, kind: str, our_id: str, provider: str) -> str | None:
    row = conn.execute("SELECT their_id FROM accounting_links WHERE tenant_id=? AND kind=? AND our_id=? AND provider=?",
                       (tenant, kind, our_id, provider)).fetchone()
    return None if row is None else str(row[0])


def ours(conn: Any, tenant: str, provider: str, kind: str, their_id: str) -> str | None:
    row = conn.execute("SELECT our_id FROM accounting_links WHERE tenant_id=? AND provider=? AND kind=? AND their_id=?",
                       (tenant, provider, kind, their_id)).fetchone()
    return None if row is None else str(row[0])


def count_links(conn: Any, tenant: str, provider: str, kind: str) -> int:
    row = conn.execute("SELECT COUNT(*) FROM accounting_links WHERE tenant_id=? AND provider=? AND kind=?",
                       (tenant, provider, kind)).fetchone()
    return int(row[0])


def apply_payments(conn: Any, tenant: str, provider: str, invoice_id: str, payments: list[tuple[str, Decimal]],
                   balance: Decimal, now: datetime) -> list[str]:
    """The books say our invoice's balance is `balance` after `payments` (their id, amount applied to it): our
    invoice and payments become so, whatever was applied before or in whichever order the news came. Returns
    the payments seen for the first time (each is announced once)."""
    new: list[str] = []
    for their_id, amount in payments:
        seen = conn.execute(
            "SELECT amount FROM accounting_payments WHERE tenant_id=? AND provider=? AND their_id=? AND invoice_id=?",
            (tenant, provider, their_id, invoice_id)).fetchone()
        if seen is None:
            new.append(their_id)
        conn.execute(
            "INSERT INTO accounting_payments (tenant_id, provider, their_id, invoice_id, amount, seen_at) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT (tenant_id, provider, their_id, invoice_id) DO UPDATE SET "
            "amount = excluded.amount", (tenant, provider, their_id, invoice_id, str(amount), to_db(now)))
        conn.execute(
            "INSERT INTO payments (tenant_id, id, invoice_id, amount, method, received_at) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT (tenant_id, id) DO UPDATE SET amount = excluded.amount",
            (tenant, f"{provider}:{their_id}:{invoice_id}", invoice_id, str(amount), provider, to_db(now)))
    conn.execute(
        "UPDATE invoices SET balance=?, status=CASE WHEN status='void' THEN status WHEN ? = 1 THEN 'paid' "
        "ELSE 'open' END WHERE tenant_id=? AND id=?",
        (str(balance), 1 if balance <= 0 else 0, tenant, invoice_id))
    return new


def recorded_payments(conn: Any, tenant: str, provider: str, invoice_id: str) -> dict[str, Decimal]:
    """The books' payments recorded on our invoice: their id -> the amount applied to it."""
    rows = conn.execute("SELECT their_id, amount FROM accounting_payments WHERE tenant_id=? AND provider=? AND "
                        "invoice_id=?", (tenant, provider, invoice_id)).fetchall()
    return {str(r[0]): Decimal(str(r[1])) for r in rows}


def invoices_paid_by(conn: Any, tenant: str, provider: str, their_payment: str) -> list[str]:
    """Their ids of our invoices the books' payment `their_payment` is recorded on (none: a payment new to us)."""
    rows = conn.execute(
        "SELECT l.their_id FROM accounting_payments p JOIN accounting_links l ON l.tenant_id = p.tenant_id AND "
        "l.kind = 'invoice' AND l.our_id = p.invoice_id AND l.provider = p.provider WHERE p.tenant_id=? AND "
        "p.provider=? AND p.their_id=? ORDER BY l.their_id", (tenant, provider, their_payment)).fetchall()
    return [str(r[0]) for r in rows]


def take_call(conn: Any, provider: str, company: str, hour: int, first_hour: int, most: int) -> int:
    """Count one request to `company` in `hour` if fewer than `most` were sent from `first_hour` on; the number
    sent in that span before it (`most` or more: refused, nothing counted). The increment goes first, so a
    concurrent taker of the same hour waits on its row and then sees it."""
    conn.execute("INSERT INTO accounting_calls (provider, company, hour, used) VALUES (?,?,?,1) ON CONFLICT "
                 "(provider, company, hour) DO UPDATE SET used = accounting_calls.used + 1", (provider, company, hour))
    used = int(conn.execute("SELECT COALESCE(SUM(used), 0) FROM accounting_calls WHERE provider=? AND company=? AND "
                            "hour >= ?", (provider, company, first_hour)).fetchone()[0]) - 1
    if used >= most:
        conn.execute("UPDATE accounting_calls SET used = used - 1 WHERE provider=? AND company=? AND hour=?",
                     (provider, company, hour))
    if hour % 24 == 0:
        conn.execute("DELETE FROM accounting_calls WHERE provider=? AND company=? AND hour < ?",
                     (provider, company, first_hour - 24))
    return used


def calls_by_hour(conn: Any, provider: str, company: str, first_hour: int) -> list[tuple[int, int]]:
    """(hour, requests) from `first_hour` on, oldest first."""
    rows = conn.execute("SELECT hour, used FROM accounting_calls WHERE provider=? AND company=? AND hour >= ? "
                        "ORDER BY hour", (provider, company, first_hour)).fetchall()
    return [(int(r[0]), int(r[1])) for r in rows]


def get_cursor(conn: Any, tenant: str, provider: str, name: str) -> str | None:
    row = conn.execute("SELECT value FROM accounting_cursors WHERE tenant_id=? AND provider=? AND name=?",
                       (tenant, provider, name)).fetchone()
    return None if row is None else str(row[0])


def set_cursor(conn: Any, tenant: str, provider: str, name: str, value: str) -> None:
    conn.execute("INSERT INTO accounting_cursors (tenant_id, provider, name, value) VALUES (?,?,?,?) "
                 "ON CONFLICT (tenant_id, provider, name) DO UPDATE SET value = excluded.value",
                 (tenant, provider, name, value))


__all__ = ["GrantRow", "apply_payments", "calls_by_hour", "claim_refresh", "count_links", "get_cursor", "invoices_paid_by", "link", "linked",
           "load_grant", "ours", "recorded_payments", "release_claim", "rotate", "save_grant", "set_cursor", "take_call"]
