"""A vendor booking whose new customer was made but whose call failed before it recorded that customer keeps
its idempotency key, so the retry with the key finds that customer instead of making a second one (FieldPulse and
ServiceTitan alike: the guard is the booking path's `kept_key`). A call cut off while it created the customer is
taken up where it was, the customer begun on the key's row: the retry books the customer that call made (or makes
it, once), whoever the directory has come to hold meanwhile, and a customer the vendor refused gives the key back."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from mcp import Client

from fsm_mcp.server import build_server
from tests.hcp_rig import hcp_rig  # noqa: F401  (the fixture `hcp`)
from tests.st_rig import NEW_CALLER, WINDOW, Rig, call

pytestmark = pytest.mark.anyio

BOOKING: dict[str, Any] = {"job_type": "Furnace repair", "summary": "No heat", "customer": NEW_CALLER,
                           "address": "5 Elm St, Springfield, IL 62704", **WINDOW}


class LostThenRefused(httpx.AsyncBaseTransport):
    """The network edge of the server: the first POST of a customer reaches the vendor, which makes the customer,
    and its answer is lost (a gateway's 504); the first read of `refuse` (locations, or the customers the write
    is read back from) is then refused."""

    def __init__(self, inner: httpx.AsyncBaseTransport, refuse: str = "/locations") -> None:
        self.inner, self.refuse = inner, refuse
        self.lost = self.refused = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith(self.refuse) and self.lost and not self.refused:
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


class DiesAfterTheCustomer(httpx.AsyncBaseTransport):
    """The server's process dies the moment the vendor has made the new customer: the customer POST reaches the
    vendor, which makes it, and its answer never comes back to a live caller (nothing recorded that customer)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.died = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/customers") and not self.died:
            self.died = True
            raise ProcessDied
        return response


class ProcessDied(Exception):
    pass


SAME_NAME_SAME_HOUSE = {"name": NEW_CALLER["name"], "phone": "(217) 555-0123", "email": "ann.lee@example.org"}


def records(vendor: Rig) -> Any:
    """What holds the fake vendor's customers and jobs (Housecall Pro's fake keeps them in its company)."""
    return getattr(vendor.fake, "company", vendor.fake)


def named(vendor: Rig) -> list[dict[str, Any]]:
    """The vendor's customers named as the new caller, whatever field its records keep the name in."""
    def name(c: dict[str, Any]) -> str:
        return str(c.get("display_name") or c.get("name") or f"{c.get('first_name')} {c.get('last_name')}")
    return [c for c in records(vendor).customers.values() if name(c) == NEW_CALLER["name"]]


def customer_of(job: dict[str, Any]) -> str:
    return str(job.get("customer_id", job.get("customerId")))


def jobs_of(vendor: Rig, customer_id: str) -> list[dict[str, Any]]:
    return [j for j in records(vendor).jobs.values() if customer_of(j) == customer_id]


@pytest.fixture(params=["fieldpulse", "servicetitan", "housecallpro"])
def any_vendor(request: pytest.FixtureRequest, store_kind: str) -> Rig:
    rig: Rig = request.getfixturevalue({"fieldpulse": "fp", "servicetitan": "rig", "housecallpro": "hcp"}[request.param])
    return rig


@pytest.mark.parametrize("meanwhile", ["another caller of that name books", "the sync mirrors the customer",
                                       "both"])
