"""Job completed -> invoice on the local store: `--jobs` jobs booked and completed through the tools of an
in-process server running its automations (as `fsm-mcp serve` does), half with their own lines and half billed
from the business's price list. Printed: invoices per job (every job must have exactly one, with the right
total), review events (none expected), and the time from a completion's answer to its invoice in the store,
p50/p95/max, as seen by a watcher reading the store every `--watch` seconds.

    python benchmarks/completion_invoices.py [--jobs 1000] [--concurrency 8] [--watch 0.02] [--store postgresql]

`--store postgresql` runs on a scratch database of the machine's PostgreSQL, dropped after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fsm_mcp.connectors.local import technicians
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.server import build_server
from fsm_mcp.settings import Business, Settings
from fsm_mcp.store import open_store
from tests.when import monday, window

PRICE = Decimal("240.00")
CREW = 50  # technicians; each takes four two-hour windows a weekday
BUSINESS = Business(name="Bench HVAC", timezone="America/Chicago", job_types={"Furnace repair": "hvac"},
                    price_list={"Furnace repair": [LineItemIn(description="Flat rate", quantity=Decimal(1),
                                                              unit_price=PRICE)]})


def lines_of(i: int) -> tuple[list[dict[str, str]] | None, Decimal]:
    """Even jobs carry their lines; odd ones are billed from the price list."""
    if i % 2:
        return None, PRICE
    quantity, price = 1 + i % 3, Decimal(50 + i) + Decimal("0.25")
    return [{"description": f"Repair {i}", "quantity": str(quantity), "unit_price": str(price)}], quantity * price


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    return dict(result.structured_content or {})


async def main(jobs: int, concurrency: int, watch: float, db_path: Path | str) -> None:
    settings = Settings(db_path=db_path, business=BUSINESS)
    day = monday(weeks_ahead=3)
    done_at: dict[str, float] = {}
    invoiced_at: dict[str, float] = {}
    expected: dict[str, Decimal] = {}
    store = open_store(db_path)
    crew = [store.write(lambda conn, n=n: technicians.insert(conn, BUSINESS.tenant_id, f"Tech {n}", ["hvac"]))
            for n in range(CREW)]

    async def one(client: Client, i: int) -> None:
        customer = {"name": f"Customer {i}", "phone": f"(312) 555-{i:04d}",
                    "address": f"{i + 1} Maple Dr, Springfield, IL 62704"}
        when = window(day + timedelta(days=i // (CREW * 4) % 5), 8 + 2 * (i // CREW % 4))
        job = await call(client, "create_job", customer=customer, job_type="Furnace repair", summary="no heat",
                         idempotency_key=f"b{i}", **when)
        job_id = job["job_id"]
        await call(client, "dispatch_technician", job_id=job_id, technician_id=crew[i % CREW], idempotency_key=f"d{i}")
        for status in ("arrived", "working"):
            await call(client, "update_job_status", job_id=job_id, status=status)
        lines, total = lines_of(i)
        expected[job_id] = total
        await call(client, "update_job_status", job_id=job_id, status="completed",
                   **({"lines": lines} if lines else {}))
        done_at[job_id] = time.perf_counter()

    async def watcher() -> None:
        while True:
            rows = await store.aread(lambda conn: conn.execute("SELECT DISTINCT job_id FROM invoices").fetchall())
            now = time.perf_counter()
            for row in rows:
                invoiced_at.setdefault(row[0], now)
            if len(invoiced_at) >= jobs:
                return
            await anyio.sleep(watch)

    started = time.perf_counter()
    async with Client(build_server(settings, automate=True)) as client:
        limiter = anyio.CapacityLimiter(concurrency)

        async def limited(i: int) -> None:
            async with limiter:
                await one(client, i)

        with anyio.fail_after(max(120.0, jobs * 0.5)):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watcher)
                for i in range(jobs):
                    tg.start_soon(limited, i)
    elapsed = time.perf_counter() - started

    rows = store.read(lambda conn: conn.execute("SELECT job_id, total FROM invoices").fetchall())
    reviews = store.read(lambda conn: conn.execute(
        "SELECT count(*) FROM events WHERE type='invoice.needs_review'").fetchone()[0])
    store.close()
    per_job: dict[str, list[Decimal]] = {}
    for job_id, total in rows:
        per_job.setdefault(job_id, []).append(Decimal(total))
    exactly_one = sum(1 for j in expected if len(per_job.get(j, [])) == 1)
    right = sum(1 for j, t in expected.items() if per_job.get(j) == [t])
    lags = sorted(invoiced_at[j] - done_at[j] for j in expected if j in invoiced_at and j in done_at)
    p95 = lags[max(0, int(len(lags) * 0.95) - 1)]
    print(f"jobs completed: {len(done_at)} in {elapsed:.1f} s (concurrency {concurrency})")
    print(f"invoices: {len(rows)}; jobs with exactly one: {exactly_one}/{jobs}; with the right total: {right}/{jobs}; "
          f"review events: {reviews}")
    print(f"completion -> invoice: p50 {statistics.median(lags) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"max {lags[-1] * 1000:.0f} ms (automation poll 0.5 s, watcher every {watch * 1000:.0f} ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--watch", type=float, default=0.02)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    if args.store == "postgresql":
        from benchmarks.scratch_pg import scratch_postgres

        with scratch_postgres() as url:
            anyio.run(main, args.jobs, args.concurrency, args.watch, url)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            anyio.run(main, args.jobs, args.concurrency, args.watch, Path(tmp) / "bench.db")
