"""benchmarks/balancer.py's round-robin TCP balancer as a process of its own, for a benchmark whose clients
should not share their event loop (and core) with the balancer's copying.

    python benchmarks/round_robin.py --to 127.0.0.1:8001,127.0.0.1:8002   # prints its base URL, then serves

Each accepted connection goes to the next backend in turn (a layer-4 balancer: an HTTP client keeping its
connection alive stays on one replica; stateless replicas need nothing more). On SIGTERM it prints the
connections each backend got to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.balancer import balancing as in_loop


async def serve(backends: list[str]) -> None:
    async with in_loop(backends) as (url, counts):
        print(url, flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        print(f"connections per backend: {dict(counts)}", file=sys.stderr, flush=True)


@contextmanager
def balancing(bases: list[str]) -> Iterator[tuple[str, int]]:
    """The balancer's base URL and process id while it runs in front of `bases` (http://host:port each)."""
    backends = ",".join(b.removeprefix("http://") for b in bases)
    proc = subprocess.Popen([sys.executable, __file__, "--to", backends], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url:
            raise RuntimeError(proc.stderr.read() if proc.stderr else "balancer exited")
        yield url, proc.pid
    finally:
        proc.terminate()
        _, said = proc.communicate(timeout=10)
        print(f"    balancer: {said.strip()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--to", required=True, help="backends, host:port separated by commas")
    asyncio.run(serve(parser.parse_args().to.split(",")))


if __name__ == "__main__":
    main()
