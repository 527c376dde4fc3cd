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

The copies of one delivery (a vendor sends some twice or three times) need not each cost a read:
- where a delivery does not say what changed (ServiceTitan's body is not in its published spec), a copy of a
  delivery (the same body, byte for byte) is answered 200 without a read within `RECENT` of a read,
  begun after the delivery arrived, that applied a newer version of the job than was applied when it arrived:
  that read showed the change announced (one that showed nothing new, as for a delivery sent before the change
  could be read, or a job not known here before, serves no copy). Two distinct changes whose
  deliveries are byte-identical (a vendor whose body names neither an event nor a time, and a job completed,
  reopened and completed again within the minute) are served by the first's read; the poll reads the second;
- deliveries for one job are served one at a time (in this process), and one the job as last read and applied
  already answers (`Inbound.covered`, where the vendor's delivery says enough to tell) needs no read either;
- deliveries arriving while a read is under way are read together by the next (`JobChangePoll.hint`).
Whatever the last read did not show is read.

A delivery also nudges the background loop (`JobChangePoll.nudge`): a quick poll of the jobs changed in the last
seconds follows within about a second (at most one a second), so a delivery lost while the vendor is sending
others is caught up then, not only at the next full poll.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fsm_mcp.errors import FsmError
from fsm_mcp.events.vendor_jobs import versions
from fsm_mcp.events.vendor_poll import JobChangePoll

log = logging.getLogger("fsm_mcp")
VENDORS = ("servicetitan", "fieldpulse")
MOST = 1_000_000  # bytes a delivery may have
RECENT = timedelta(minutes=1)  # how long a read serves the later copies of a delivery (they come seconds apart)
REMEMBERED = 10_000  # deliveries served, kept for their copies (the oldest forgotten first)


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
    # (the digest of a delivery's body, a job it names) -> when a read begun after it arrived was applied
    served: OrderedDict[tuple[bytes, str], datetime] = field(default_factory=OrderedDict)

    async def serve(self, body: bytes, payload: Any, job_id: str) -> None:
        """Read the job a delivery names, unless a read begun after a copy of it arrived, or the last read (perhaps
        for another delivery, served meanwhile), answers it."""
        if self.covered is None:  # the delivery does not say what changed: a copy is known by its bytes
            await self._unless_copy(body, job_id)
        else:
            await self._unless_covered(self.covered, payload, job_id)

    async def _unless_copy(self, body: bytes, job_id: str) -> None:
        db = self.poll.db
        key = (hashlib.sha256(body).digest(), job_id)
        if (at := self.served.get(key)) is not None and db.clock.now() - at <= RECENT:
            return
        before = (await versions(db, self.poll.tenant, [job_id])).get(job_id)
        await self.poll.hint(job_id)  # deliveries arriving meanwhile are gathered into one read
        after = (await versions(db, self.poll.tenant, [job_id])).get(job_id)
        if before is None or after is None or after <= before:
            return  # nothing newer shown (sent before the change could be read, forged, a job new here): read copies
        self.served[key] = db.clock.now()
        self.served.move_to_end(key)
        while len(self.served) > REMEMBERED:
            self.served.popitem(last=False)

    async def _unless_covered(self, covered: Callable[[Any, str], Awaitable[bool]], payload: Any, job_id: str) -> None:
        flight = self.flights.setdefault(job_id, _Flight())
        flight.waiting += 1
        try:
            async with flight.lock:
                if not await covered(payload, job_id):
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
                await inbound.serve(body, payload, job_id)
        except FsmError as exc:  # the vendor delivers again; the poll catches up meanwhile
            log.warning("%s webhook for a job not applied yet: %s", vendor, type(exc).__name__)
            return Response(status_code=503)
        inbound.poll.nudge()  # the vendor is sending: one lost meanwhile is polled for soon
        return Response(status_code=200)

    return [Route(path, receive, methods=["POST"]) for vendor in VENDORS
            for path in (f"/webhooks/{vendor}/{{business}}", f"/webhooks/{vendor}/{{business}}/{{secret}}")]
