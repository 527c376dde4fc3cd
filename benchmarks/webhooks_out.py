"""Webhooks out, over real HTTP on loopback: a subscriber down for a while, one answering 500 forever, and
one healthy, fed by the outbox while the delivery worker runs.

    python benchmarks/webhooks_out.py [--jobs 40] [--moves 5] [--rate 25] [--down 8] [--cap 1.0]
        [--first-retry 0.1] [--attempts 20] [--max-age 600]

Unscaled, as the issue asks (a subscriber down 10 real minutes, the delivery worker's default backoff: first
retry after 1 s, doubling, capped at 10 minutes; 30 attempts), with deliveries dead after 25 minutes so that
the 500 one ends in the dead-letter list within the run (the default is 24 hours), about 25 minutes:

    python benchmarks/webhooks_out.py --down 600 --cap 600 --first-retry 1 --attempts 30 --max-age 1500

By default time is scaled down: the issue's subscriber is down for 10 minutes against the default backoff cap of 10
minutes; here it is down `--down` seconds against a cap of `--cap` seconds (8 s against 1 s: as many capped
retries during the outage as a 10-minute outage at the default cap gives, about 8, and the dead-letter
threshold is scaled the same way: 20 attempts). The events are recorded through the outbox as the services
record them (`outbox.record`), `--moves` per job, at `--rate` a second.

Phase 1: the healthy subscriber alone (its delivery latency, event recorded -> received, p50/p95).
Phase 2: the same traffic with the down subscriber and the 500 one beside it. Printed: the healthy one's
latency again; for the down one, events received / recorded, signatures verified, jobs whose events arrived
out of order; for the 500 one, how many of its deliveries ended in the dead-letter list, and when.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from standardwebhooks import Webhook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fsm_mcp.events import outbox, webhooks
from fsm_mcp.events.delivery import Policy, delivering
from fsm_mcp.store import open_store

TENANT = "default"


class Receiver:
    """An ASGI app: /ok takes everything, /broken answers 500; arrival times and bodies by path. A delivery to a
    path in `secrets` is verified as it arrives (Standard Webhooks refuses a timestamp more than 5 minutes from
    now, so a check after a long run would fail deliveries that were good): `verified` and `bad` by path."""

    def __init__(self) -> None:
        self.arrived: dict[str, list[tuple[float, dict[str, Any], dict[str, str], bytes]]] = defaultdict(list)
        self.secrets: dict[str, str] = {}
        self.verified: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.arrived[scope["path"]].append((time.perf_counter(), json.loads(body), headers, body))
        if (secret := self.secrets.get(scope["path"])) is not None:
            try:
                Webhook(secret).verify(body, headers)
                self.verified[scope["path"]] += 1
            except Exception:
                self.bad[scope["path"]] += 1
        status = 500 if scope["path"] == "/broken" else 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def serve(app: Receiver, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    return server


async def phase(args: argparse.Namespace, with_others: bool) -> dict[str, Any]:
    tmp = tempfile.mkdtemp()
    db = open_store(Path(tmp) / "w.db")
    receiver, late = Receiver(), Receiver()
    port, down_port = free_port(), free_port()
    subs: dict[str, tuple[str, str]] = {}
    for name, url in [("ok", f"http://127.0.0.1:{port}/ok")] + (
            [("down", f"http://127.0.0.1:{down_port}/down"), ("broken", f"http://127.0.0.1:{port}/broken")]
            if with_others else []):
        sub, secret = await webhooks.add(db, TENANT, url, [], allow_loopback_http=True)
        subs[name] = (sub.id, secret)
        (late if name == "down" else receiver).secrets[f"/{name}"] = secret
    policy = Policy(poll=0.05, first_retry=args.first_retry, max_backoff=timedelta(seconds=args.cap),
                    max_attempts=args.attempts, max_age=timedelta(seconds=args.max_age), timeout=2.0)
    recorded: dict[str, float] = {}
    order: dict[str, int] = {}
    main = serve(receiver, port)
    later = serve(late, down_port)
    dead_at = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(main.serve)
        async with delivering(db, {TENANT: timedelta(days=30)}, policy=policy):
            started = time.perf_counter()
            if with_others:
                async def come_back() -> None:
                    await anyio.sleep(args.down)
                    await later.serve()
                tg.start_soon(come_back)
            n = 0
            for move in range(args.moves):
                for job in range(args.jobs):
                    event_id = await outbox.record(db, TENANT, "job.status_changed", "job", f"job_{job}",
                                                   {"job_id": f"job_{job}", "move": move})
                    recorded[event_id] = time.perf_counter()
                    order[event_id] = n
                    n += 1
                    await anyio.sleep(1 / args.rate)
            total = len(recorded)
            # The down one's last capped retry may come up to a cap after it is back; the 500 one dies by age at
            # the latest (then its later events, as old, on their first attempt).
            with anyio.fail_after(max(120.0, args.down + 2 * args.cap + 60, args.max_age + 120) if with_others
                                  else 120):
                while True:
                    ok = {b["id"] for _, b, _, _ in receiver.arrived["/ok"]}
                    back = {b["id"] for _, b, _, _ in late.arrived["/down"]}
                    dead = len(await webhooks.dead_letters(db, TENANT, subs["broken"][0], 10_000)) if with_others else 0
                    if dead == total and dead_at is None:
                        dead_at = time.perf_counter() - started
                    if len(ok) == total and (not with_others or (len(back) == total and dead == total)):
                        break
                    await anyio.sleep(0.1)
        main.should_exit = later.should_exit = True
    db.close()

    def first_arrivals(rows: list[Any]) -> dict[str, float]:
        first: dict[str, float] = {}
        for at, body, _, _ in rows:
            first.setdefault(body["id"], at)
        return first

    ok_first = first_arrivals(receiver.arrived["/ok"])
    latency = [ok_first[e] - recorded[e] for e in recorded]
    out: dict[str, Any] = {"events": total, "ok_received": len(ok_first),
                           "ok_p50_ms": round(pct(latency, 0.5) * 1000, 1),
                           "ok_p95_ms": round(pct(latency, 0.95) * 1000, 1),
                           "ok_max_ms": round(max(latency) * 1000, 1)}
    if with_others:
        rows = late.arrived["/down"]
        verified = late.verified["/down"]
        per_job: dict[str, list[int]] = defaultdict(list)
        seen: set[str] = set()
        for _, body, _, _ in rows:
            if body["id"] not in seen:
                seen.add(body["id"])
                per_job[body["subject"]["id"]].append(order[body["id"]])
        out |= {"down_for_s": args.down, "down_received_unique": len(seen), "down_deliveries": len(rows),
                "down_signatures_verified": verified, "down_bad_signatures": late.bad["/down"],
                "down_jobs_out_of_order": sum(1 for ns in per_job.values() if ns != sorted(ns)),
                "down_all_received_after_s": round(max(a for a, _, _, _ in rows) - started, 1),
                "broken_attempts": len(receiver.arrived["/broken"]), "broken_dead_letters": total,
                "broken_all_dead_after_s": round(dead_at or float("nan"), 1)}
    return out


async def main(args: argparse.Namespace) -> None:
    alone = await phase(args, with_others=False)
    print("phase 1, healthy subscriber alone:", json.dumps(alone))
    beside = await phase(args, with_others=True)
    print("phase 2, beside a down one and a 500 one:", json.dumps(beside))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--moves", type=int, default=5)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--down", type=float, default=8.0)
    parser.add_argument("--cap", type=float, default=1.0, help="backoff cap, seconds")
    parser.add_argument("--first-retry", type=float, default=0.1, help="seconds before the second attempt")
    parser.add_argument("--attempts", type=int, default=20, help="attempts before a delivery is dead")
    parser.add_argument("--max-age", type=float, default=600.0, help="seconds after which a delivery is dead")
    anyio.run(main, parser.parse_args())
