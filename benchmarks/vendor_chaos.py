"""500 tool calls over a vendor while it misbehaves: every call ends done or with a clear
tool error, nothing is duplicated, no request is sent again before its Retry-After.

    python benchmarks/vendor_chaos.py [--vendor servicetitan|fieldpulse|housecallpro] [--scenarios 63] [--concurrent 16]

The fake vendor (tests/fakes) serves over real HTTP on loopback and answers 30 % of
calls 429 (ServiceTitan and Housecall Pro: Retry-After: 1; FieldPulse: RateLimit-Reset,
epoch seconds, a second on), 5 % 503, loses the answer of 2 % of writes after doing them,
and (ServiceTitan) issues tokens that expire every 30 s. The real server (in-process MCP
client) plays scenarios of 8 calls each: lookup, slots, booking a new caller, dispatch,
arrived, working, completed (over Housecall Pro, whose API cannot complete a job, the
technician's app does it first and the call finds it done), invoice. An agent retries a
call that failed with "try again" or "may or may not" with the same arguments and
idempotency key (up to 3 times), as voice platforms do.

Printed: calls and their outcomes, retries, then the audit of the fake: jobs per
booking, customers per name, invoices per job, lines per invoice (each must be at most 1), requests
sent again before their Retry-After (must be 0), and what the chaos served.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.vendors import NAMES, Vendor
from fsm_mcp.connectors.http.client import retry_after
from fsm_mcp.server import build_server
from fsm_mcp.settings import Business
from tests.fakes.chaos import GRACE, Chaos
from tests.fakes.serve import serving
from tests.fakes.servicetitan import new_caller, seed_person
from tests.when import MONDAY as FIRST_DAY  # two weeks ahead of today: bookable whenever this runs

RETRYABLE = ("try again", "Try again", "may or may not")
BUSINESS = Business(timezone="America/Chicago", job_types={"Furnace repair": "hvac"})


class Audit(httpx.AsyncHTTPTransport):
    """The network edge of the server under test: counts requests sent while a 429 the client had already
    received for the same request (method, URL, body) still asked it to wait."""

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[tuple[str, str, bytes], float] = {}
        self.early: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        signature = (request.method, str(request.url), request.content)
        if (until := self.held.get(signature, 0.0)) > time.monotonic():
            self.early.append(until - time.monotonic())
        response = await super().handle_async_request(request)
        if response.status_code == 429 and (wait := retry_after(response)) is not None:
            self.held[signature] = time.monotonic() + wait
        return response


class Tally:
    def __init__(self) -> None:
        self.calls = 0
        self.done = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.unclear: list[str] = []
        self.retries = 0
        self.stopped = 0
        self.final: list[str] = []  # errors the agent did not retry

    async def call(self, client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any] | None:
        for attempt in range(4):
            self.calls += 1
            result = await client.call_tool(tool, args)
            if not result.is_error:
                self.done += 1
                return result.structured_content
            text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
            if any(w in text for w in ("Traceback", "httpx", "Exception", "Error executing tool" + " " + tool + ": {")):
                self.unclear.append(text[:300])
            kind = text.split(": ", 2)[1][:60] if text.count(": ") >= 2 else text[:60]
            self.errors[f"{tool}: {kind}"] += 1
            if attempt < 3 and any(w in text for w in RETRYABLE):
                self.retries += 1
                continue
            self.final.append(text[:400])
            return None
        return None


async def scenario(client: Client, tally: Tally, i: int, tech: str, vendor: Vendor) -> None:
    name, street = new_caller(i)
    phone = f"312555{i:04d}"
    day = (FIRST_DAY + timedelta(days=i % 28)).isoformat()
    hour = 8 + (i // 28) % 8
    steps: list[tuple[str, dict[str, Any]]] = [
        ("lookup_customer", {"phone": phone, "name": name}),
        ("find_available_slots", {"job_type": "Furnace repair", "date_from": day, "date_to": day}),
    ]
    for tool, args in steps:
        await tally.call(client, tool, args)
    booked = await tally.call(client, "create_job", {
        "job_type": "Furnace repair", "summary": "No heat", "idempotency_key": f"job-{i}",
        "window_start": f"{day}T{hour:02d}:00", "window_end": f"{day}T{hour + 1:02d}:00",
        "customer": {"name": name, "phone": phone}, "address": f"{street}, Springfield, IL 62701"})
    if booked is None:
        tally.stopped += 1
        return
    job = booked["job_id"]
    follow: list[tuple[str, dict[str, Any]]] = [
        ("dispatch_technician", {"job_id": job, "technician_id": tech, "idempotency_key": f"disp-{i}"}),
        ("update_job_status", {"job_id": job, "status": "arrived"}),
        ("update_job_status", {"job_id": job, "status": "working"}),
        ("update_job_status", {"job_id": job, "status": "completed"}),
        ("create_invoice", {"job_id": job, "idempotency_key": f"inv-{i}", "tax_rate": "0.0625",
                            "line_items": [{"description": "Igniter", "kind": "material", "quantity": "1",
                                            "unit_price": "89.50"}]}),
    ]
    for tool, args in follow:
        if args.get("status") == "completed":
            vendor.app_completes(job)
        if await tally.call(client, tool, args) is None:
            tally.stopped += 1
            return


async def run(args: argparse.Namespace) -> None:
    vendor = Vendor.make(args.vendor, Chaos(p429=0.30, retry_after="1", p503=0.05, p_lost=0.02, seed=11), token_ttl=30)
    fake = vendor.fake
    techs = [vendor.technician(f"Tech {n}") for n in range(20)]
    for n in range(200):
        person, street = seed_person(n)
        vendor.customer(person, street, "62701", f"217555{n:04d}")
    tally = Tally()
    with serving(fake.app) as url, tempfile.TemporaryDirectory() as tmp:
        settings = vendor.settings(url, Path(tmp) / "chaos.db", BUSINESS, techs, sync_interval=3600)
        started = time.monotonic()
        audit = Audit()
        async with Client(build_server(settings, audit)) as client:
            limiter = anyio.Semaphore(args.concurrent)

            async def one(i: int) -> None:
                async with limiter:
                    await scenario(client, tally, i, techs[i % len(techs)], vendor)

            async with anyio.create_task_group() as tg:
                for i in range(args.scenarios):
                    tg.start_soon(one, i)
        elapsed = time.monotonic() - started

    codes = collections.Counter(x.status for x in fake.door.log)
    print(f"{tally.calls} calls in {elapsed:.0f} s: {tally.done} done, {sum(tally.errors.values())} tool errors "
          f"({tally.retries} of them retried by the agent), {tally.stopped} scenarios stopped by an error; "
          f"{len(tally.unclear)} errors unclear")
    for kind, n in tally.errors.most_common():
        print(f"  {n:4d}  {kind}")
    for text in tally.final[:5]:
        print(f"  not retried: {text}")
    for text in tally.unclear[:5]:
        print(f"  unclear: {text}")
    print(vendor.audit())
    print(f"requests sent while a 429 received for the same request still asked to wait: {len(audit.early)} "
          f"(seen at the server's network edge); any request arriving at the fake inside a hold it had given the tenant, "
          f"over {GRACE * 1000:.0f} ms after the 429 left (one may already be on its way): {vendor.inside_hold()}")
    for early, method, url in fake.door.too_early[:5]:
        print(f"  {early:.3f} s early: {method} {url}")
    print(f"the fake served {len(fake.door.log)} requests: {codes[429]} x 429, {codes[503]} x 503, "
          f"{codes[504]} answers lost after the write, {vendor.tokens()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vendor", choices=NAMES, default="servicetitan")
    ap.add_argument("--scenarios", type=int, default=63, help="8 calls each (more with the agent's retries)")
    ap.add_argument("--concurrent", type=int, default=16)
    anyio.run(run, ap.parse_args())


if __name__ == "__main__":
    main()
