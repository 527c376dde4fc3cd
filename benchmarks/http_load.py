"""The HTTP server under a voice-agent platform's load, with and without authentication.

    python benchmarks/http_load.py [--clients 50] [--duration 60] [--rounds 1]

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
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.generate import FAMILY, GIVEN, STREETS, SUFFIX
from fsm_mcp.access import keys as api_keys
from fsm_mcp.store.db import Database
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

    async with client(base, key) as session:
        i = 0
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


def one_mode(auth: bool, clients: int, duration: float, tmp: Path) -> dict[str, Any]:
    db = tmp / ("auth.db" if auth else "open.db")
    roster = tmp / "techs.csv"
    with roster.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "phone", "skills"])
        writer.writerows([f"t{n}", f"Tech {n}", "", "hvac"] for n in range(clients))
    env = {**ENV, "FSM_MCP_SERVE_CALLS_PER_MINUTE": "1000000", "FSM_MCP_SERVE_WRITES_PER_MINUTE": "1000000"}
    done = fsm("import", "technicians", str(roster), "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    import sqlite3

    techs = [row[0] for row in sqlite3.connect(db).execute("SELECT id FROM technicians ORDER BY external_id")]
    store = Database(db)
    keys = [api_keys.create(store, f"agent-{n}", "default", list(SCOPES)) if auth else None for n in range(clients)]
    store.close()
    times: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    with serving(db, *([] if auth else ["--no-auth"]), env=env) as base:
        pid = server_pid(int(base.rsplit(":", 1)[1]))
        before = rss_kib(pid)
        t0 = time.monotonic()

        async def run() -> None:
            async with anyio.create_task_group() as tg:
                for n in range(clients):
                    tg.start_soon(play, base, keys[n], n, techs[n], t0 + duration, times, errors)

        anyio.run(run)
        elapsed = time.monotonic() - t0
        after = rss_kib(pid)
    calls = sum(len(v) for v in times.values())
    return {"calls": calls, "rate": calls / elapsed, "times": times, "errors": errors, "rss": (before, after)}


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
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


if __name__ == "__main__":
    main()
