"""Where each invoice's time goes on its way to the books, for benchmarks/accounting_flow.py (`--breakdown`).

Instrumentation only, installed by patching the running process (never imported by fsm_mcp): every second
from `invoice.created` to the link being recorded is put in one bucket:

- `outbox`: created, not yet read by the outbox worker (its round every 0.05 s, its poll inside a round);
- `window`: read, waiting for one of the window's slots (the provider's concurrency);
- `hold`: asleep inside a 429's hold, in the lane or in the retry that got the 429 (no client may shorten it);
- `after_hold`: a 429's retry asleep past the hold's end (its backoff was longer than the hold);
- `pace`: asleep in the lane for a slot of the published rate;
- `lane_queue`: in an ordered lane, behind an older invoice's request taking its turn (outside a hold);
- `backoff_503`, `backoff_lost`: a retry asleep after a 503, or after a write's answer was lost (504);
- `cap`: waiting for one of the requests-in-flight slots (QuickBooks 10, Xero 5 at once);
- `http:<what>`: on the wire, by what the request was (the customer lookup, its creation, the invoice, a
  read-back, a token refresh);
- `customer_lock`: waiting for another invoice of the same customer to find or make them;
- `other`: the rest (the store, the event loop, this process's CPU).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import defaultdict
from typing import Any

import anyio

from fsm_mcp.accounting import feed, http
from fsm_mcp.connectors.http import client, lanes

_owner: contextvars.ContextVar[tuple[str, asyncio.Task[Any] | None] | None] = contextvars.ContextVar("owner", default=None)
_phase: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar("phase", default=())

spent: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
seen: dict[str, float] = {}
started: dict[str, float] = {}
status: dict[str, int] = {}  # invoice -> the last status its requests got (for the retry's sleep after it)
requests: dict[str, int] = defaultdict(int)


def _mine() -> str | None:
    owner = _owner.get()
    if owner is None or owner[1] is not asyncio.current_task():
        return None
    return owner[0]


def install() -> None:
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        invoice = _mine()
        if invoice is None or delay <= 0:
            return await real_sleep(delay, result)
        phase = _phase.get()
        held = 0.0
        if phase and phase[0] in ("lane", "retrying"):
            held = phase[1].held()
        t0 = time.monotonic()
        try:
            return await real_sleep(delay, result)
        finally:
            took = time.monotonic() - t0
            top = phase[0] if phase else None
            if top == "lane":
                spent[invoice]["hold" if held > 0 else "pace"] += took
                phase[2][0] += took
                phase[2][1] += took if held > 0 else 0.0
            elif top == "retrying":
                last = status.get(invoice)
                if last == 429:
                    inside = min(took, held)
                    spent[invoice]["hold"] += inside
                    spent[invoice]["after_hold"] += took - inside
                elif last == 503:
                    spent[invoice]["backoff_503"] += took
                else:
                    spent[invoice]["backoff_lost"] += took
            elif top == "token":
                spent[invoice]["token_wait"] += took
            else:
                spent[invoice]["other_sleep"] += took

    asyncio.sleep = sleep  # type: ignore[assignment]  # tenacity's
    import anyio._backends._asyncio as backend

    backend.sleep = sleep  # type: ignore[attr-defined]  # anyio's (it imported asyncio's by name)

    real_turn = lanes.LocalLane.turn

    async def turn(self: lanes.LocalLane, deadline: float = float("inf")) -> None:
        slept = [0.0, 0.0]  # asleep in this turn: all, inside the hold
        token = _phase.set(("lane", self, slept))
        t0, held0 = time.monotonic(), self.held()
        try:
            await real_turn(self, deadline)
        finally:
            _phase.reset(token)
            if (invoice := _mine()) is not None:  # the rest: behind another request's turn (an ordered lane)
                behind = max(0.0, time.monotonic() - t0 - slept[0])
                inside = min(behind, max(0.0, held0 - slept[1]))
                spent[invoice]["hold"] += inside
                spent[invoice]["lane_queue"] += behind - inside

    lanes.LocalLane.turn = turn  # type: ignore[method-assign]

    real_retrying = client.VendorClient._retrying

    async def retrying(self: client.VendorClient, *args: Any, **kwargs: Any) -> Any:
        lane = getattr(self.lane, "inner", self.lane)
        token = _phase.set(("retrying", lane))
        try:
            return await real_retrying(self, *args, **kwargs)
        finally:
            _phase.reset(token)

    client.VendorClient._retrying = retrying  # type: ignore[method-assign]

    real_send = client.VendorClient._send

    async def send(self: client.VendorClient, *args: Any, **kwargs: Any) -> Any:
        response = await real_send(self, *args, **kwargs)
        if (invoice := _mine()) is not None:
            status[invoice] = response.status_code
        return response

    client.VendorClient._send = send  # type: ignore[method-assign]

    async def handle(self: http.Bounded, request: Any) -> Any:
        invoice = _mine()
        t0 = time.monotonic()
        async with self.slots:
            t1 = time.monotonic()
            self.most = max(self.most, int(self.slots.borrowed_tokens))
            try:
                response = await self.inner.handle_async_request(request)
                await response.aread()
            except BaseException:
                if invoice is not None:
                    spent[invoice]["cap"] += t1 - t0
                    spent[invoice][f"http:{what(request)}"] += time.monotonic() - t1
                raise
            if invoice is not None:
                requests[invoice] += 1
                spent[invoice]["cap"] += t1 - t0
                kind = what(request)
                if response.status_code in (429, 503, 504):
                    kind = f"{response.status_code}"
                spent[invoice][f"http:{kind}"] += time.monotonic() - t1
            return response

    http.Bounded.handle_async_request = handle  # type: ignore[method-assign]

    from fsm_mcp.accounting import oauth

    real_fresh = oauth.Grant._fresh

    async def fresh(self: Any, force: bool) -> None:
        token = _phase.set(("token",))
        try:
            await real_fresh(self, force)
        finally:
            _phase.reset(token)

    oauth.Grant._fresh = fresh  # type: ignore[method-assign]

    real_read = feed.outbox.read

    async def read(*args: Any, **kwargs: Any) -> Any:
        page = await real_read(*args, **kwargs)
        now = time.monotonic()
        for event in page.events:
            if event.type == "invoice.created":
                seen.setdefault(event.subject_id, now)
        return page

    feed.outbox.read = read  # type: ignore[assignment]


def what(request: Any) -> str:
    path, query = request.url.path, str(request.url.query, "ascii") if isinstance(request.url.query, bytes) \
        else str(request.url.query)
    method = request.method
    if "token" in path.lower():
        return "token"
    if path.endswith("/query"):  # QuickBooks
        if "DocNumber" in query:
            return "readback_invoice"
        if "LIKE" in query or "PrimaryEmailAddr" in query:
            return "customer_lookup"
        if "DisplayName" in query:
            return "readback_customer"
        return "query"
    if "/Contacts/" in path and method == "GET":
        return "readback_customer"
    if path.endswith("/Contacts") and method == "GET":
        return "customer_lookup"
    if path.endswith("/Invoices") and method == "GET" and "InvoiceNumbers" in query:
        return "readback_invoice"
    if path.lower().endswith(("/customer", "/contacts")):
        return "customer_create"
    if path.lower().endswith(("/invoice", "/invoices")):
        return "invoice_create"
    return f"{method} {path.rsplit('/', 1)[-1]}"


class TimedLocks(dict):  # type: ignore[type-arg]
    """The sink's per-customer locks, counting how long an invoice waited for one."""

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = _TimedLock()
        return self[key]


