"""A bound on the time a connection takes to send a request's headers, which uvicorn lacks.

uvicorn (0.55) times a connection out only while it is idle between requests (`timeout_keep_alive`,
armed when a response completes and cancelled by the next byte), and h11 bounds the size of
unfinished headers (`h11_max_incomplete_event_size`), not their time. So a client that opens a
connection and sends nothing, or a header a byte at a time, holds it as long as it likes, before
any authentication can run. This protocol is uvicorn's h11 one with a timer: armed when the
connection opens and at the first byte of each later request, cancelled once the headers are
whole. When it fires, a client that had started a request is told 408 and the connection closed.

Always h11, whatever else is installed: httptools would bring its own parser and no such bound."""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderTimeoutProtocol(H11Protocol):
    header_timeout: float = 5.0
    _header_timer: asyncio.TimerHandle | None = None
    _header_started = False  # some bytes of the awaited request have arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._header_started = True
            self._await_headers()  # after a response, the keep-alive timer stops at this byte; this one starts
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are whole: the request is the app's now
            self._headers_done()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is not h11.IDLE:  # a pipelined request whose headers were already buffered
            self._headers_done()
        elif self.conn.trailing_data[0]:  # part of the next request is buffered already
            self._header_started = True
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _headers_done(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._header_started = False

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._header_started:
            self.transport.write(TIMED_OUT)
        self.transport.close()


def with_header_timeout(seconds: float) -> type[H11Protocol]:
    """The protocol class to hand uvicorn (`uvicorn.Config(http=...)`), bounding headers to `seconds`."""
    class Bounded(HeaderTimeoutProtocol):
        header_timeout = seconds

    return Bounded
