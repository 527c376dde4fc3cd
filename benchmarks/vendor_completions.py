"""Jobs completed in the fake ServiceTitan's (or FieldPulse's) own app, heard back by fsm-mcp over real
loopback HTTP: the fake on one port, `fsm-mcp`'s HTTP app (its background poll running) on another.

    python benchmarks/vendor_completions.py [--vendor servicetitan|fieldpulse] [--jobs 200] [--over 20]
        [--interval 5] [--lost 0.1] [--mode both] [--p429 0.01] [--lost-answers 0.02] [--rate published]

`--jobs` jobs are booked in the fake before the server starts, then completed there at random over `--over`
seconds. With webhooks, each completion is delivered 1 to 3 times (signed for ServiceTitan; for FieldPulse,
unsigned, to the business's secret path), `--lost` of them never, each copy after a random delay of up to
3 s (so deliveries arrive late and out of order). The poll runs every
`--interval` seconds either way (the catch-up). Printed per mode: completions seen (one job.completed event
per job expected, none missing, none twice) and the latency from the completion in the fake to its event
being in the store (watched every 50 ms): p50, p95, max; and of the time from the event to its invoice, how much
passed before billing began (the first read of the job's invoices at the fake) and how long billing took. The server runs its automations (as `fsm-mcp serve`
does) with a price list for the jobs' type, so each completion is invoiced at the vendor by system:automation:
printed too are invoices per job at the fake (exactly one each, of the price list's total) and the latency from
the completion in the fake to its invoice.created event, and the requests the fake answered from the first
completion on: in all, per completion, and by kind (429s counted apart).

The fake throttles at the vendor's published rate (ServiceTitan 60 requests a second, FieldPulse 50; `--rate 0`
for none), answers `--p429` of all requests 429 besides (Retry-After 1 s: the vendor then refuses the whole
tenant for that second, and a request inside it is counted), and loses `--lost-answers` of the write answers
after doing the write (504), as the issue's chaos asks. Printed too: 429s, and requests inside a hold (0 expected).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fsm_mcp.access.config import AccessSettings
from fsm_mcp.access.http import http_app
from fsm_mcp.events import outbox
from fsm_mcp.events.vendor_hooks import signature
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from tests.fakes.chaos import Chaos
from tests.fakes.fieldpulse import FakeFieldPulse
from tests.fakes.fieldpulse import connector_settings as fp_connector
from tests.fakes.serve import serving
from tests.fakes.servicetitan import FakeServiceTitan
from tests.st_rig import BUSINESS, st_settings
from tests.vendor_rig import fp_complete, fp_job, st_complete, st_job

KEY = "benchmark-webhook-key-0123456789abcdef"
TENANT = BUSINESS.tenant_id
PRICE = Decimal("240.00")
PRICED = BUSINESS.model_copy(update={"price_list": {"Furnace repair": [
    LineItemIn(description="Flat rate", quantity=Decimal(1), unit_price=PRICE)]}})


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


class Vendor:
    """The fake, its jobs, and what a webhook from it looks like."""

    def __init__(self, name: str, jobs: int, chaos: Chaos) -> None:
        self.name = name
        if name == "servicetitan":
            self.fake: Any = FakeServiceTitan(chaos)
            tech = str(self.fake.add_technician("Dana Reyes", "HVAC; plumbing"))
            self.fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=["(217) 555-0143"])
            self.ids = [st_job(self.fake, tech, hour=8 + n % 8) for n in range(jobs)]
        else:
            self.fake = FakeFieldPulse(chaos)
            tech = str(self.fake.add_technician("Dana Reyes"))
            self.fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=("(217) 555-0143",))
            self.ids = [fp_job(self.fake, tech, hour=8 + n % 8) for n in range(jobs)]
        self.fake.door.keep_bodies = False

    def settings(self, db: Path, url: str, interval: float) -> Settings:
        if self.name == "servicetitan":
            return Settings(db_path=db, business=PRICED, backend="servicetitan", servicetitan=st_settings(
                api_url=url, auth_url=url, webhook_key=KEY, sync_interval=interval))
        return Settings(db_path=db, business=PRICED, backend="fieldpulse",
                        fieldpulse=fp_connector(url, webhook_secret=KEY, sync_interval=interval))

    def invoices(self) -> dict[str, list[Decimal]]:
        """Job id -> the totals of its invoices at the fake that bill something (ServiceTitan opens an empty one
        with each job)."""
        found: dict[str, list[Decimal]] = {}
        for invoice in self.fake.invoices.values():
            job = invoice["job"]["id"] if self.name == "servicetitan" else invoice.get("job_id")
            total = Decimal(str(invoice["total"]))
            if job is not None and total:
                found.setdefault(str(job), []).append(total)
        return found

    def requests(self) -> list[tuple[float, str, int]]:
        """(when, "METHOD /path" with ids as {id}, status) of each request the fake answered."""
        return [(x.at, f"{x.method} {re.sub(r'/[0-9]+', '/{id}', x.path)}", x.status) for x in self.fake.door.log]

    def billing_began(self) -> dict[str, float]:
        """Job id -> when the fake answered the first request of its billing (the read of the job's invoices)."""
        began: dict[str, float] = {}
        for x in self.fake.door.log:
            if x.method != "GET" or not x.path.endswith("/invoices"):
                continue
            if self.name == "servicetitan":
                job = x.query.get("jobId")
            else:
                found = re.search(r"job_id.{0,12}?(\d+)", x.query.get("filter", ""))
                job = found.group(1) if found else None
            if job:
                began.setdefault(job, x.at)
        return began

    def complete(self, job_id: str) -> None:
        (st_complete if self.name == "servicetitan" else fp_complete)(self.fake, job_id)

    def delivery(self, app: str, job_id: str) -> tuple[str, bytes, dict[str, str]]:
        """(url, body, headers) of one webhook telling of the job's completion."""
        if self.name == "servicetitan":
            body = json.dumps({"eventType": "JobCompleted", "data": {"jobId": int(job_id)}}).encode()
            return (f"{app}/webhooks/servicetitan/{TENANT}", body,
                    {"X-ServiceTitan-Signature": signature(body, KEY, "base64")})
        body = json.dumps({"trigger": "Job Custom Status Update", "message": "UPDATE ON JOBS FOR status_id",
                           "data": {"old_value": 1, "new_value": 4, "object": {"id": int(job_id)}}}).encode()
        return f"{app}/webhooks/fieldpulse/{TENANT}/{KEY}", body, {}


PUBLISHED = {"servicetitan": 60.0, "fieldpulse": 50.0}  # requests a second (../shared/specs/README.md)


async def run(vendor_name: str, jobs: int, over: float, interval: float, lost: float, webhooks: bool,
              seed: int, chaos: Chaos) -> dict[str, Any]:
    rng = random.Random(seed)
    vendor_of = Vendor(vendor_name, jobs, chaos)
    fake, ids = vendor_of.fake, vendor_of.ids
    done_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    billed_at: dict[str, float] = {}
    counts: Counter[str] = Counter()
    deliveries: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp, serving(fake.app) as vendor:
        settings = vendor_of.settings(Path(tmp) / "bench.db", vendor, interval)
        db = open_store(settings.db_path)
        with serving(http_app(build_server(settings, automate=True, keep_books=False), AccessSettings(), None)) as app:
            await anyio.sleep(1.0)  # the first poll has run: it watches from here on

            async def deliver(http: httpx.AsyncClient, job_id: str) -> None:
                hook, body, headers = vendor_of.delivery(app, job_id)
                copies = 0 if rng.random() < lost else rng.randint(1, 3)

                async def one() -> None:
                    await anyio.sleep(rng.uniform(0, 3))
                    answer = await http.post(hook, content=body, headers=headers)
                    deliveries[str(answer.status_code)] += 1

                async with anyio.create_task_group() as tg:
                    for _ in range(copies):
                        tg.start_soon(one)

            async def complete_all(http: httpx.AsyncClient) -> None:
                async with anyio.create_task_group() as tg:
                    for job_id in rng.sample(ids, len(ids)):
                        await anyio.sleep(rng.expovariate(len(ids) / over))
                        vendor_of.complete(job_id)
                        done_at[job_id] = time.monotonic()
                        if webhooks:
                            tg.start_soon(deliver, http, job_id)

            async def watch() -> None:
                cursor = None
                while len(seen_at) < jobs or len(billed_at) < jobs:
                    page = await outbox.read(db, TENANT, cursor, limit=500)
                    now = time.monotonic()
                    for e in page.events:
                        if e.type == "job.completed":
                            counts[e.subject_id] += 1
                            seen_at.setdefault(e.subject_id, now)
                        elif e.type == "invoice.created":
                            billed_at.setdefault(str(e.data["job_id"]), now)
                    cursor = page.cursor
                    if not page.more:
                        await anyio.sleep(0.05)

            started, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
            async with httpx.AsyncClient(timeout=30) as http:
                with anyio.move_on_after(over + 3 * interval + 60):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(watch)
                        await complete_all(http)
            busy = resource.getrusage(resource.RUSAGE_SELF)
            cpu_share = (busy.ru_utime + busy.ru_stime - cpu.ru_utime - cpu.ru_stime) / (time.monotonic() - started)
            await anyio.sleep(interval + 1)  # anything recorded twice, late, shows now
            total: Counter[str] = Counter()
            cursor = None
            while True:
                page = await outbox.read(db, TENANT, cursor, limit=500)
                total.update(e.subject_id for e in page.events if e.type == "job.completed")
                cursor = page.cursor
                if not page.more:
                    break
        db.close()
    latencies = [seen_at[j] - done_at[j] for j in seen_at if j in done_at]
    to_invoice = [billed_at[j] - done_at[j] for j in billed_at if j in done_at]
    invoices = vendor_of.invoices()
    began = vendor_of.billing_began()
    to_billing = [began[j] - seen_at[j] for j in seen_at if j in began]
    billing = [billed_at[j] - began[j] for j in billed_at if j in began]
    first = min(done_at.values(), default=started)
    asked = [(kind, status) for at, kind, status in vendor_of.requests() if at >= first]
    kinds = Counter(kind if status != 429 else "429" for kind, status in asked)
    return {"vendor": vendor_name, "mode": "webhooks + poll" if webhooks else "poll only", "jobs": jobs,
            "completions seen": len(seen_at), "missing": jobs - len(total), "seen twice": sum(1 for c in total.values() if c > 1),
            "p50 s": round(percentile(latencies, 50), 2), "p95 s": round(percentile(latencies, 95), 2),
            "max s": round(max(latencies, default=float("nan")), 2),
            "jobs with one invoice": sum(1 for j in ids if len(invoices.get(j, [])) == 1),
            "jobs with none": sum(1 for j in ids if j not in invoices),
            "jobs with more": sum(1 for j in ids if len(invoices.get(j, [])) > 1),
            "wrong totals": sum(1 for totals in invoices.values() for t in totals if t != PRICE),
            "to invoice p50 s": round(percentile(to_invoice, 50), 2), "to invoice p95 s": round(percentile(to_invoice, 95), 2),
            "to invoice max s": round(max(to_invoice, default=float("nan")), 2),
            "seen to billing begun p50/p95 s": [round(percentile(to_billing, p), 2) for p in (50, 95)],
            "billing p50/p95 s": [round(percentile(billing, p), 2) for p in (50, 95)],
            "wall s": round(time.monotonic() - started, 1), "process CPU share": round(cpu_share, 2), "webhook answers": dict(deliveries),
            "answered 429": sum(1 for _, status in asked if status == 429), "inside a hold": fake.door.inside_hold,
            "lost answers (504)": sum(1 for _, status in asked if status == 504),
            "vendor requests": len(asked), "requests per completion": round(len(asked) / max(1, jobs), 2),
            "requests by kind": dict(kinds.most_common())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--over", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--lost", type=float, default=0.1)
    parser.add_argument("--mode", choices=("both", "webhooks", "poll"), default="both")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--vendor", choices=("servicetitan", "fieldpulse"), default="servicetitan")
    parser.add_argument("--p429", type=float, default=0.005, help="share of requests answered 429 besides the rate")
    parser.add_argument("--lost-answers", type=float, default=0.02, help="share of write answers lost after the write")
    parser.add_argument("--rate", type=float, default=None, help="requests a second the fake allows (default: published)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("httpx", "httpx2", "fsm_mcp", "mcp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for webhooks in {"both": (True, False), "webhooks": (True,), "poll": (False,)}[args.mode]:
        rate = PUBLISHED[args.vendor] if args.rate is None else args.rate or None
        chaos = Chaos(rate=rate, p429=args.p429, p_lost=args.lost_answers, retry_after="1", seed=args.seed)
        print(json.dumps(anyio.run(run, args.vendor, args.jobs, args.over, args.interval, args.lost, webhooks,
                                   args.seed, chaos)))


if __name__ == "__main__":
    main()
