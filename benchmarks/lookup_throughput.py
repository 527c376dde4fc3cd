"""lookup_customer calls per second over stdio, against a trivial tool on the same SDK, same run.

    python benchmarks/lookup_throughput.py [--customers 20000] [--calls 300] [--rounds 5]

Each round runs the servers back to back (rotating which goes first) so machine noise
hits all; the figure is the ratio of medians. The goal is a ratio of at least 0.8.

A third server, `replay_server.py`, answers lookup_customer with a recorded result and
does no work: its ratio is the ceiling that the answer's size and the client's check of
it against the output schema leave for any implementation, and lookup against it is
what fsm-mcp's own work costs. On Linux each server's CPU time per call is printed too:
most of a trivial call is the SDK's stdio transport, which hands every line to a thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import imported_base, phone_of

FORMATS = ["({a}) {b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "1{a}{b}{c}"]


def caller_ids(n_customers: int, calls: int) -> list[str]:
    ids = []
    for k in range(calls):
        digits = phone_of((k * 7919) % n_customers)
        a, b, c = digits[:3], digits[3:6], digits[6:]
        ids.append(FORMATS[k % len(FORMATS)].format(a=a, b=b, c=c))
    return ids


def children_cpu() -> float:
    """CPU seconds used so far by this process's children (the server), or 0 without /proc."""
    total, me = 0.0, str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def rate(params: StdioServerParameters, tool: str, phones: list[str]) -> tuple[float, float]:
    """Calls per second, and the server's CPU milliseconds per call."""
    async with Client(params) as client:
        await client.call_tool(tool, {"phone": phones[0]})  # warm up
        cpu, start = children_cpu(), time.perf_counter()
        for phone in phones:
            result = await client.call_tool(tool, {"phone": phone})
            assert not result.is_error, result.content
        elapsed, cpu = time.perf_counter() - start, children_cpu() - cpu
        return len(phones) / elapsed, cpu * 1000 / len(phones)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = imported_base(Path(tmp), args.customers)
        env = {**os.environ, "FSM_MCP_LOG_LEVEL": "WARNING"}
        fsm = StdioServerParameters(command=sys.executable, args=["-m", "fsm_mcp", "serve", "--db", str(db_path)], env=env)
        trivial = StdioServerParameters(command=sys.executable, args=[str(Path(__file__).with_name("trivial_server.py"))], env=env)
        phones = caller_ids(args.customers, args.calls)
        recorded = Path(tmp) / "lookup.json"
        async with Client(fsm) as client:
            recorded.write_text(json.dumps((await client.call_tool("lookup_customer", {"phone": phones[0]})).structured_content))
        replay = StdioServerParameters(command=sys.executable, args=[str(Path(__file__).with_name("replay_server.py")), str(recorded)], env=env)
        runs: dict[str, list[tuple[float, float]]] = {"lookup": [], "trivial": [], "replay": []}
        for r in range(args.rounds):
            trio = [(fsm, "lookup_customer", "lookup"), (trivial, "echo", "trivial"), (replay, "lookup_customer", "replay")]
            for params, tool, name in trio[r % 3:] + trio[: r % 3]:
                runs[name].append(await rate(params, tool, phones))
            print(f"round {r + 1}: " + ", ".join(f"{name} {runs[name][-1][0]:.0f}/s" for name in runs), flush=True)
        per_s = {name: statistics.median(x[0] for x in v) for name, v in runs.items()}
        cpu = {name: statistics.median(x[1] for x in v) for name, v in runs.items()}
        lk, bl, cl = per_s["lookup"], per_s["trivial"], per_s["replay"]
        print(f"customers={args.customers} calls/round={args.calls} rounds={args.rounds}")
        for name, label in [("lookup", "lookup_customer"), ("trivial", "trivial tool"), ("replay", "replayed answer")]:
            print(f"median {label + ':':17s} {per_s[name]:4.0f} calls/s ({1000 / per_s[name]:.2f} ms/call), "
                  f"server CPU {cpu[name]:.2f} ms/call")
        print(f"ratio: {lk / bl:.2f} (goal >= 0.8); ceiling for this answer: {cl / bl:.2f}; "
              f"lookup against the replayed answer: {lk / cl:.2f}")


if __name__ == "__main__":
    anyio.run(main)
