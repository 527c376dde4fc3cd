"""SIGKILLs at random through the whole pipeline: vendor completions heard back, invoiced by the automation,
delivered to a webhook subscriber, while the server is killed -9 and started again.

    python benchmarks/pipeline_crash.py [--kills 30] [--jobs 150] [--over 150] [--max-alive 12] [--lost 0.1]
        [--settle 420] [--db postgresql://postgres@127.0.0.1:5432/postgres] [--seed 1]

The fake ServiceTitan and a webhook subscriber run in this process (they outlive every server); `fsm-mcp serve
--transport http` is a real process over them and over a store (a SQLite file, or a scratch PostgreSQL
database). `--jobs` jobs are booked in the fake's office, and `--bookings` through fsm-mcp's create_job over MCP (a call
cut off by a kill is sent again with its key to the next server); all are completed there at random over
`--over` seconds;
each completion is announced by a signed webhook to the server 1 to 3 times, `--lost` of them never, each copy
up to 3 s late, and a copy the server did not answer 2xx (it was down) is sent again 5 s later, as ServiceTitan
does. The server polls every 2 s (the catch-up), runs the automations (a price list bills each completion at the
vendor) and delivers every event to the subscriber. Meanwhile it is SIGKILLed `--kills` times, each after a
random life of up to `--max-alive` seconds, and started again at once. Then the last server runs until
everything settles (at most `--settle` seconds; its background work waits out the dead servers' store leases,
30 to 60 s).

Printed, from the store, the fake and the subscriber: completions in the fake and job.completed events per
job (exactly one each); job.created per job (one each: a booking's own event commits with its idempotency
record, and the poll may see the job first); jobs at the vendor per booking key (one each); invoices per job at the vendor with their totals (exactly one each, of the price list);
invoice.created events per job; events the subscriber received (each at least once: deduplicated by
webhook-id it must be exactly the outbox's set), copies it got more than once, bad signatures, jobs whose events
reached it out of order.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
from anyio.abc import Process
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.scratch import postgres_database
from benchmarks.webhooks_out import Receiver, free_port
from fsm_mcp.events import outbox, webhooks
from fsm_mcp.events.vendor_hooks import signature
from fsm_mcp.store import open_store
from tests.fakes.serve import serving
from tests.fakes.servicetitan import FakeServiceTitan, connector_env
from tests.vendor_rig import st_complete, st_job
from tests.when import MONDAY, window

TENANT = "default"
KEY = "benchmark-webhook-key-0123456789abcdef"
PRICE = Decimal("240.00")
CONFIG = """
[business]
timezone = "America/Chicago"
follow_up_days = 0

[business.job_types]
"Furnace repair" = "hvac"

