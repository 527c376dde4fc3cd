"""One idempotency key sent many times at once across several stateless replicas: how many jobs the vendor gets.

    python benchmarks/replica_idempotency.py [--vendor servicetitan|fieldpulse] [--processes 3] [--keys 50]
                                             [--sends 21] [--keys-at-once 5]
                                             [--db sqlite] [--db postgresql://postgres@127.0.0.1:5432/postgres]
                                             [--redis redis://127.0.0.1:6379/0]

Starts the fake vendor over real HTTP on loopback and `--processes` real `fsm-mcp serve --transport http
--stateless` processes on one store: a SQLite file, or a scratch PostgreSQL database made on the server
a `postgresql://` URL names and dropped after (`--db` may be given several times: each store is measured in
turn, in the same run, over a fresh fake). `--redis`: the replicas share the vendor lanes and the caller
limits in a Redis database of the run's own (emptied after). Each key books a new caller (a different one per key); its
`--sends` sends go out at once, spread evenly over the processes, as a voice platform's retries would
land behind a load balancer; `--keys-at-once` keys are in flight together. Printed: jobs and customers
per key at the vendor (each must be 1), whether every send of a key got the same answer, the sends that
failed, and latency medians (a send's call, from request to answer; the slowest send of each key).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.scratch import postgres_database, redis_database
from fsm_mcp.access.callers import SCOPES
from tests.fakes import fieldpulse, servicetitan
from tests.fakes.serve import serving as vendor_serving
from tests.fakes.servicetitan import new_caller
from tests.http_rig import ENV, new_key, serving
from tests.when import MONDAY, window


def booking(n: int) -> dict[str, Any]:
    """Key n's booking: a new caller unlike every other key's (up to 72)."""
    name, street = new_caller(n)
    caller = {"name": name, "phone": f"312555{n:04d}", "email": f"caller{n}@example.com"}
    return {"job_type": "Furnace repair", "summary": "No heat", "customer": caller,
            "address": f"{street}, Springfield, IL 62704", **window(MONDAY, 9)}


def vendor_jobs(name: str, fake: Any) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Jobs per customer and customers per name at the vendor."""
    if name == "servicetitan":
        names = {cid: c["name"] for cid, c in fake.customers.items()}
        jobs = collections.Counter(names[j["customerId"]] for j in fake.jobs.values())
        return jobs, collections.Counter(names.values())
    names = {cid: c.get("display_name") or f"{c.get('first_name')} {c.get('last_name')}" for cid, c in fake.customers.items()}
    jobs = collections.Counter(names[int(j["customer_id"])] for j in fake.jobs.values())
    return jobs, collections.Counter(names.values())


async def run(bases: list[str], key: str, keys: int, sends: int, at_once: int) -> dict[str, Any]:
    latencies: list[float] = []
    slowest: list[float] = []
    answers: dict[int, list[str]] = collections.defaultdict(list)
    failures: list[str] = []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120,
                                 limits=httpx.Limits(max_connections=500)) as http:
        sessions = [Client(streamable_http_client(base + "/mcp", http_client=http)) for base in bases]
        opened = [await s.__aenter__() for s in sessions]
        try:
            limiter = anyio.CapacityLimiter(at_once)

            async def one_key(k: int) -> None:
                async with limiter:
                    mine: list[float] = []

                    async def send(n: int) -> None:
                        began = time.perf_counter()
                        result = await opened[n % len(opened)].call_tool(
                            "create_job", {"idempotency_key": f"bench-{k}", **booking(k)})
                        mine.append(time.perf_counter() - began)
                        if result.is_error or result.structured_content is None:
                            failures.append(str(result.content[0].text)[:120])  # type: ignore[union-attr]
                        else:
                            answers[k].append(str(result.structured_content["job_id"]))

                    async with anyio.create_task_group() as tg:
                        for n in range(sends):
                            tg.start_soon(send, n)
                    latencies.extend(mine)
                    slowest.append(max(mine))

            began = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for k in range(keys):
                    tg.start_soon(one_key, k)
            elapsed = time.perf_counter() - began
        finally:
            for s in reversed(sessions):
                await s.__aexit__(None, None, None)
    return {"latencies": latencies, "slowest": slowest, "answers": answers, "failures": failures, "elapsed": elapsed}


