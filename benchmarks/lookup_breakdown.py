"""Where one lookup_customer call's time goes, piece by piece, in a hot loop in one process.

    python benchmarks/lookup_breakdown.py [--customers 20000] [--calls 2000] [--rounds 5]

Times, per call (median of the rounds): reading the caller ID, the backend's lookup with
the top match's profile, the client's check of the answer against the published output
schema, and whole tool calls through the in-process `mcp.Client` for lookup_customer and
a trivial tool. A companion to lookup_throughput.py, which measures over stdio: there
each piece costs two to three times what it costs here, since every call starts on cold
caches after waiting for the other process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from jsonschema.validators import validator_for
from mcp import Client
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import imported_base
from lookup_throughput import caller_ids

from fsm_mcp.connectors.local import LocalBackend
from fsm_mcp.identity.phones import parse_phone, parse_phone_in_general
from fsm_mcp.identity.query import caller_profile
from fsm_mcp.server import build_server
from fsm_mcp.settings import Business, Settings
from fsm_mcp.store.db import Database


class Echo(BaseModel):
    phone: str


def trivial_server() -> MCPServer:
    server = MCPServer("trivial")

    @server.tool()
    async def echo(phone: str) -> Echo:
        """Return the argument."""
        return Echo(phone=phone)

    return server


async def per_call(fn: Callable[[str], Awaitable[object] | object], phones: list[str]) -> float:
    start = time.perf_counter()
    for phone in phones:
        result = fn(phone)
        if isinstance(result, Awaitable):
            await result
    return (time.perf_counter() - start) / len(phones) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = imported_base(Path(tmp), args.customers)
        business = Business()
        db = Database(db_path)
        backend = LocalBackend(db, business)
        phones = caller_ids(args.customers, args.calls)
        queries = {phone: caller_profile(phone=phone, region=business.country) for phone in phones}
        server = build_server(Settings(db_path=db_path))
        async with Client(server) as fsm, Client(trivial_server()) as trivial:
            schema = next(t for t in (await fsm.list_tools()).tools if t.name == "lookup_customer").output_schema
            answers = {p: (await fsm.call_tool("lookup_customer", {"phone": p})).structured_content for p in phones}
            validator = validator_for(schema)(schema)
            pieces: dict[str, Callable[[str], Awaitable[object] | object]] = {
                "caller ID, general parser": parse_phone_in_general,
                "caller ID, as read": parse_phone,
                "backend lookup with profile": lambda p: backend.lookup_customers(queries[p], 5),
                "client's schema check of the answer": lambda p: validator.validate(answers[p]),
                "lookup_customer, whole tool call": lambda p: fsm.call_tool("lookup_customer", {"phone": p}),
                "trivial tool, whole tool call": lambda p: trivial.call_tool("echo", {"phone": p}),
            }
            times: dict[str, list[float]] = {name: [] for name in pieces}
            for _ in range(args.rounds):
                for name, fn in pieces.items():
                    times[name].append(await per_call(fn, phones))
        db.close()
    print(f"customers={args.customers} calls={args.calls} rounds={args.rounds}; median microseconds per call")
    for name, values in times.items():
        print(f"  {name:38s} {statistics.median(values):7.1f}")


if __name__ == "__main__":
    anyio.run(main)