[business.price_list]
"Furnace repair" = [{ description = "Flat rate", quantity = "1", unit_price = "240.00" }]
"""


@dataclass
class Run:
    kills: int = 0
    starts: int = 0
    sent: Counter[str] = field(default_factory=Counter)  # webhook copies by outcome
    completed: dict[str, float] = field(default_factory=dict)  # job id -> when completed in the fake
    booked: dict[str, str] = field(default_factory=dict)  # idempotency key -> job id, as create_job answered
    refused: list[str] = field(default_factory=list)  # create_job answers that were errors (then retried)
    settled_after: float = float("nan")


class Server:
    """`fsm-mcp serve --transport http` over the fake and the store, killed and started again."""

    def __init__(self, db: str, env: dict[str, str], log: Path) -> None:
        self.db, self.env, self.log = db, env, log
        self.port = free_port()
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await anyio.open_process(
                [sys.executable, "-m", "fsm_mcp", "serve", "--transport", "http", "--no-auth", "--port",
                 str(self.port), "--db", self.db], env=self.env, stdout=log, stderr=log)
        async with httpx.AsyncClient(timeout=0.5) as http:
            with anyio.fail_after(60):
                while True:
                    try:
                        await http.get(self.url + "/")
                        return
                    except httpx.TransportError:
                        if self.process.returncode is not None:
                            raise RuntimeError(f"the server exited; see {self.log}") from None
                        await anyio.sleep(0.05)

    async def kill(self) -> None:
        if self.process is not None:
            if self.process.returncode is None:
                self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
            await self.process.aclose()
            self.process = None


async def deliver(http: httpx.AsyncClient, server: Server, run: Run, job_id: str, delay: float) -> None:
    """One copy of ServiceTitan's webhook announcing the job's completion."""
    body = json.dumps({"eventType": "JobCompleted", "data": {"jobId": int(job_id)}}).encode()
    headers = {"X-ServiceTitan-Signature": signature(body, KEY, "base64")}
    await anyio.sleep(delay)
    for _ in range(40):  # ServiceTitan sends again a delivery not answered 2xx
        try:
            answer = await http.post(f"{server.url}/webhooks/servicetitan/{TENANT}", content=body, headers=headers)
            if 200 <= answer.status_code < 300:
                run.sent["answered 2xx"] += 1
                return
            run.sent[f"answered {answer.status_code}"] += 1
        except httpx.TransportError:
            run.sent["server down or cut off"] += 1
        await anyio.sleep(5)
    run.sent["given up"] += 1


def announce(fake: FakeServiceTitan, tg: Any, http: httpx.AsyncClient, server: Server, run: Run, job_id: str,
             args: argparse.Namespace, rng: random.Random) -> None:
    """The technician completes the job in ServiceTitan's app; its webhook goes out 0 to 3 times."""
    st_complete(fake, job_id)
    run.completed[job_id] = time.monotonic()
    copies = 0 if rng.random() < args.lost else rng.randint(1, 3)
    for _ in range(copies):
        tg.start_soon(deliver, http, server, run, job_id, rng.uniform(0, 3))
    if copies == 0:
        run.sent["lost"] += 1


async def vendor_side(fake: FakeServiceTitan, ids: list[str], server: Server, run: Run, args: argparse.Namespace,
                      rng: random.Random) -> None:
    """Complete every job in the fake at random over `--over` seconds, each announced by webhooks."""
    async with httpx.AsyncClient(timeout=10) as http, anyio.create_task_group() as tg:
        for job_id in rng.sample(ids, len(ids)):
            await anyio.sleep(rng.expovariate(len(ids) / args.over))
            announce(fake, tg, http, server, run, job_id, args, rng)