def measure(args: argparse.Namespace, store: str, redis_url: str | None) -> None:
    if args.vendor == "servicetitan":
        fake: Any = servicetitan.FakeServiceTitan()
        fake.add_technician("Dana Reyes", "HVAC; plumbing")
    else:
        fake = fieldpulse.FakeFieldPulse()
        fake.add_technician("Dana Reyes")
    with tempfile.TemporaryDirectory() as tmp, vendor_serving(fake.app) as url, ExitStack() as stores:
        db: Any = Path(tmp) / "replicas.db" if store == "sqlite" else stores.enter_context(
            postgres_database(store, "replicas"))
        env = {**ENV, **(servicetitan.connector_env(url) if args.vendor == "servicetitan" else fieldpulse.connector_env(url)),
               "FSM_MCP_SERVE_CALLS_PER_MINUTE": "1000000", "FSM_MCP_SERVE_WRITES_PER_MINUTE": "1000000"}
        if redis_url:
            env["FSM_MCP_REDIS_URL"] = redis_url
        key = new_key(db, "bench", *SCOPES, env=env)
        with ExitStack() as stack:
            bases = [stack.enter_context(serving(db, "--stateless", env=env)) for _ in range(args.processes)]
            out = anyio.run(run, bases, key, args.keys, args.sends, args.keys_at_once)
    jobs, customers = vendor_jobs(args.vendor, fake)
    per_key = [jobs.get(booking(k)["customer"]["name"], 0) for k in range(args.keys)]
    customers_per_key = [customers.get(booking(k)["customer"]["name"], 0) for k in range(args.keys)]
    agreed = sum(1 for k in range(args.keys) if len(set(out["answers"][k])) == 1)
    ms = sorted(x * 1000 for x in out["latencies"])
    kind = "SQLite" if store == "sqlite" else "PostgreSQL"
    print(f"{args.vendor}: {args.processes} stateless processes on one {kind} store"
          f"{' and Redis' if redis_url else ''}, {args.keys} keys x {args.sends} "
          f"concurrent sends ({args.keys_at_once} keys at once), {len(ms)} sends in {out['elapsed']:.1f} s")
    print(f"  jobs per key at the vendor: {dict(sorted(collections.Counter(per_key).items()))}  (key count by jobs)")
    print(f"  customers per key at the vendor: {dict(sorted(collections.Counter(customers_per_key).items()))}")
    print(f"  keys whose every answer named one job: {agreed}/{args.keys}; failed sends: {len(out['failures'])}")
    for text, n in collections.Counter(out["failures"]).most_common(3):
        print(f"    {n} x {text}")
    if ms:
        print(f"  send latency ms: median {statistics.median(ms):.0f}, p95 {ms[int(0.95 * (len(ms) - 1))]:.0f}, "
              f"max {ms[-1]:.0f}; slowest send per key, median {statistics.median(out['slowest']) * 1000:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vendor", choices=("servicetitan", "fieldpulse"), default="servicetitan")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--sends", type=int, default=21)
    parser.add_argument("--keys-at-once", type=int, default=5)
    parser.add_argument("--db", action="append", metavar="sqlite|postgresql://...",
                        help="the store: sqlite (the default), or a PostgreSQL server to make a scratch database on")
    parser.add_argument("--redis", metavar="redis://host:port/db", help="share lanes and limits in this Redis")
    args = parser.parse_args()
    for store in args.db or ["sqlite"]:
        if store != "sqlite" and not store.startswith(("postgresql://", "postgres://")):
            parser.error(f"--db {store}: sqlite or a postgresql:// URL")
        with ExitStack() as stack:
            redis_url = stack.enter_context(redis_database(args.redis)) if args.redis else None
            measure(args, store, redis_url)


if __name__ == "__main__":
    main()
