"""lookup_customer calls per second over stdio, against a trivial tool on the same SDK, same run.

    python benchmarks/lookup_throughput.py [--customers 20000] [--calls 300] [--rounds 5]

Each round runs the servers back to back (rotating which goes first) so machine noise
hits all; the figure is the ratio of medians. The goal is a ratio of at least 0.8.

A third server, `replay_server.py`, answers lookup_customer with a recorded result and
does no work: its ratio is the ceiling that the answer's size and the client's check of
it against the output schema leave for any implementation.
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
from generate import phone_of, write_customers  # noqa: E402

from fsm_mcp.importer import import_customers  # noqa: E402
from fsm_mcp.settings import Business  # noqa: E402
from fsm_mcp.store.db import Database  # noqa: E402

FORMATS = ["({a}) {b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "1{a}{b}{c}"]


def caller_ids(n_customers: int, calls: int) -> list[str]:
    ids = []
    for k in range(calls):
        digits = phone_of((k * 7919) % n_customers)
        a, b, c = digits[:3], digits[3:6], digits[6:]
        ids.append(FORMATS[k % len(FORMATS)].format(a=a, b=b, c=c))
    return ids


async def rate(params: StdioServerParameters, tool: str, phones: list[str]) -> float:
    async with Client(params) as client:
        await client.call_tool(tool, {"phone": phones[0]})  # warm up
        start = time.perf_counter()
        for phone in phones:
            result = await client.call_tool(tool, {"phone": phone})
            assert not result.is_error, result.content
        return len(phones) / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, db_path = Path(tmp) / "c.csv", Path(tmp) / "b.db"
        write_customers(csv_path, args.customers)
        db = Database(db_path)
        import_customers(db, Business(), csv_path)
        db.close()
        env = {**os.environ, "FSM_MCP_LOG_LEVEL": "WARNING"}
        fsm = StdioServerParameters(command=sys.executable, args=["-m", "fsm_mcp", "serve", "--db", str(db_path)], env=env)
        trivial = StdioServerParameters(command=sys.executable, args=[str(Path(__file__).with_name("trivial_server.py"))], env=env)
        phones = caller_ids(args.customers, args.calls)
        recorded = Path(tmp) / "lookup.json"
        async with Client(fsm) as client:
            recorded.write_text(json.dumps((await client.call_tool("lookup_customer", {"phone": phones[0]})).structured_content))
        replay = StdioServerParameters(command=sys.executable, args=[str(Path(__file__).with_name("replay_server.py")), str(recorded)], env=env)
        lookups, baseline, ceiling = [], [], []
        for r in range(args.rounds):
            trio = [(fsm, "lookup_customer", lookups), (trivial, "echo", baseline), (replay, "lookup_customer", ceiling)]
            for params, tool, sink in trio[r % 3:] + trio[: r % 3]:
                sink.append(await rate(params, tool, phones))
            print(f"round {r + 1}: lookup_customer {lookups[-1]:.0f}/s, trivial {baseline[-1]:.0f}/s, "
                  f"replayed answer {ceiling[-1]:.0f}/s", flush=True)
        lk, bl, cl = statistics.median(lookups), statistics.median(baseline), statistics.median(ceiling)
        print(f"customers={args.customers} calls/round={args.calls} rounds={args.rounds}")
        print(f"median lookup_customer:  {lk:.0f} calls/s ({1000 / lk:.2f} ms/call)")
        print(f"median trivial tool:     {bl:.0f} calls/s ({1000 / bl:.2f} ms/call)")
        print(f"median replayed answer:  {cl:.0f} calls/s ({1000 / cl:.2f} ms/call), no server work")
        print(f"ratio: {lk / bl:.2f} (goal >= 0.8); ceiling for this answer: {cl / bl:.2f}")


if __name__ == "__main__":
    anyio.run(main)