async def booker(fake: FakeServiceTitan, customer_id: str, tech: str, server: Server, run: Run,
                 args: argparse.Namespace, rng: random.Random) -> None:
    """Book `--bookings` jobs through fsm-mcp's create_job over MCP (each call cut off by a kill is sent again, with
    its key, to the next server), then complete each in the fake like the others."""
    async with httpx.AsyncClient(timeout=10) as http, anyio.create_task_group() as tg:
        for n in range(args.bookings):
            key = f"pipeline-{n}"
            when = window(MONDAY + timedelta(days=7 * (1 + n // 4)), 8 + 2 * (n % 4))  # the technician's own slot
            booking = {"customer_id": customer_id, "job_type": "Furnace repair", "summary": f"pipeline {key}",
                       "technician_id": tech, "idempotency_key": key, "allow_duplicate": True, **when}
            for _ in range(200):
                try:
                    with anyio.fail_after(30):
                        async with httpx.AsyncClient(timeout=30) as mcp_http, \
                                Client(streamable_http_client(server.url + "/mcp", http_client=mcp_http)) as client:
                            answer = await client.call_tool("create_job", booking)
                except Exception:  # the server was killed under the call, or is starting: the same key again
                    run.sent["bookings cut off"] += 1
                    await anyio.sleep(0.5)
                    continue
                if not answer.is_error and answer.structured_content is not None:
                    run.booked[key] = str(answer.structured_content["job_id"])
                    break
                run.refused.append(str(answer.content[0])[:200])  # e.g. "still working on it": retry with the key
                await anyio.sleep(1)
            if key in run.booked:
                await anyio.sleep(rng.uniform(0, 2))
                announce(fake, tg, http, server, run, run.booked[key], args, rng)
            await anyio.sleep(rng.uniform(0, args.over / max(1, args.bookings)))


def invoices_at(fake: FakeServiceTitan) -> dict[str, list[Decimal]]:
    """Job id -> the totals of its invoices that bill something (ServiceTitan opens an empty one per job)."""
    found: dict[str, list[Decimal]] = defaultdict(list)
    for invoice in fake.invoices.values():
        if Decimal(str(invoice["total"])):
            found[str(invoice["job"]["id"])].append(Decimal(str(invoice["total"])))
    return found


async def feed(db_path: str) -> list[outbox.Event]:
    db = open_store(db_path)
    try:
        events, cursor = [], None
        while True:
            page = await outbox.read(db, TENANT, cursor, limit=500)
            events += page.events
            cursor = page.cursor
            if not page.more:
                return events
    finally:
        db.close()


def audit(events: list[outbox.Event], ids: list[str], fake: FakeServiceTitan, receiver: Receiver) -> dict[str, Any]:
    completed = Counter(e.subject_id for e in events if e.type == "job.completed")
    created = Counter(e.subject_id for e in events if e.type == "job.created")
    billed = Counter(str(e.data["job_id"]) for e in events if e.type == "invoice.created")
    invoices = invoices_at(fake)
    rows = receiver.arrived["/ok"]
    got = Counter(body["id"] for _, body, _, _ in rows)
    seq = {e.id: n for n, e in enumerate(events)}
    first: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for _, body, _, _ in rows:
        if body["id"] not in seen and body["id"] in seq:
            seen.add(body["id"])
            first[f"{body['subject']['type']}:{body['subject']['id']}"].append(seq[body["id"]])
    outbox_ids = set(seq)
    return {
        "jobs": len(ids),
        "job.completed per job": dict(Counter(completed[j] for j in ids)),
        "job.created per job": dict(Counter(created[j] for j in ids)),
        "invoices at the vendor per job": dict(Counter(len(invoices.get(j, [])) for j in ids)),
        "invoices with a wrong total": sum(1 for ts in invoices.values() for t in ts if t != PRICE),
        "invoice.created per job": dict(Counter(billed[j] for j in ids)),
        "events in the outbox": len(events),
        "events the subscriber never got": len(outbox_ids - set(got)),
        "ids it got that the outbox lacks": len(set(got) - outbox_ids),
        "deliveries": len(rows), "events delivered more than once": sum(1 for n in got.values() if n > 1),
        "signatures verified on arrival": receiver.verified["/ok"], "bad signatures": receiver.bad["/ok"],
        "subjects out of order": sum(1 for ns in first.values() if ns != sorted(ns)),
    }


def settled(events: list[outbox.Event], ids: list[str], fake: FakeServiceTitan, receiver: Receiver) -> bool:
    done = {e.subject_id for e in events if e.type == "job.completed"}
    billed = {str(e.data["job_id"]) for e in events if e.type == "invoice.created"}
    invoices = invoices_at(fake)
    got = {body["id"] for _, body, _, _ in receiver.arrived["/ok"]}
    return (all(j in done and j in billed and invoices.get(j) for j in ids)
            and {e.id for e in events} <= got)


async def main(args: argparse.Namespace, db: str, folder: Path) -> None:
    rng = random.Random(args.seed)
    fake = FakeServiceTitan()
    tech = str(fake.add_technician("Dana Reyes", "HVAC; plumbing"))
    customer_id = str(fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701",
                                        phones=["(217) 555-0143"]))
    ids = [st_job(fake, tech, hour=8 + n % 8) for n in range(args.jobs)]
    receiver = Receiver()
    run = Run()
    config = folder / "fsm.toml"
    config.write_text(CONFIG)
    with serving(fake.app) as vendor_url, serving(receiver) as hooks_url:
        store = open_store(db)  # made and migrated here, so the subscriber is there before the first server
        try:
            _, receiver.secrets["/ok"] = await webhooks.add(store, TENANT, f"{hooks_url}/ok", [], allow_loopback_http=True)
        finally:
            store.close()
        env = {**os.environ, **connector_env(vendor_url), "FSM_MCP_CONFIG": str(config), "FSM_MCP_LOG_LEVEL": "WARNING",
               "FSM_MCP_SERVICETITAN_WEBHOOK_KEY": KEY, "FSM_MCP_SERVICETITAN_SYNC_INTERVAL": "2"}
        server = Server(db, env, folder / "server.log")
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            await server.start()
            run.starts += 1
            tg.start_soon(vendor_side, fake, ids, server, run, args, rng)
            tg.start_soon(booker, fake, customer_id, tech, server, run, args, random.Random(args.seed + 1))
            for _ in range(args.kills):
                await anyio.sleep(rng.uniform(0.2, args.max_alive))
                await server.kill()
                run.kills += 1
                await server.start()
                run.starts += 1
            killed_at = time.monotonic()
            print(f"{run.kills} kills in {killed_at - started:.0f} s; completions so far {len(run.completed)} of "
                  f"{len(ids)}", flush=True)
        # Every job is completed in the fake and every webhook copy sent or given up; the last server settles.
        booked_jobs = [j for j in fake.jobs.values() if str(j.get("summary") or "").startswith("pipeline ")]
        ids = ids + sorted({str(j["id"]) for j in booked_jobs})
        with anyio.move_on_after(args.settle):
            while not settled(await feed(db), ids, fake, receiver):
                await anyio.sleep(1)
            run.settled_after = time.monotonic() - killed_at
        await anyio.sleep(3)  # anything delivered or recorded twice, late, shows now
        await server.kill()
        out = audit(await feed(db), ids, fake, receiver)
        keys = Counter(str(j["summary"]).removeprefix("pipeline ") for j in booked_jobs)
        out["bookings through fsm-mcp"] = {
            "keys": args.bookings, "answered": len(run.booked), "jobs at the vendor per key": dict(Counter(
                keys.get(f"pipeline-{n}", 0) for n in range(args.bookings))),
            "answers naming another job than the key's": sum(1 for k, j in run.booked.items() if {
                str(b["id"]) for b in booked_jobs if b["summary"] == f"pipeline {k}"} != {j}),
            "error answers retried": len(run.refused), "examples": run.refused[:3]}
    print(f"store: {'PostgreSQL' if db.startswith('postgresql') else 'SQLite'}; kills {run.kills}, starts "
          f"{run.starts}; completions in the fake {len(run.completed)}; settled {run.settled_after:.0f} s after the "
          f"last kill and the last webhook (limit {args.settle:.0f} s)")
    print("webhook copies to the server:", json.dumps(dict(run.sent)))
    print(json.dumps(out, indent=1))
    print(f"wall {time.monotonic() - started:.0f} s; server log and store in {folder}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=150)
    parser.add_argument("--over", type=float, default=150.0, help="seconds over which the jobs are completed")
    parser.add_argument("--max-alive", type=float, default=12.0, help="longest a server lives before its kill, s")
    parser.add_argument("--lost", type=float, default=0.1)
    parser.add_argument("--bookings", type=int, default=40, help="jobs booked through fsm-mcp's create_job")
    parser.add_argument("--settle", type=float, default=420.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", default="sqlite", metavar="sqlite|postgresql://...")
    a = parser.parse_args()
    where = Path(tempfile.mkdtemp(prefix="pipeline-crash-"))
    with ExitStack() as stack:
        target = str(where / "pipeline.db") if a.db == "sqlite" else stack.enter_context(postgres_database(a.db, "pipe"))
        anyio.run(main, a, target, where)
