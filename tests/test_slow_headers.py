"""A connection that sends its headers slowly, or nothing at all, is closed within the header
timeout, before any authentication could run: over a real socket on loopback."""

import time
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream

from tests.http_rig import ENV, serving

TIMEOUT = {**ENV, "FSM_MCP_SERVE_HEADER_TIMEOUT": "1"}
REQUEST = b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"


async def connect(base: str) -> SocketStream:
    return await anyio.connect_tcp("127.0.0.1", int(base.rsplit(":", 1)[1]))


async def drip_until_closed(stream: SocketStream, start: bytes) -> tuple[float, bytes]:
    """Send `start`, then one more header byte every 0.2 s, until the server closes; the seconds it took and what
    the server said."""
    began = time.monotonic()
    await stream.send(start)
    heard = b""
    while True:
        with anyio.move_on_after(0.2):  # the pace of the drip, and the wait for the close
            try:
                heard += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return time.monotonic() - began, heard
            continue
        await stream.send(b"x")


@pytest.mark.anyio
async def test_a_client_sending_its_headers_a_byte_at_a_time_is_closed_within_the_header_timeout(
        tmp_path: Path) -> None:
    with serving(tmp_path / "slow.db", env=TIMEOUT) as base, anyio.fail_after(10):
        stream = await connect(base)
        took, heard = await drip_until_closed(stream, b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
        assert 0.8 < took < 2.5 and heard.startswith(b"HTTP/1.1 408 ")


@pytest.mark.anyio
async def test_a_connection_that_sends_nothing_is_closed_within_the_header_timeout(tmp_path: Path) -> None:
    with serving(tmp_path / "mute.db", env=TIMEOUT) as base, anyio.fail_after(10):
        stream = await connect(base)
        began = time.monotonic()
        with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await stream.receive()
        assert time.monotonic() - began < 2.5


@pytest.mark.anyio
async def test_a_kept_alive_connection_gets_the_same_bound_for_its_next_request(tmp_path: Path) -> None:
    env = {**TIMEOUT, "FSM_MCP_SERVE_HEADER_TIMEOUT": "2"}
    with serving(tmp_path / "again.db", env=env) as base, anyio.fail_after(15):
        stream = await connect(base)
        await stream.send(REQUEST)
        answer = await stream.receive()
        assert answer.startswith(b"HTTP/1.1 404 ")  # a whole request is served as ever
        took, heard = await drip_until_closed(stream, b"GET / HTTP/1.1\r\nx-slow: ")
        assert 1.6 < took < 3.5 and heard.startswith(b"HTTP/1.1 408 ")
