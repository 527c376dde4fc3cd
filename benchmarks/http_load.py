"""The HTTP server under a voice-agent platform's load, with and without authentication.

    python benchmarks/http_load.py [--clients 50] [--duration 60] [--rounds 1]
    python benchmarks/http_load.py --stores sqlite,postgresql --replicas 1,2,3 [--clients 50] [--duration 25]

Starts `fsm-mcp serve --transport http` as a real process twice per round: once with API keys
(each client its own key, so every request is looked up and every call passes the scope gate),
once with --no-auth (the baseline). Each of `--clients` concurrent MCP sessions plays calls
for `--duration` seconds: lookup_customer, find_available_slots, create_job, dispatch_technician
(to its own technician, so that clients never clash), update_job_status through completed, and
create_invoice. Per-caller rate limits are raised for the run (they would stop a client at 240
calls a minute, which is the point of them, not of this measurement). Prints calls/s, p50, p95
and p99 per tool, errors, and the server's resident memory before and after; then the cost of
authentication as the change in calls/s and in p95. Goal: no errors; authentication costs <= 10 %.

The clients run in this process on the same machine, so they share its cores with the server:
the figures compare the two modes under the same load, not the server's ceiling.

With --stores (the curve): API keys only, one configuration after another in one run: 1 process on SQLite,
then 1, 2, 3 ... `--stateless` replicas on PostgreSQL (a scratch database per configuration, dropped after)
sharing per-caller limits in Redis (FSM_MCP_REDIS_URL), each configuration behind the round-robin balancer
(benchmarks/balancer.py, in a process of its own: benchmarks/round_robin.py). Besides calls/s and p50/p95, each prints where the machine's two cores went
during the load (this client process, the balancer, the replicas, PostgreSQL's processes, Redis, the rest):
the component that takes the cores is where the curve bends.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.generate import FAMILY, GIVEN, STREETS, SUFFIX
from benchmarks.round_robin import balancing
from benchmarks.scratch_pg import SERVER, scratch_postgres
from fsm_mcp.access import keys as api_keys
from fsm_mcp.store import open_store
from tests.http_rig import ENV, client, fsm, serving
from tests.when import MONDAY as FIRST_DAY  # two weeks ahead of today: bookable whenever this runs

TOOLS = ("lookup_customer", "find_available_slots", "create_job", "dispatch_technician", "update_job_status",
         "create_invoice")
SCOPES = ("customers:read", "pii:read", "jobs:write", "dispatch:write", "billing:write")
LINE = [{"description": "Diagnostic", "kind": "service", "quantity": "1", "unit_price": "89.00"}]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def server_pid(port: int) -> int:
    out = subprocess.run(["pgrep", "-f", "--", f"--port {port}"], capture_output=True, text=True).stdout.split()
    return int(out[0])


TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """Every process's name and CPU seconds so far (user + system); a PostgreSQL backend's name is its title
    (`postgres: user database address state`), so that its database tells whose work it does."""
    out: dict[int, tuple[str, float]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            if name == "postgres":
                name = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(proc.name)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


def role_of(name: str, database: str | None) -> str:
    if "postgres" in name.split(maxsplit=1)[0]:  # the server's own processes, or a backend of this run's database
        words = name.removeprefix("postgres:").split()
        if words and words[0].endswith(":"):  # the cluster's name ("15/main:")
            words = words[1:]
        return "postgresql" if len(words) < 3 or words[1] == database else "other"
    return "redis" if name == "redis-server" else "other"


def cpu_shares(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], roles: dict[int, str],
               elapsed: float, busy: float, database: str | None) -> str:
    """Where the cores went: each role's CPU seconds per second of load (2.0 is both cores of this machine);
    "other" is everything else the machine ran meanwhile (other PostgreSQL databases included)."""
    spent: dict[str, float] = defaultdict(float)
    for pid, (name, seconds) in after.items():
        used = seconds - (before[pid][1] if pid in before and before[pid][0].split()[:1] == name.split()[:1] else 0.0)
        spent[roles.get(pid) or role_of(name, database)] += used
    spent["other"] = max(0.0, busy - sum(v for k, v in spent.items() if k != "other"))
    order = ["clients", "balancer", "replicas", "postgresql", "redis", "other"]
    return "  ".join(f"{k} {spent[k] / elapsed:.2f}" for k in order if k in spent) + f"  (machine {busy / elapsed:.2f} of 2)"


async def play(base: str, key: str | None, n: int, tech: str, until: float,
               times: dict[str, list[float]], errors: list[str]) -> None:
    start = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, 8) + timedelta(days=n * 400 // 50)

    async def timed(session: Any, tool: str, args: dict[str, Any]) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        result = await session.call_tool(tool, args)
        times[tool].append(time.perf_counter() - t0)
        if result.is_error:
            errors.append(f"{tool}: {result.content[0].text[:200]}")
            return None
        return result.structured_content  # type: ignore[no-any-return]

    i = 0
    while time.monotonic() < until:
        try:  # a connection the server (or the balancer) closed under the client: counted, and the client goes on
            async with client(base, key) as session:
                while time.monotonic() < until:
                    window = start + timedelta(hours=3 * i)
                    phone = f"+1312{200 + n:03d}{i % 10000:04d}"  # an exchange of its own for each client
                    k = n * 7919 + i * 104729  # spread callers over names and streets as a real base is spread
                    name = f"{GIVEN[k % len(GIVEN)]} {FAMILY[k // len(GIVEN) % len(FAMILY)]}"
                    street = f"{10 + k % 9000} {STREETS[k // 7 % len(STREETS)]} {SUFFIX[k // 11 % len(SUFFIX)]}"
                    await timed(session, "lookup_customer", {"phone": phone})
                    await timed(session, "find_available_slots", {"job_type": "hvac", "date_from": window.date().isoformat()})
                    job = await timed(session, "create_job", {
                        "customer": {"name": name, "phone": phone, "address": f"{street}, Springfield, IL 62704"},
                        "job_type": "hvac", "summary": "no heat", "idempotency_key": f"c{n}-{i}", "new_customer": True,
                        "window_start": window.isoformat(), "window_end": (window + timedelta(hours=2)).isoformat()})
                    if job:
                        job_id = job["job_id"]
                        await timed(session, "dispatch_technician", {"job_id": job_id, "technician_id": tech,
                                                                     "idempotency_key": f"d{n}-{i}"})
                        for status in ("en_route", "arrived", "working", "completed"):
                            await timed(session, "update_job_status", {"job_id": job_id, "status": status})
                        await timed(session, "create_invoice", {"job_id": job_id, "line_items": LINE,
                                                                "idempotency_key": f"i{n}-{i}"})
                    i += 1
        except Exception as exc:  # an ExceptionGroup from the SDK's task group, around the transport error
            while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
                exc = exc.exceptions[0]
            errors.append(f"transport: {type(exc).__name__}: {str(exc)[:120]}")
            i += 1


def one_mode(auth: bool, clients: int, duration: float, tmp: Path, store: str | Path | None = None,
             replicas: int = 1, redis: str | None = None, balance: bool = False) -> dict[str, Any]:
    """One configuration under load: `replicas` server processes on `store` (a SQLite file in tmp by default)."""
    db = store or tmp / ("auth.db" if auth else "open.db")
    roster = tmp / "techs.csv"
    with roster.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "phone", "skills"])
        writer.writerows([f"t{n}", f"Tech {n}", "", "hvac"] for n in range(clients))
    env = {**ENV, "FSM_MCP_SERVE_CALLS_PER_MINUTE": "1000000", "FSM_MCP_SERVE_WRITES_PER_MINUTE": "1000000"}
    if redis:
        env["FSM_MCP_REDIS_URL"] = redis
    done = fsm("import", "technicians", str(roster), "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    database = open_store(db)
    techs = [row[0] for row in database.read(
        lambda conn: conn.execute("SELECT id FROM technicians ORDER BY external_id").fetchall())]
    keys = [api_keys.create(database, f"agent-{n}", "default", list(SCOPES)) if auth else None for n in range(clients)]
    database.close()
    times: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    flags = [*([] if auth else ["--no-auth"]), *(["--stateless"] if balance else [])]
    with ExitStack() as stack:
        bases = [stack.enter_context(serving(db, *flags, env=env)) for _ in range(replicas)]
        pids = [server_pid(int(b.rsplit(":", 1)[1])) for b in bases]
        roles = dict.fromkeys(pids, "replicas") | {os.getpid(): "clients"}
        base = bases[0]
        if balance:
            base, balancer = stack.enter_context(balancing(bases))
            roles[balancer] = "balancer"
        before = sum(rss_kib(pid) for pid in pids)
        cpu_before, busy_before = cpu_by_process(), machine_busy()
        t0 = time.monotonic()

        async def run() -> None:
            async with anyio.create_task_group() as tg:
                for n in range(clients):
                    tg.start_soon(play, base, keys[n], n, techs[n], t0 + duration, times, errors)

        anyio.run(run)
        elapsed = time.monotonic() - t0
        database = str(db).rsplit("/", 1)[1] if isinstance(db, str) else None
        cpu = cpu_shares(cpu_before, cpu_by_process(), roles, elapsed, machine_busy() - busy_before, database)
        after = sum(rss_kib(pid) for pid in pids)
    calls = sum(len(v) for v in times.values())
    return {"calls": calls, "rate": calls / elapsed, "times": times, "errors": errors, "rss": (before, after), "cpu": cpu}


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--stores", help="the curve: stores to load, of sqlite,postgresql (API keys only)")
    ap.add_argument("--replicas", default="1,2,3", help="with --stores: replica counts on PostgreSQL (SQLite: 1)")
    ap.add_argument("--postgres", default=SERVER, help="the PostgreSQL server to make scratch databases on")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis for the replicas' shared limits")
    a = ap.parse_args()
    if a.stores:
        curve(a)
        return
    results: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for r in range(a.rounds):
        for auth in ((True, False) if r % 2 == 0 else (False, True)):  # alternate which mode goes first
            with tempfile.TemporaryDirectory() as tmp:
                out = one_mode(auth, a.clients, a.duration, Path(tmp))
            results[auth].append(out)
            mode = "API keys" if auth else "no auth"
            print(f"round {r + 1}, {mode}: {out['calls']} calls, {out['rate']:.1f} calls/s, {len(out['errors'])} errors, "
                  f"server RSS {out['rss'][0] / 1024:.0f} -> {out['rss'][1] / 1024:.0f} MiB", flush=True)
            for tool in TOOLS:
                ts = out["times"][tool]
                print(f"    {tool:22s} n={len(ts):6d}  p50 {pct(ts, 50):7.1f} ms  p95 {pct(ts, 95):7.1f} ms  "
                      f"p99 {pct(ts, 99):7.1f} ms", flush=True)
            for e in sorted(set(out["errors"]))[:5]:
                print(f"    error: {e}", flush=True)
    rate = {m: statistics.median(o["rate"] for o in results[m]) for m in results}
    p95 = {m: statistics.median(pct([t for ts in o["times"].values() for t in ts], 95) for o in results[m])
           for m in results}
    print(f"median calls/s: API keys {rate[True]:.1f}, no auth {rate[False]:.1f} "
          f"(authentication costs {100 * (1 - rate[True] / rate[False]):.1f} % of the rate)")
    print(f"median p95 over all calls: API keys {p95[True]:.1f} ms, no auth {p95[False]:.1f} ms "
          f"({100 * (p95[True] / p95[False] - 1):+.1f} %)")


def curve(a: argparse.Namespace) -> None:
    """calls/s and latency per configuration, in one run: the curve from 1 SQLite process to N PostgreSQL replicas."""
    configs: list[tuple[str, int]] = []
    for store in a.stores.split(","):
        if store == "sqlite":
            configs.append(("sqlite", 1))
        elif store == "postgresql":
            configs.extend(("postgresql", int(n)) for n in a.replicas.split(","))
        else:
            raise SystemExit(f"--stores: unknown store {store!r} (sqlite, postgresql)")
    print(f"{a.clients} clients, {a.duration:.0f} s per configuration, API keys, --stateless behind the round-robin "
          f"balancer; CPU is seconds per second (cores) during the load", flush=True)
    rows: list[tuple[str, dict[str, Any]]] = []
    for r in range(a.rounds):
        for store, replicas in (configs if r % 2 == 0 else configs[::-1]):
            label = f"{store} x{replicas}"
            with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
                target: str | Path = Path(tmp) / "load.db"
                if store == "postgresql":
                    target = stack.enter_context(scratch_postgres(a.postgres))
                out = one_mode(True, a.clients, a.duration, Path(tmp), target, replicas,
                               a.redis if store == "postgresql" else None, balance=True)
            every = [t for ts in out["times"].values() for t in ts]
            rows.append((label, out))
            print(f"round {r + 1}, {label:14s}: {out['calls']:6d} calls, {out['rate']:6.1f} calls/s, p50 {pct(every, 50):6.1f} ms, "
                  f"p95 {pct(every, 95):6.1f} ms, {len(out['errors'])} errors, replicas' RSS "
                  f"{out['rss'][0] / 1024:.0f} -> {out['rss'][1] / 1024:.0f} MiB", flush=True)
            print(f"    CPU: {out['cpu']}", flush=True)
            for tool in TOOLS:
                ts = out["times"][tool]
                print(f"    {tool:22s} n={len(ts):6d}  p50 {pct(ts, 50):7.1f} ms  p95 {pct(ts, 95):7.1f} ms", flush=True)
            for e in sorted(set(out["errors"]))[:5]:
                print(f"    error: {e}", flush=True)
    print("the curve (median over rounds):")
    for store, replicas in configs:
        label = f"{store} x{replicas}"
        outs = [o for lbl, o in rows if lbl == label]
        rate = statistics.median(o["rate"] for o in outs)
        p50 = statistics.median(pct([t for ts in o["times"].values() for t in ts], 50) for o in outs)
        p95 = statistics.median(pct([t for ts in o["times"].values() for t in ts], 95) for o in outs)
        print(f"  {label:14s} {rate:7.1f} calls/s  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")


if __name__ == "__main__":
    main()