class _TimedLock:
    def __init__(self) -> None:
        self.lock = anyio.Lock()

    async def __aenter__(self) -> None:
        t0 = time.monotonic()
        await self.lock.acquire()
        if (invoice := _mine()) is not None:
            spent[invoice]["customer_lock"] += time.monotonic() - t0

    async def __aexit__(self, *exc: object) -> None:
        self.lock.release()


def begin(invoice_id: str) -> contextvars.Token[Any]:
    started.setdefault(invoice_id, time.monotonic())
    return _owner.set((invoice_id, asyncio.current_task()))


def end(token: contextvars.Token[Any]) -> None:
    _owner.reset(token)


def report(created: dict[str, float], landed: dict[str, float]) -> str:
    """Mean seconds per bucket, over every invoice and over the slowest 5 % (at or past p95)."""
    rows = {}
    for invoice, at in landed.items():
        total = at - created[invoice]
        parts = dict(spent.get(invoice, {}))
        first = seen.get(invoice, started.get(invoice, at))
        parts["outbox"] = max(0.0, first - created[invoice])
        parts["window"] = max(0.0, started.get(invoice, at) - first)
        parts["other"] = total - sum(parts.values())
        rows[invoice] = (total, parts)
    ordered = sorted(rows.values(), key=lambda r: r[0])
    slow = ordered[int(0.95 * (len(ordered) - 1)):]
    lines = []
    for label, group in (("all", ordered), ("slowest 5%", slow)):
        keys = sorted({k for _, p in group for k in p})
        mean_total = sum(t for t, _ in group) / len(group)
        means = {k: sum(p.get(k, 0.0) for _, p in group) / len(group) for k in keys}
        shown = " ".join(f"{k}={v:.3f}" for k, v in sorted(means.items(), key=lambda kv: -kv[1]) if abs(v) >= 0.0005)
        lines.append(f"  breakdown {label} (n={len(group)}, mean {mean_total:.2f} s): {shown}")
        held = means.get("hold", 0.0)
        lines.append(f"  breakdown {label}: inside vendor holds {held:.2f} s = {100 * held / mean_total:.0f} % of it")
    per = [requests.get(i, 0) for i in landed]
    lines.append(f"  requests an invoice: mean {sum(per) / max(1, len(per)):.2f}")
    return "\n".join(lines)
