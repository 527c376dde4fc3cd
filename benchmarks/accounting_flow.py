"""Completed and invoiced jobs flowing to each accounting fake, over real loopback HTTP, through the outbox
worker (fsm_mcp/accounting/feed.py) as `serve` would run it, with 20 % of requests answered 429, 5 % 503,
2 % of write answers lost after the write was done, access tokens expiring (refresh tokens rotating), and
payments made in the books announced by signed webhooks, each delivered twice and shuffled.

Checked and printed: every invoice in the books exactly once with our total, no duplicate customer (a
fifth of our customers are in the books already under another form of their name, "William" for our
"Bill", with the same phone), every payment reflected on our invoice, no request inside a 429's hold,
refreshes and dead refresh tokens used; latency from invoice.created to the invoice in the books.

    python -m benchmarks.accounting_flow --jobs 1000
    python -m benchmarks.accounting_flow --jobs 200 --providers xero --xero-per-minute 600

Jobs arrive at `--arrivals` a second (default: 80 % of what the published limit allows at about three
requests an invoice); at Xero's 60 a minute that is one job every 4 s, so 1,000 take over an hour.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

from fsm_mcp.accounting import feed
from fsm_mcp.connectors.local import invoices
from fsm_mcp.errors import FsmError
from fsm_mcp.events import outbox
from fsm_mcp.store import Store, open_store
from fsm_mcp.store import accounting as sql
from tests.accounting_rig import TENANT, books, invoiced_job
from tests.fakes.chaos import Chaos

FAMILIES = ["Jenkins", "Okafor", "Nguyen", "Hartley", "Moreau", "Castillo", "Lindqvist", "Abernathy", "Kowalski",
            "Fairweather", "Delacroix", "Brennan", "Takahashi", "Oyelaran", "Whitcombe", "Varga"]
GIVEN = [("Bill", "William"), ("Bob", "Robert"), ("Liz", "Elizabeth"), ("Kate", "Katherine"), ("Jim", "James"),
         ("Peggy", "Margaret"), ("Tom", "Thomas"), ("Dick", "Richard")]


def people(n: int) -> list[tuple[str, str, str | None]]:
    """(our name, phone, the books' name if they know the person already), n distinct people."""
    out = []
    for i in range(n):
        short, full = GIVEN[i % len(GIVEN)]
        family = f"{FAMILIES[i % len(FAMILIES)]}{i // len(FAMILIES)}"
        phone = f"(217) {200 + i // 10000:03d}-{i % 10000:04d}"
        out.append((f"{short} {family}", phone, f"{full} {family}" if i % 5 == 0 else None))
    return out


async def flow(provider: str, jobs: int, arrivals: float, per_minute: int | None, access_ttl: int,
               clean: bool = False, payments: bool = True, breakdown: bool = False) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="fsm-acct-"))
    db: Store = open_store(folder / "fsm.db")
    chaos = Chaos() if clean else Chaos(p429=0.2, p503=0.05, p_lost=0.02, retry_after="1", seed=3)
    limits = {"per_minute": per_minute} if per_minute else {}
    with books(provider, db, chaos, **limits) as rig:
        rig.fake.auth.access_ttl = access_ttl  # tokens expire during the run: refresh tokens rotate
        rig.fake.door.keep_bodies = False
        crowd = people(max(1, jobs * 3 // 5))  # some customers have several jobs
        add = rig.fake.add_customer if provider == "quickbooks" else rig.fake.add_contact
        known = sum(1 for _, phone, theirs in crowd if theirs and add(theirs, phone=phone))
        await rig.connect()
        sink = rig.sink(**({"per_minute": per_minute} if per_minute else {}))
        feed.announce(sink)
        if breakdown:
            from benchmarks import accounting_breakdown as parts

            parts.install()
            sink._customers = parts.TimedLocks()
        created: dict[str, float] = {}
        landed: dict[str, float] = {}
        customer_of: dict[str, str] = {}
        rng = random.Random(5)
        failures: dict[str, int] = {}

        async def arrive() -> None:
            for n in range(jobs):
                name, phone, _ = crowd[n % len(crowd)]
                cid = customer_of.get(name)
                invoice_id = invoiced_job(db, name, phone, customer_id=cid,
                                          lines=(("Labour", str(rng.randint(1, 4)), "95.00"),
                                                 ("Parts", "1", f"{rng.randint(5, 400)}.{rng.randint(0, 99):02d}")),
                                          discount=str(rng.choice([0, 0, 10])))
                invoice = db.read(invoices.load, TENANT, invoice_id)
                customer_of[name] = invoice.customer_id
                await outbox.record(db, TENANT, "invoice.created", "invoice", invoice_id, {"invoice_id": invoice_id})
                created[invoice_id] = time.monotonic()
                await anyio.sleep(1 / arrivals)

        post = sink.post_invoice

        async def timed(invoice_id: str, wait: float = 30.0) -> Any:
            """The moment each invoice's link is recorded (posting returns right after): its landing."""
            mark = parts.begin(invoice_id) if breakdown else None
            try:
                posted = await post(invoice_id, wait)
            finally:
                if mark is not None:
                    parts.end(mark)
            landed.setdefault(invoice_id, time.monotonic())
            return posted

        sink.post_invoice = timed  # type: ignore[method-assign]

        async def work(done: anyio.Event) -> None:
            while not (done.is_set() and len(landed) >= jobs):
                try:
                    await feed.drain(sink, limit=50)  # the provider's concurrency
                except FsmError as exc:  # retried next round; shown once each, for the reader
                    if str(exc) not in failures:
                        failures[str(exc)] = 1
                        print(f"  ({provider}: a round stopped: {type(exc).__name__}: {str(exc)[:200]})", flush=True)
                await anyio.sleep(0.05)

        async def show() -> None:
            while True:
                await anyio.sleep(10)
                print(f"  ({provider}: {len(landed)} of {len(created)} created in the books)", flush=True)

        started = time.monotonic()
        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(show)
            async with anyio.create_task_group() as posting_tg:
                posting_tg.start_soon(work, done)
                await arrive()
                done.set()
            tg.cancel_scope.cancel()
        posting = time.monotonic() - started
        if breakdown:
            print(parts.report(created, landed), flush=True)
        posting_requests = len(rig.fake.door.log)

        # Payments made in the books for about two invoices in three (some in two parts), announced by webhook.
        rig.fake.pending()  # what the posting itself changed is old news
        paid = {}
        for invoice_id in created if payments else []:
            if rng.random() < 0.67:
                their = db.read(sql.linked, TENANT, "invoice", invoice_id, provider)
                if rng.random() < 0.3:
                    rig.pay(their, "10.00")
                rig.pay(their)
                paid[invoice_id] = their
        chaos.p_lost = 0.0  # reads only from here; the webhook app reads each announced invoice from the books
        async with rig.webhooks(sink) as hooks:
            delivered = await rig.deliver(hooks, repeat=2, shuffle=True, per_delivery=20)
        refused = [d.status for d in delivered if d.status != 200]
        caught = await sink.catch_up()
        await rig.aclose()

        rows = rig.invoices()
        numbers = [rig.their_number(r) for r in rows]
        ours = {i: db.read(invoices.load, TENANT, i) for i in created}
        by_number = {rig.their_number(r): r for r in rows}
        wrong_total = 0
        for invoice_id, invoice in ours.items():
            key = invoice_id.removeprefix("inv_") if provider == "quickbooks" else invoice_id
            row = by_number.get(key)
            if row is None or rig.total(row) != invoice.total:
                wrong_total += 1
        unpaid = [i for i in paid if ours[i].status != "paid" or ours[i].balance != Decimal("0.00")]
        waits = sorted(landed[i] - created[i] for i in landed)
        names = [c.get("DisplayName") or c.get("Name") for c in rig.customers()]
        people_posted = len({ours[i].customer_id for i in ours})
        expected_customers = known + sum(1 for name, _, theirs in crowd if not theirs and name in customer_of)
        result = {
            "provider": provider, "jobs": jobs, "arrivals_per_s": arrivals,
            "per_minute": per_minute or (500 if provider == "quickbooks" else 60),
            "posting_s": round(posting, 1),
            "invoices_in_books": len(rows), "distinct_numbers": len(set(numbers)), "wrong_totals": wrong_total,
            "customers_in_books": len(names), "customers_expected": expected_customers,
            "duplicate_names": len(names) - len(set(names)), "our_customers_invoiced": people_posted,
            "paid_in_books": len(paid), "not_reflected": len(unpaid), "webhook_deliveries": len(delivered),
            "webhooks_not_200": len(refused), "caught_up_by_cdc": caught,
            "requests": len(rig.fake.door.log), "posting_requests": posting_requests,
            "webhook_requests": len(rig.fake.door.log) - posting_requests, "answered_429": rig.fake.door.count_429,
            "requests_inside_hold": rig.fake.door.inside_hold, "replays": rig.fake.replays.replayed,
            "refreshes": rig.fake.auth.refreshes, "dead_refresh_tokens_used": rig.fake.auth.dead_refresh_uses,
            "p50_s": round(statistics.median(waits), 2) if waits else None,
            "p95_s": round(waits[int(0.95 * (len(waits) - 1))], 2) if waits else None,
            "max_s": round(waits[-1], 2) if waits else None,
        }
    db.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--providers", nargs="+", default=["quickbooks", "xero"])
    parser.add_argument("--arrivals", type=float, default=None, help="jobs a second (default from the rate)")
    parser.add_argument("--quickbooks-per-minute", type=int, default=None)
    parser.add_argument("--xero-per-minute", type=int, default=None)
    parser.add_argument("--access-ttl", type=int, default=60, help="seconds an access token lives at the fakes")
    parser.add_argument("--clean", action="store_true", help="no 429s, 503s or lost answers (latency at the rate)")
    parser.add_argument("--no-payments", action="store_true", help="invoices only: no payments, no webhooks")
    parser.add_argument("--breakdown", action="store_true",
                        help="print where each invoice's time went (benchmarks/accounting_breakdown.py)")
    args = parser.parse_args()
    for provider in args.providers:
        per_minute = args.quickbooks_per_minute if provider == "quickbooks" else args.xero_per_minute
        rate = (per_minute or (500 if provider == "quickbooks" else 60)) / 60
        arrivals = args.arrivals or round(0.8 * rate / 3.5, 2)
        result = anyio.run(flow, provider, args.jobs, arrivals, per_minute, args.access_ttl, args.clean,
                           not args.no_payments, args.breakdown)
        print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
