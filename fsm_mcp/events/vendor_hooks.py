"""Webhooks from the field-service vendors: a fast path to the job-change poll, never authenticated by an
API key.

`POST /webhooks/servicetitan/<business>` carries ServiceTitan's HMAC-SHA256 signature of the raw body, in
the header and encoding the business's settings name (when it has a `webhook_key`);
`POST /webhooks/<vendor>/<business>/<secret>` is authenticated by the business's own `webhook_secret` at the
end of the path (FieldPulse signs nothing; ServiceTitan's signature is optional). Anything else is 404 (the
business takes no webhooks of that vendor) or 401 (a signature or secret that does not match), before the
body is read as JSON.

Every delivery is a hint: the jobs it names are read afresh from the vendor and compared with what is known
(`vendor_poll.JobChangePoll.hint`), so a forged, repeated, late or out-of-order delivery changes nothing
that the vendor does not say, and a lost one is read by the next poll. A vendor answered 503 (the job could
not be read now) delivers again, as both retry a delivery not answered 2xx.

The copies of one delivery (a vendor sends some twice or three times) need not each cost a read: deliveries for
one job are served one at a time (in this process), and one the job as last read and applied already answers
(`Inbound.covered`, where the vendor's delivery says enough to tell) is answered 200 without a read. Whatever
the last read did not show is read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fsm_mcp.errors import FsmError
from fsm_mcp.events.vendor_poll import JobChangePoll

log = logging.getLogger("fsm_mcp")
VENDORS = ("servicetitan", "fieldpulse")
MOST = 1_000_000  # bytes a delivery may have


@dataclass(frozen=True, slots=True)
class Inbound:
    """How one business's webhooks from its vendor are authenticated and read."""

    poll: JobChangePoll
    hinted: Callable[[Any], list[str]]  # a delivery's JSON -> the ids of the jobs it names
    secret: SecretStr | None = None  # ends the path
    key: SecretStr | None = None  # signs the body
    header: str = ""
    encoding: str = "base64"  # or "hex"
    # (a delivery's JSON, a job it names) -> whether the job as last read and applied shows what it announces
    covered: Callable[[Any, str], Awaitable[bool]] | None = None
    flights: dict[str, _Flight] = field(default_factory=dict)  # jobs being served, one delivery at a time

    async def serve(self, payload: Any, job_id: str) -> None:
        """Read the job a delivery names, unless the last read (perhaps for another copy, served meanwhile) answers it."""
        if self.covered is None:  # nothing tells: the poll's own coalescing of concurrent deliveries is all there is
            await self.poll.hint(job_id)
            return
        flight = self.flights.setdefault(job_id, _Flight())
        flight.waiting += 1
        try:
            async with flight.lock:
                if not await self.covered(payload, job_id):
                    await self.poll.hint(job_id)
        finally:
            flight.waiting -= 1
            if not flight.waiting and self.flights.get(job_id) is flight:
                del self.flights[job_id]


@dataclass
class _Flight:
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    waiting: int = 0


def signature(body: bytes, key: str, encoding: str) -> str:
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def signed(body: bytes, given: str | None, key: str, encoding: str) -> bool:
    if not given:
        return False
    given = given.strip().removeprefix("sha256=")
    expected = signature(body, key, encoding)
    if encoding == "hex":
        given = given.lower()
    return hmac.compare_digest(expected.encode(), given.encode())


def authentic(inbound: Inbound, request: Request, body: bytes, secret: str | None) -> bool:
    if secret is not None:
        want = inbound.secret.get_secret_value() if inbound.secret else ""
        return bool(want) and hmac.compare_digest(want.encode(), secret.encode())
    if inbound.key is None:
        return False
    return signed(body, request.headers.get(inbound.header), inbound.key.get_secret_value(), inbound.encoding)


Find = Callable[[str, str], Inbound | None]  # (vendor, business) -> its webhooks; None: it takes none of them


def routes(find: Find) -> list[Route]:
    """Each vendor's own paths (the accounting webhooks have theirs beside them)."""

    async def receive(request: Request) -> Response:
        vendor = request.url.path.split("/")[2]
        business, secret = request.path_params["business"], request.path_params.get("secret")
        inbound = find(vendor, business)
        if inbound is None or (secret is None and inbound.key is None):
            return Response(status_code=404)
        body = await request.body()
        if len(body) > MOST or not authentic(inbound, request, body, secret):
            return Response(status_code=401)
        try:
            payload = json.loads(body)
            jobs = inbound.hinted(payload)
        except ValueError:
            return Response(status_code=400)
        try:
            for job_id in jobs:
                await inbound.serve(payload, job_id)
        except FsmError as exc:  # the vendor delivers again; the poll catches up meanwhile
            log.warning("%s webhook for a job not applied yet: %s", vendor, type(exc).__name__)
            return Response(status_code=503)
        return Response(status_code=200)

    return [Route(path, receive, methods=["POST"]) for vendor in VENDORS
            for path in (f"/webhooks/{vendor}/{{business}}", f"/webhooks/{vendor}/{{business}}/{{secret}}")]
