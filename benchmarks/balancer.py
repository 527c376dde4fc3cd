"""A round-robin TCP load balancer on a loopback port, for the replica benchmarks: each new connection
goes to the next backend in turn (a client that opens a connection per request is spread per request).

    async with balancing(["127.0.0.1:8001", "127.0.0.1:8002"]) as (url, counts): ...
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            writer.close()


@asynccontextmanager
async def balancing(backends: list[str]) -> AsyncIterator[tuple[str, Counter[str]]]:
    """The balancer's base URL and the count of connections given to each backend, while it runs."""
    turn = itertools.cycle(backends)
    counts: Counter[str] = Counter()
    tasks: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = next(turn)
        counts[backend] += 1
        host, port = backend.rsplit(":", 1)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        both = [asyncio.ensure_future(_pipe(reader, up_writer)), asyncio.ensure_future(_pipe(up_reader, writer))]
        tasks.update(both)
        await asyncio.gather(*both)
        tasks.difference_update(both)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", counts
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await server.wait_closed()
