"""The store's repositories, one per area, as the code outside `store/` calls them.

Each is a module of SQL functions taking the connection first (`fn(conn, ...)`), run through the store's
unit of work: `Store.read`/`write` and their async forms, or several in one transaction under
`Store.atomic`. One module serves both databases (the SQL is the portable subset, see `dialect.py`), so
each Protocol below has one implementation today, checked by mypy at the end of this file; a second (an
in-memory double, an async driver) would implement the same Protocol.

    JobRows           store/jobs.py           jobs, their technicians, status history, booked windows
    InvoiceRows       store/invoices.py       invoices and balances
    TechnicianRows    store/technicians.py    technicians
    MergeRows         store/merges.py         what a customer merge moves
    SyncStateRows     store/sync_state.py     how far a vendor directory sync got
    AuditRows         store/audit.py          the audit log
    KeyRows           store/keys.py           the HTTP server's API keys
    ConfirmationRows  store/confirmations.py  confirmation tokens

    Idempotency       store/idempotency.py    a write at most once per key: its lease, recovery points, replay

The idempotency keys' rows are private to `IdempotentWriter` (store/idempotency.py), their one user, so
its Protocol is the writer's own (async: it owns its transactions, leases and waits); the customer
directory's rows are the directory's (directory/, store/contacts.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

from fsm_mcp.billing import Line, Totals
from fsm_mcp.inputs import JobFilter
from fsm_mcp.models import Invoice, Job, JobStatus, Technician

if TYPE_CHECKING:
    from fsm_mcp.store.idempotency import Attempt

Busy = dict[str, list[tuple[datetime, datetime, str]]]  # technician id -> (start, end, job id)
M = TypeVar("M", bound=BaseModel)


class JobRows(Protocol):
    def load_job(self, conn: Any, tenant: str, job_id: str) -> Job: ...
    def recent_for_customer(self, conn: Any, tenant: str, customer_id: str, limit: int) -> list[Job]: ...
    def overlapping_at_place(self, conn: Any, tenant: str, customer_id: str, place_id: str, start: datetime,
                             end: datetime) -> list[Job]: ...
    def list_jobs(self, conn: Any, tenant: str, query: JobFilter) -> list[Job]: ...
    def busy_windows(self, conn: Any, tenant: str, technician_ids: Sequence[str], start: datetime, end: datetime,
                     exclude_job: str | None = None) -> Busy: ...
    def insert_job(self, conn: Any, tenant: str, customer_id: str, place_id: str, job_type: str, skill: str | None,
                   summary: str, priority: str, window: tuple[datetime, datetime], now: datetime) -> str: ...
    def insert_past_job(self, conn: Any, tenant: str, customer_id: str, place_id: str, job_type: str,
                        skill: str | None, summary: str, priority: str, window: tuple[datetime, datetime],
                        status: JobStatus, note: str | None) -> str: ...
    def record_status(self, conn: Any, tenant: str, job_id: str, status: JobStatus, at: datetime,
                      note: str | None) -> None: ...
    def move_window(self, conn: Any, tenant: str, job_id: str, window: tuple[datetime, datetime]) -> None: ...
    def assign(self, conn: Any, tenant: str, job_id: str, technician_id: str) -> None: ...


class InvoiceRows(Protocol):
    def for_job(self, conn: Any, tenant: str, job_id: str) -> list[Invoice]: ...
    def load(self, conn: Any, tenant: str, invoice_id: str) -> Invoice: ...
    def insert(self, conn: Any, tenant: str, job_id: str, customer_id: str, lines: list[Line], sums: Totals,
               now: datetime) -> str: ...
    def open_balance(self, conn: Any, tenant: str, customer_id: str) -> Decimal: ...


class TechnicianRows(Protocol):
    def insert(self, conn: Any, tenant: str, name: str, skills: list[str], phone: str | None, external_id: str | None,
               active: bool, import_key: str | None) -> str: ...
    def load(self, conn: Any, tenant: str, technician_id: str) -> Technician: ...
    def every(self, conn: Any, tenant: str, include_inactive: bool) -> list[Technician]: ...


class MergeRows(Protocol):
    def count_owned(self, conn: Any, table: str, tenant: str, ids: list[str]) -> int: ...
    def apply(self, conn: Any, tenant: str, keep_id: str, ids: list[str], moved: list[str],
              folded: list[tuple[str, str]], gathered: dict[str, tuple[list[dict[str, str]], str | None]],
              notes: str | None, tags: list[str], stamp: str) -> None: ...


class SyncStateRows(Protocol):
    def load(self, conn: Any, tenant: str, resource: str) -> dict[str, Any]: ...
    def save(self, conn: Any, tenant: str, resource: str, changes: dict[str, Any]) -> None: ...


class AuditRows(Protocol):
    def record(self, conn: Any, at: datetime, tenant: str, tool: str, actor: str, arguments: dict[str, Any],
               result_id: str | None, replayed: bool = False) -> None: ...


class KeyRows(Protocol):
    LIVE_BY_DIGEST: str  # the one query a request's key check runs, on the read path (`Store.apeek`)

    def insert(self, conn: Any, name: str, business: str, scopes: str, digest: str, at: str) -> bool: ...
    def revoke(self, conn: Any, name: str, at: str) -> bool: ...
    def every(self, conn: Any) -> list[tuple[str, str, str, str, str | None]]: ...


class ConfirmationRows(Protocol):
    def insert(self, conn: Any, tenant: str, digest: str, tool: str, args_hash: str, actor: str, expires: str,
               stale_before: str) -> None: ...
    def find(self, conn: Any, tenant: str, digest: str) -> tuple[str, str, str, str, str | None] | None: ...
    def mark_used(self, conn: Any, tenant: str, digest: str, at: str | None) -> None: ...


class Idempotency(Protocol):
    in_transaction: bool  # the write joins the store's transaction (the local backend) or waits on a vendor

    async def run(self, *, tenant: str, actor: str, tool: str, key: str | None, request: BaseModel,
                  result_type: type[M], result_id: Callable[[M], str],
                  write: Callable[[Attempt], Awaitable[M]]) -> M: ...


if TYPE_CHECKING:  # each module implements its Protocol (mypy checks a module against a Protocol)
    from fsm_mcp.store import audit, confirmations, invoices, jobs, keys, merges, sync_state, technicians

    _jobs: JobRows = jobs
    _invoices: InvoiceRows = invoices
    _technicians: TechnicianRows = technicians
    _merges: MergeRows = merges
    _sync_state: SyncStateRows = sync_state
    _audit: AuditRows = audit
    _keys: KeyRows = keys
    _confirmations: ConfirmationRows = confirmations

    from fsm_mcp.store.idempotency import IdempotentWriter

    def _writer(writer: IdempotentWriter) -> Idempotency:
        return writer
