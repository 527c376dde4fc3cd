"""A vendor booking whose new customer was made but whose call failed before it recorded that customer keeps
its idempotency key, so the retry with the key finds that customer instead of making a second one (FieldPulse and
ServiceTitan alike: the guard is the booking path's `kept_key`)."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from mcp import Client

from fsm_mcp.server import build_server
from tests.st_rig import NEW_CALLER, WINDOW, Rig, call

pytestmark = pytest.mark.anyio

BOOKING: dict[str, Any] = {"job_type": "Furnace repair", "summary": "No heat", "customer": NEW_CALLER,
                           "address": "5 Elm St, Springfield, IL 62704", **WINDOW}


class LostThenRefused(httpx.AsyncBaseTransport):
    """The network edge of the server: the first POST of a customer reaches the vendor, which makes the customer,
    and its answer is lost (a gateway's 504); the first read of locations is then refused."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = self.refused = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith("/locations") and self.lost and not self.refused:
            self.refused = True
            return httpx.Response(400, json={"error": True, "errors": ["The request could not be served."]},
                                  request=request)
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and path.endswith("/customers") and not self.lost:
            self.lost = True
            return httpx.Response(504, json={"message": "Endpoint request timed out"}, request=request)
        return response


def new_customers(fp: Rig) -> list[dict[str, Any]]:
    return [c for c in fp.fake.customers.values() if c.get("display_name", c.get("name")) == NEW_CALLER["name"]]


@pytest.fixture(params=["fieldpulse", "servicetitan"])
def vendor(request: pytest.FixtureRequest, store_kind: str) -> Rig:  # store_kind: the rigs run on both stores
    rig: Rig = request.getfixturevalue("fp" if request.param == "fieldpulse" else "rig")
    return rig


async def test_a_retry_after_the_new_customer_was_made_and_the_call_then_failed_books_that_customer(vendor: Rig) -> None:
    fp = vendor
    edge = LostThenRefused(fp.transport)
    async with Client(build_server(fp.settings, edge)) as client:
        first = await client.call_tool("create_job", {"idempotency_key": "k1", **BOOKING})
        assert first.is_error and edge.lost and edge.refused  # the customer exists at FieldPulse; nothing recorded it
        assert "same idempotency_key" in first.content[0].text  # type: ignore[union-attr]
        assert len(new_customers(fp)) == 1 and not fp.fake.jobs
        booked = await call(client, "create_job", idempotency_key="k1", **BOOKING)
        replay = await call(client, "create_job", idempotency_key="k1", **BOOKING)
    made = new_customers(fp)
    assert len(made) == 1, "the retry with the same key made a second customer"
    assert booked["customer_created"] and replay == booked
    assert [j.get("customer_id", j.get("customerId")) for j in fp.fake.jobs.values()] == [made[0]["id"]]