async def test_a_booking_cut_off_once_the_vendor_made_its_customer_books_that_customer_whoever_arrived_meanwhile(
        any_vendor: Rig, meanwhile: str) -> None:
    vendor = any_vendor
    edge = DiesAfterTheCustomer(vendor.transport)
    async with Client(build_server(vendor.settings, edge)) as client:
        cut = await client.call_tool("create_job", {"idempotency_key": "k1", **BOOKING})
        assert cut.is_error and edge.died and len(named(vendor)) == 1
        if meanwhile != "the sync mirrors the customer":  # she is in the directory before the retry, the first not
            await call(client, "create_job", idempotency_key="k2", **{**BOOKING, "customer": SAME_NAME_SAME_HOUSE})
        if meanwhile != "another caller of that name books":
            await vendor.sync()
        (first,) = [c for c in named(vendor) if not jobs_of(vendor, str(c["id"]))]  # the cut-off call's
        booked = await call(client, "create_job", idempotency_key="k1", **BOOKING)
        replay = await call(client, "create_job", idempotency_key="k1", **BOOKING)
    assert len(named(vendor)) == (1 if meanwhile == "the sync mirrors the customer" else 2), \
        "the retry made a second customer for the cut-off call's caller"
    assert booked["customer_id"] == str(first["id"]) and booked["customer_created"] and replay == booked
    assert [str(j["id"]) for j in jobs_of(vendor, str(first["id"]))] == [booked["job_id"]]


class Once(httpx.AsyncBaseTransport):
    """The first POST of a customer goes no further than the server's edge: refused as the vendor refuses a
    record it will not make, or the process dies as it is about to leave."""

    def __init__(self, inner: httpx.AsyncBaseTransport, refused: bool) -> None:
        self.inner, self.refused = inner, refused
        self.stopped = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/customers") and not self.stopped:
            self.stopped = True
            if not self.refused:
                raise ProcessDied
            return httpx.Response(400, json={"message": "The customer could not be created."}, request=request)
        return await self.inner.handle_async_request(request)


async def test_a_new_customer_the_vendor_refused_gives_the_key_back_with_the_customer_it_had_begun(
        any_vendor: Rig) -> None:
    vendor = any_vendor
    edge = Once(vendor.transport, refused=True)
    async with Client(build_server(vendor.settings, edge)) as client:
        refused = await client.call_tool("create_job", {"idempotency_key": "k1", **BOOKING})
        assert refused.is_error and edge.stopped and not named(vendor)
        corrected = {**BOOKING, "summary": "No heat since last night"}  # new arguments under the key given back
        booked = await call(client, "create_job", idempotency_key="k1", **corrected)
    (made,) = named(vendor)
    assert booked["customer_created"] and booked["customer_id"] == str(made["id"])


async def test_a_booking_cut_off_before_its_customer_left_makes_it_once_without_asking_the_directory_again(
        any_vendor: Rig) -> None:
    vendor = any_vendor
    edge = Once(vendor.transport, refused=False)
    async with Client(build_server(vendor.settings, edge)) as client:
        cut = await client.call_tool("create_job", {"idempotency_key": "k1", **BOOKING})
        assert cut.is_error and edge.stopped and not named(vendor)
        other = await call(client, "create_job", idempotency_key="k2", **{**BOOKING, "customer": SAME_NAME_SAME_HOUSE})
        booked = await call(client, "create_job", idempotency_key="k1", **BOOKING)
    assert len(named(vendor)) == 2 and booked["customer_created"] and booked["customer_id"] != other["customer_id"]
    assert [str(j["id"]) for j in jobs_of(vendor, booked["customer_id"])] == [booked["job_id"]]


async def test_a_new_customer_whose_write_is_uncertain_is_retried_under_its_key_and_made_once(any_vendor: Rig) -> None:
    vendor = any_vendor
    edge = LostThenRefused(vendor.transport, refuse="/customers")
    async with Client(build_server(vendor.settings, edge)) as client:
        uncertain = await client.call_tool("create_job", {"idempotency_key": "k1", **BOOKING})
        assert uncertain.is_error and edge.lost and edge.refused and len(named(vendor)) == 1
        text = uncertain.content[0].text  # type: ignore[union-attr]
        assert "may or may not have made the new customer" in text and "reading back was refused too" in text
        assert "Retry with the same idempotency_key and arguments" in text and "Check in" not in text
        booked = await call(client, "create_job", idempotency_key="k1", **BOOKING)
    (made,) = named(vendor)
    assert booked["customer_created"] and booked["customer_id"] == str(made["id"])
    assert [str(j["id"]) for j in jobs_of(vendor, booked["customer_id"])] == [booked["job_id"]]
