"""`fsm-mcp serve --transport http` as a real subprocess on a loopback port, and MCP clients that
reach it with a bearer credential."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ENV = {**os.environ, "FSM_MCP_TIMEZONE": "America/Chicago", "FSM_MCP_LOG_LEVEL": "WARNING"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fsm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsm_mcp", *args], capture_output=True, text=True, timeout=60,
                          env=env or ENV)


def new_key(db: Path, name: str, *scopes: str, env: dict[str, str] | None = None, business: str | None = None) -> str:
    done = fsm("keys", "create", name, *[a for s in scopes for a in ("--scope", s)], "--db", str(db),
               *(["--business", business] if business else []), env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@contextmanager
def serving(db: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None) -> Iterator[str]:
    """The server's base URL (its endpoint is base + /mcp) while it runs."""
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fsm_mcp", "serve", "--transport", "http", "--port", str(port),
                             "--db", str(db), *args], env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(base + "/", timeout=0.5)
                break
            except httpx2.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server exited") from None
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stdout.read() == b"", "the server wrote to stdout"


@asynccontextmanager
async def client(base: str, key: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
            Client(streamable_http_client(base + "/mcp", http_client=http)) as mcp_client:
        yield mcp_client
