"""Signed webhook deliveries, as both accounting vendors send them: the raw JSON body is signed
with HMAC-SHA256 under a key the app was given (Intuit's verifier token, Xero's webhook key),
base64-encoded into a header (`intuit-signature`, `x-xero-signature`). Deliveries can be
repeated and shuffled on demand, as both vendors warn they may be."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx


def sign(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass
class Delivery:
    body: bytes
    signature: str
    status: int | None = None  # what the app answered; None: not reachable


@dataclass
class Sender:
    header: str
    key: str
    seed: int = 11
    rng: random.Random = field(init=False)
    sent: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def prepare(self, payloads: list[Any], repeat: int = 1, shuffle: bool = False,
                wrong_signature: bool = False) -> list[Delivery]:
        """Each payload signed (or signed with a wrong key), `repeat` times over, in order or shuffled."""
        key = self.key + "-wrong" if wrong_signature else self.key
        deliveries = [Delivery(body, sign(body, key)) for body in map(encode, payloads) for _ in range(repeat)]
        if shuffle:
            self.rng.shuffle(deliveries)
        return deliveries

    async def post(self, url: str, deliveries: list[Delivery], client: httpx.AsyncClient | None = None,
                   timeout: float = 10.0) -> list[Delivery]:
        """POST each delivery to `url` in turn; the app's answer is kept on it (Intuit and Xero both give
        an endpoint a few seconds to answer)."""
        async with _client(client, timeout) as http:
            for delivery in deliveries:
                try:
                    answer = await http.post(url, content=delivery.body, headers={
                        "content-type": "application/json", self.header: delivery.signature})
                    delivery.status = answer.status_code
                except httpx.HTTPError:
                    delivery.status = None
                self.sent.append(delivery)
        return deliveries


class _client:
    """The caller's client, left open; or one of our own for these deliveries."""

    def __init__(self, given: httpx.AsyncClient | None, timeout: float) -> None:
        self.given, self.own = given, None if given else httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> httpx.AsyncClient:
        return self.given or self.own  # type: ignore[return-value]

    async def __aexit__(self, *exc: object) -> None:
        if self.own is not None:
            await self.own.aclose()


@dataclass
class Receiver:
    """An app's webhook endpoint for tests: keeps each delivery's headers and raw body, and answers what
    `answer(headers, body)` says (200 by default)."""
    answer: Any = None
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.got.append((headers, body))
        status = self.answer(headers, body) if self.answer else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(self), base_url="http://app.test")
