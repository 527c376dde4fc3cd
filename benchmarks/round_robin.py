"""A round-robin TCP balancer on loopback, for benchmarks that put several replicas behind one address.

    python benchmarks/round_robin.py --port 9000 --to 127.0.0.1:8001,127.0.0.1:8002

Each accepted connection goes to the next backend in turn and its bytes are copied both ways until either
side closes (a layer-4 balancer: an HTTP client keeping its connection alive stays on one replica, as
behind most TCP balancers; stateless replicas need nothing more). `balancing(bases)` runs it as a process
of its own while a benchmark needs it, so that its copying does not share the clients' event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import httpx2


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with suppress(RuntimeError):
            writer.close()


async def serve(port: int, backends: list[tuple[str, int]]) -> None:
    turn = itertools.cycle(backends)

    async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        host, bport = next(turn)
        try:
            server_r, server_w = await asyncio.open_connection(host, bport)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))

    server = await asyncio.start_server(accept, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.removeprefix("http://").rpartition(":")
    return host, int(port)


@contextmanager
def balancing(bases: list[str], port: int) -> Iterator[tuple[str, int]]:
    """The balancer's base URL and process id while it runs in front of `bases` (http://host:port each)."""
    proc = subprocess.Popen([sys.executable, __file__, "--port", str(port), "--to", ",".join(bases)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx2.get(base + "/", timeout=0.5)
                break
            except httpx2.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "balancer exited") from None
                time.sleep(0.05)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", required=True, help="backends, host:port separated by commas")
    args = parser.parse_args()
    with suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, [_address(b) for b in args.to.split(",")]))


if __name__ == "__main__":
    main()
