"""SIGKILLs at random through the whole pipeline: vendor completions heard back, invoiced by the automation,
delivered to a webhook subscriber, while the server is killed -9 and started again.

    python benchmarks/pipeline_crash.py [--kills 30] [--jobs 150] [--over 150] [--max-alive 12] [--lost 0.1]
        [--settle 420] [--db postgresql://postgres@127.0.0.1:5432/postgres] [--seed 1]

The fake ServiceTitan and a webhook subscriber run in this process (they outlive every server); `fsm-mcp serve
--transport http` is a real process over them and over a store (a SQLite file, or a scratch PostgreSQL
database). `--jobs` jobs are booked in the fake's office, then completed there at random over `--over` seconds;
each completion is announced by a signed webhook to the server 1 to 3 times, `--lost` of them never, each copy
up to 3 s late, and a copy the server did not answer 2xx (it was down) is sent again 5 s later, as ServiceTitan
does. The server polls every 2 s (the catch-up), runs the automations (a price list bills each completion at the
vendor) and delivers every event to the subscriber. Meanwhile it is SIGKILLed `--kills` times, each after a
random life of up to `--max-alive` seconds, and started again at once. Then the last server runs until
everything settles (at most `--settle` seconds; its background work waits out the dead servers' store leases,
30 to 60 s).

Printed, from the store, the fake and the subscriber: completions in the fake and job.completed events per
job (exactly one each); invoices per job at the vendor with their totals (exactly one each, of the price list);
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
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
from anyio.abc import Process

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.scratch import postgres_database
from benchmarks.webhooks_out import Receiver, free_port
from fsm_mcp.events import outbox, webhooks
from fsm_mcp.events.vendor_hooks import signature
from fsm_mcp.store import open_store
from tests.fakes.serve import serving
from tests.fakes.servicetitan import FakeServiceTitan, connector_env
from tests.vendor_rig import st_complete, st_job

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


async def vendor_side(fake: FakeServiceTitan, ids: list[str], server: Server, run: Run, args: argparse.Namespace,
                      rng: random.Random) -> None:
    """Complete every job in the fake at random over `--over` seconds, each announced by webhooks."""

    async def deliver(http: httpx.AsyncClient, job_id: str, delay: float) -> None:
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

    async with httpx.AsyncClient(timeout=10) as http, anyio.create_task_group() as tg:
        for job_id in rng.sample(ids, len(ids)):
            await anyio.sleep(rng.expovariate(len(ids) / args.over))
            st_complete(fake, job_id)
            run.completed[job_id] = time.monotonic()
            copies = 0 if rng.random() < args.lost else rng.randint(1, 3)
            for _ in range(copies):
                tg.start_soon(deliver, http, job_id, rng.uniform(0, 3))
            if copies == 0:
                run.sent["lost"] += 1


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
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=["(217) 555-0143"])
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
        with anyio.move_on_after(args.settle):
            while not settled(await feed(db), ids, fake, receiver):
                await anyio.sleep(1)
            run.settled_after = time.monotonic() - killed_at
        await anyio.sleep(3)  # anything delivered or recorded twice, late, shows now
        await server.kill()
        out = audit(await feed(db), ids, fake, receiver)
    print(f"store: {'PostgreSQL' if db.startswith('postgresql') else 'SQLite'}; kills {run.kills}, starts "
          f"{run.starts}; completions in the fake {len(run.completed)}; settled {run.settled_after:.0f} s after the "
          f"last restart (limit {args.settle:.0f} s)")
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
    parser.add_argument("--settle", type=float, default=420.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", default="sqlite", metavar="sqlite|postgresql://...")
    a = parser.parse_args()
    where = Path(tempfile.mkdtemp(prefix="pipeline-crash-"))
    with ExitStack() as stack:
        target = str(where / "pipeline.db") if a.db == "sqlite" else stack.enter_context(postgres_database(a.db, "pipe"))
        anyio.run(main, a, target, where)
