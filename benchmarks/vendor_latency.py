"""Call latency over a vendor when every vendor request takes 150 ms.

    python benchmarks/vendor_latency.py [--vendor servicetitan|fieldpulse|housecallpro] [--calls 30] [--latency 0.15]

The fake vendor (tests/fakes) serves over real HTTP on loopback. Known callers each
have a past job. Each round measures, through the real server and MCP client:
lookup_customer by a known caller's number (the match, then their recent jobs and balance
from the vendor), and create_job for a new caller (customer with location and contacts,
then the job). The first round runs with no added latency (the baseline: our own work),
the second with `--latency` on every vendor request. Printed per tool: p50, p95, vendor
requests per call. Goals at 150 ms: lookup p95 <= 0.5 s, create_job p95 <= 1.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.vendors import NAMES, Vendor
from fsm_mcp.connectors import open_backend
from fsm_mcp.server import build_server
from fsm_mcp.settings import Business
from fsm_mcp.store.db import Database
from tests.fakes.chaos import Chaos
from tests.fakes.serve import serving
from tests.fakes.servicetitan import new_caller, seed_person
from tests.when import MONDAY as FIRST_DAY  # two weeks ahead of today: bookable whenever this runs

BUSINESS = Business(timezone="America/Chicago", job_types={"Furnace repair": "hvac"})


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


async def timed(client: Client, fake: Any, tool: str, args: dict[str, Any]) -> tuple[float, int]:
    before = len(fake.door.log)
    started = time.perf_counter()
    result = await client.call_tool(tool, args)
    elapsed = time.perf_counter() - started
    if result.is_error:
        raise SystemExit(f"{tool} failed: {result.content}")
    return elapsed, len(fake.door.log) - before


async def run(args: argparse.Namespace) -> None:
    vendor = Vendor.make(args.vendor, Chaos())
    fake = vendor.fake
    tech = vendor.technician("Dana Reyes")
    for n in range(2000):
        name, street = seed_person(n)
        vendor.customer(name, street, "62701", f"217555{n:04d}")
    fake.door.keep_bodies = False
    with serving(fake.app) as url, tempfile.TemporaryDirectory() as tmp:
        settings = vendor.settings(url, Path(tmp) / "lat.db", BUSINESS, [tech], sync_interval=0)
        db = Database(settings.db_path)  # the first directory sync, as `fsm-mcp sync` does it
        async with open_backend(settings, db, background=False) as backend:
            await backend.sync.run()  # type: ignore[attr-defined]
        db.close()
        async with Client(build_server(settings)) as client:
            for n in range(args.calls * 2):  # a past job for each known caller
                await timed(client, fake, "create_job", {
                    "job_type": "Furnace repair", "summary": "Annual service", "idempotency_key": f"past-{n}",
                    "customer_id": (await client.call_tool("lookup_customer", {"phone": f"217555{n:04d}"}))
                    .structured_content["matches"][0]["customer_id"],  # type: ignore[index]
                    "window_start": f"{FIRST_DAY + timedelta(days=n % 28)}T{8 + n // 28:02d}:00",
                    "window_end": f"{FIRST_DAY + timedelta(days=n % 28)}T{9 + n // 28:02d}:00", "technician_id": tech})
            for label, latency, offset in (("no added latency", 0.0, 0), (f"{args.latency * 1000:.0f} ms per request",
                                                                           args.latency, args.calls)):
                fake.chaos.latency = latency
                lookups, bookings = [], []
                for n in range(args.calls):
                    lookups.append(await timed(client, fake, "lookup_customer", {"phone": f"(217) 555-{n + offset:04d}"}))
                    name, street = new_caller(n + offset)
                    bookings.append(await timed(client, fake, "create_job", {
                        "job_type": "Furnace repair", "summary": "No heat", "idempotency_key": f"new-{latency}-{n}",
                        "window_start": f"{FIRST_DAY}T09:00", "window_end": f"{FIRST_DAY}T11:00",
                        "customer": {"name": name, "phone": f"312555{n + offset:04d}", "email": f"c{n}.{offset}@example.com"},
                        "address": f"{street}, Springfield, IL 62704"}))
                for tool, rows in (("lookup_customer", lookups), ("create_job (new caller)", bookings)):
                    times = [t for t, _ in rows]
                    print(f"{label}: {tool}: p50 {statistics.median(times) * 1000:.0f} ms, p95 {p95(times) * 1000:.0f} ms, "
                          f"{statistics.median(r for _, r in rows):.0f} vendor requests per call ({len(rows)} calls)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vendor", choices=NAMES, default="servicetitan")
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--latency", type=float, default=0.15)
    anyio.run(run, ap.parse_args())


if __name__ == "__main__":
    main()
