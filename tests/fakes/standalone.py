"""Run a fake vendor as its own process: the port is listening before the credentials are printed,
so whoever reads them can connect at once."""

from __future__ import annotations

import socket
from typing import IO, Any

import uvicorn


def serve(app: Any, port: int, announce: str) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    print(announce, flush=True)  # a fake's own process: stdout is where its user reads the credentials
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def printed_credentials(stdout: IO[str]) -> dict[str, str]:
    """What a fake started with `serve` printed, as {"client id": ..., "access token": ...}; it prints or
    exits, so reading is bounded."""
    printed: dict[str, str] = {}
    while "access token" not in printed:
        line = stdout.readline()
        if not line:
            raise RuntimeError("the fake stopped before printing its credentials")
        name, _, value = line.strip().partition(": ")
        printed[name] = value.strip().split(" ")[0]
    return printed
