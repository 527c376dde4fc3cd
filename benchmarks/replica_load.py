"""Three stateless replicas on PostgreSQL and Redis behind a round-robin balancer, over the fake ServiceTitan
at its published rate limit: a directory sync, normal load, then chaos.

    python benchmarks/replica_load.py [--db postgresql://postgres@127.0.0.1:5432/postgres]
                                      [--redis redis://127.0.0.1:6379/0] [--replicas 3] [--rate 20]
                                      [--customers 6000] [--scenarios 36] [--concurrent 16]

The fake ServiceTitan (tests/fakes) runs in a process of its own (benchmarks/vendor_process.py: apart from
the agents and the balancer, whose loop would otherwise delay its count), serves over real HTTP on loopback,
allows `--rate` requests in any sliding second of arrival (a 429 beyond, every request counted, refused or
not, and every request inside a 429's wait refused again and counted), and holds `--customers` customers. `--replicas` real `fsm-mcp serve --transport http --stateless` processes share a
scratch PostgreSQL database (made on the server `--db` names, dropped after) and a Redis database of the
run's own (emptied after), each configured to the vendor's rate; a round-robin TCP balancer
(benchmarks/balancer.py) stands in front, and the agents open a connection per request, so requests are
spread over the replicas one by one.

1. Sync: the replicas start together, each starting its background directory sync; the store's lease lets
   one of them run it.
   Printed: requests, 429s, rate from the first request to the last as a share of the limit (goal >= 90 %),
   and the same without the requests the other replicas send as they start (the sync's own).
2. Normal load: `--scenarios` scenarios of vendor_chaos (lookup, slots, booking a new caller, dispatch,
   three status moves, invoice), `--concurrent` at once, through the balancer. Printed: the combined rate
   at the fake (mean, and the most requests in any one-second window, against the limit) and its 429s
   (goal: none).
3. Chaos: the same with the fake answering 30 % of calls 429 (Retry-After: 1), 5 % 503 and losing 2 % of
   write answers after doing them; the agents retry as in vendor_chaos. Printed: jobs per booking key and
   customers per new caller at the vendor (each at most 1), requests that arrived inside a hold the fake had
   given the tenant (goal 0).
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anyio
import httpx2 as httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.balancer import balancing
from benchmarks.scratch import postgres_database, redis_database
from benchmarks.vendor_chaos import Tally, scenario
from benchmarks.vendor_process import Seen, fake_process
from benchmarks.vendors import Vendor
from fsm_mcp.access.callers import SCOPES
from tests.fakes import servicetitan
from tests.fakes.chaos import GRACE
from tests.http_rig import ENV, free_port, new_key


@contextmanager
def replicas(db: str, env: dict[str, str], logs: Path, count: int) -> Iterator[list[str]]:
    """`count` `fsm-mcp serve --transport http --stateless` processes, started together as a deployment starts
    them (one after another, the first one's sync ran beside the others' start-up), each's stderr in `logs` (a
    pipe nobody reads would fill and stall it); their base URLs once all answer."""
    procs, bases = [], []
    for n in range(count):
        port = free_port()
        with (logs / f"replica{n}.log").open("ab") as err:
            procs.append(subprocess.Popen([sys.executable, "-m", "fsm_mcp", "serve", "--transport", "http", "--port",
                                           str(port), "--db", db, "--stateless"], env=env, stdout=subprocess.DEVNULL,
                                          stderr=err))
        bases.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        for proc, base in zip(procs, bases, strict=True):
            while True:
                try:
                    httpx.get(base + "/", timeout=0.5)
                    break
                except httpx.TransportError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"a replica did not start: see {logs}") from None
                    time.sleep(0.05)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def rate_figures(log: list[Seen], limit: float) -> str:
    """The combined rate a slice of the fake's log shows, by arrival (as the fake counts): mean, the busiest
    one-second window, 429s."""
    if len(log) < 2:
        return f"{len(log)} requests"
    times = sorted(x.arrived for x in log)
    wall = times[-1] - times[0]
    busiest, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        busiest = max(busiest, i - j + 1)
    codes = collections.Counter(x.status for x in log)
    throttled = collections.Counter(x.path.split("/tenant/")[-1].split("/", 1)[-1] for x in log if x.status == 429)
    return (f"{len(log)} requests in {wall:.1f} s: mean {(len(log) - 1) / wall:.1f}/s = "
            f"{100 * (len(log) - 1) / wall / limit:.1f} % of the {limit:g}/s limit; busiest one-second window "
            f"{busiest} requests; {codes[429]} x 429{' ' + str(dict(throttled.most_common(4))) if throttled else ''}, "
            f"{codes[503]} x 503, {codes[504]} answers lost")


async def play(url: str, key: str, first: int, count: int, concurrent: int, techs: list[str], vendor: Vendor) -> tuple[Tally, float]:
    tally = Tally()
    limiter = anyio.Semaphore(concurrent)

    async def one(i: int) -> None:
        # a connection per request: the balancer spreads the scenario's calls over the replicas
        async with limiter:
            try:
                async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120,
                                             limits=httpx.Limits(max_keepalive_connections=0)) as http, \
                        Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
                    await scenario(client, tally, i, techs[i % len(techs)], vendor)
            except Exception as exc:  # a protocol failure ends the scenario; counted and shown, not hidden
                while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                    exc = exc.exceptions[0]  # type: ignore[assignment]
                tally.stopped += 1
                tally.final.append(f"scenario {i} failed: {type(exc).__name__}: {exc} {getattr(exc, 'error', '')}")

    began = time.monotonic()
    async with anyio.create_task_group() as tg:
        for i in range(first, first + count):
            tg.start_soon(one, i)
    return tally, time.monotonic() - began


def report(name: str, tally: Tally, elapsed: float) -> None:
    print(f"  {tally.calls} calls in {elapsed:.0f} s: {tally.done} done, {sum(tally.errors.values())} tool errors "
          f"({tally.retries} retried by the agent), {tally.stopped} scenarios stopped by an error")
    for kind, n in tally.errors.most_common(6):
        print(f"    {n:4d}  {kind}")
    for text in tally.final[:3]:
        print(f"    not retried: {text[:200]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--redis-numbers", default="1-15", help="Redis database numbers the run may take one of (a-b)")
    ap.add_argument("--db-prefix", default="fsm_bench_", help="the scratch PostgreSQL database's name begins so")
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--rate", type=float, default=20.0, help="the fake's published limit, requests/s")
    ap.add_argument("--customers", type=int, default=6000)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--scenarios", type=int, default=36, help="per phase; 2 x scenarios new callers, at most 72")
    ap.add_argument("--concurrent", type=int, default=16)
    args = ap.parse_args()
    assert 2 * args.scenarios <= 72, "new_caller has 72 distinct callers"

    vendor = Vendor("servicetitan", None)  # what the scenarios ask of it (nothing, for ServiceTitan)
    logs = Path(tempfile.mkdtemp(prefix="replica-load-"))
    with ExitStack() as stack:
        fake = stack.enter_context(fake_process(args.rate, args.customers, 20, logs / "vendor.log"))
        techs = fake.technicians()
        url = fake.url
        low, _, high = args.redis_numbers.partition("-")
        db = stack.enter_context(postgres_database(args.db, "replica_load", args.db_prefix))
        redis_url = stack.enter_context(redis_database(args.redis, range(int(low), int(high or low) + 1)))
        env = {**ENV, **servicetitan.connector_env(url), "FSM_MCP_SERVICETITAN_RATE": str(args.rate),
               "FSM_MCP_SERVICETITAN_SYNC_PAGE_SIZE": str(args.page_size),
               "FSM_MCP_SERVICETITAN_SYNC_INTERVAL": "3600", "FSM_MCP_REDIS_URL": redis_url,
               "FSM_MCP_SERVE_CALLS_PER_MINUTE": "1000000", "FSM_MCP_SERVE_WRITES_PER_MINUTE": "1000000",
               # behind the balancer the Host header names its port, as behind any proxy
               "FSM_MCP_SERVE_ALLOWED_HOSTS": "127.0.0.1:*"}
        env.pop("FSM_MCP_REPLICAS", None)
        config = Path(tempfile.mkdtemp(prefix="replica-load-config-")) / "fsm-mcp.toml"
        config.write_text('[business]\ntimezone = "America/Chicago"\n[business.job_types]\n"Furnace repair" = "hvac"\n')
        env["FSM_MCP_CONFIG"] = str(config)  # as vendor_chaos's business: a furnace repair needs an hvac technician
        key = new_key(db, "bench", *SCOPES, env=env)
        print(f"{args.replicas} stateless replicas on PostgreSQL and Redis behind a round-robin balancer, over the "
              f"fake ServiceTitan at {args.rate:g} requests/s with {args.customers} customers")

        # 1. the sync: each replica starts one at launch, the lease lets one through
        first, _ = fake.count()
        print(f"  logs (the replicas', the fake's) in {logs}")
        bases = stack.enter_context(replicas(db, env, logs, args.replicas))
        quiet_since, (seen, _) = time.monotonic(), fake.count()
        deadline = time.monotonic() + 600
        while time.monotonic() - quiet_since < 3.0 and time.monotonic() < deadline:
            time.sleep(0.25)
            if (now := fake.count()[0]) != seen:
                seen, quiet_since = now, time.monotonic()
        sync = fake.log(first)
        lists = [x for x in sync if x.path.rsplit("/", 1)[-1] in ("customers", "locations", "contacts")]
        import psycopg

        with psycopg.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM customers").fetchone()[0]  # type: ignore[index]
            holders = conn.execute("SELECT name, holder FROM leases WHERE name LIKE %s", ("sync:%",)).fetchall()
        print(f"1. sync at start: {rate_figures(sync, args.rate)}; {stored} customers stored; "
              f"sync lease held by {holders}")
        print(f"   its lists' requests alone: {rate_figures(lists, args.rate)}")

        async def phases() -> None:
            backends = [b.removeprefix("http://") for b in bases]
            async with balancing(backends) as (lb, counts):
                start, _ = fake.count()
                tally, elapsed = await play(lb, key, 0, args.scenarios, args.concurrent, techs, vendor)
                print(f"2. normal load: {args.scenarios} scenarios, {args.concurrent} at once: "
                      f"{rate_figures(fake.log(start), args.rate)}")
                report("normal", tally, elapsed)
                fake.chaos(p429=0.30, retry_after="1", p503=0.05, p_lost=0.02)
                start, early = fake.count()
                tally, elapsed = await play(lb, key, args.scenarios, args.scenarios, args.concurrent, techs, vendor)
                print(f"3. chaos: {args.scenarios} scenarios, {args.concurrent} at once: "
                      f"{rate_figures(fake.log(start), args.rate)}")
                report("chaos", tally, elapsed)
                inside = fake.too_early(early)
                print(f"  requests arriving inside a hold the fake had given the tenant (over {GRACE * 1000:.0f} ms "
                      f"after its 429 left): {len(inside)}")
                for left, method, where in inside[:5]:
                    print(f"    {left:.3f} s of the hold left: {method} {where}")
                print(f"  connections per replica through the balancer: {dict(counts)}")

        anyio.run(phases)
        audit = fake.audit(2 * args.scenarios)

    print(f"audit at the vendor: jobs per booking key: {audit['jobs per booking key']} (count of keys by jobs); "
          f"customers per new caller: {audit['customers per new caller']}; jobs per new caller: "
          f"{audit['jobs per new caller']}; {audit['vendor']}")


if __name__ == "__main__":
    main()
