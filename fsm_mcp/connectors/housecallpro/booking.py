"""The booking path's steps at Housecall Pro: a new customer is created with the caller's
numbers, e-mail and service address; a contact the record lacks fills one of its empty
fields (three numbers, one e-mail); the job is created with its schedule and, in its
first note, its summary and the reference of the idempotency key. Each vendor write is
followed by the same write to the directory.

Housecall Pro takes no idempotency key. A job is found again by the key's reference in its
notes (`mapping.ref`); without a key, by what makes it this booking: the customer, the
place, the job type and the start. A new customer carries the reference in its notes too, so
a call resuming one cut off while it created the customer (`Attempt.in_flight`) finds that
customer by the key, not by a name and street another caller may share.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from fsm_mcp.connectors.booking import CUSTOMER, Added
from fsm_mcp.connectors.housecallpro import mapping
from fsm_mcp.connectors.housecallpro.api import HousecallProApi
from fsm_mcp.connectors.housecallpro.catalog import JobTypes
from fsm_mcp.connectors.housecallpro.jobs import Jobs
from fsm_mcp.directory import booking, mirror
from fsm_mcp.identity.contacts import CallerPerson
from fsm_mcp.identity.emails import normalize_email
from fsm_mcp.identity.phones import InvalidPhone, parse_phone
from fsm_mcp.identity.text import fold
from fsm_mcp.inputs import AddressIn, BookingRequest
from fsm_mcp.models import Customer, Job
from fsm_mcp.settings import Business
from fsm_mcp.store import Store
from fsm_mcp.store.idempotency import Attempt

Json = dict[str, Any]
RECENT = 20  # a customer's newest jobs searched for a cut-off call's job
DAY_BEFORE = timedelta(days=1)  # a visit from the day before may run into the window


class HousecallProSteps:
    """The booking path's steps (`connectors.booking`) at Housecall Pro."""

    def __init__(self, api: HousecallProApi, jobs: Jobs, job_types: JobTypes, db: Store, business: Business) -> None:
        self.api, self.jobs, self.job_types, self.db, self.business = api, jobs, job_types, db, business
        self.tenant, self.region, self.zone = business.tenant_id, business.country, business.zone

    async def before(self, request: BookingRequest) -> None:
        await self.job_types.id_of(request.job_type)  # an unknown job type is refused before anything is written

    async def create_job(self, customer_id: str, place_id: str, request: BookingRequest, key: str | None,
                         now: datetime) -> Job:
        start, end = request.window
        body: Json = {
            "customer_id": customer_id, "address_id": place_id,
            "schedule": {"scheduled_start": mapping.stamp(start), "scheduled_end": mapping.stamp(end), "arrival_window": 0},
            "notes": mapping.notes_out(request.summary, request.priority, key),
            "job_fields": {"job_type_id": await self.job_types.id_of(request.job_type)},
        }
        raw = await self.api.write("POST", "/jobs", body, check=lambda: self._find(customer_id, place_id, request, key),
                                   what="the job")
        return self.jobs.view(raw)

    async def dispatch(self, job_id: str, technician_id: str, now: datetime) -> Job:
        return await self.jobs.dispatch(job_id, technician_id, None)

    async def job_by_key(self, customer_id: str, place_id: str, request: BookingRequest, key: str,
                         now: datetime) -> Job | None:
        done = await self._find(customer_id, place_id, request, key)
        return self.jobs.view(done) if done else None

    async def _find(self, customer_id: str, place_id: str, request: BookingRequest, key: str | None) -> Json | None:
        """This booking's job among the customer's newest: by the key's reference, or without a key by place,
        job type and start."""
        newest = (await self.api.get("/jobs", {"customer_id": customer_id, "sort_by": "created_at", "sort_direction": "desc",
                                               "page": 1, "page_size": RECENT}))["jobs"]
        for job in newest:
            if key is not None:
                if mapping.carries(job, key):
                    return job  # type: ignore[no-any-return]
            elif mapping.place_of(job) == place_id and fold(mapping.job_type(job)) == fold(request.job_type) and \
                    (span := mapping.window(job, self.zone)) and span[0] == request.window[0]:
                return job  # type: ignore[no-any-return]
        return None

    async def new_customer(self, request: BookingRequest, attempt: Attempt, now: datetime) -> tuple[str, str]:
        details = request.customer
        assert details is not None and request.address is not None
        place = mapping.address_out(request.address, self.business.country)
        phones, emails = (sorted(x) for x in booking.caller_contacts(self.business, request))
        name = details.name.strip()
        first, last = mapping.split_name(name)
        body: Json = {"first_name": first, **({"last_name": last} if last else {}), **({"email": emails[0]} if emails else {}),
                      **dict(zip(mapping.PHONES, phones, strict=False)), "addresses": [place],
                      **({"notes": f"[fsm-mcp ref {mapping.ref(attempt.key)}]"} if attempt.key else {})}

        async def created() -> Json | None:  # the one carrying the key's reference; without a key, the same name at the same street
            for c in (await self.api.get("/customers", {"q": name, "page": 1, "page_size": RECENT, "sort_by": "created_at",
                                                        "sort_direction": "desc"}))["customers"]:
                if (_carries(c, attempt.key) if attempt.key else fold(mapping.name_of(c)) == fold(name) and
                        any(a.get("street") == place["street"] for a in c.get("addresses") or [])):
                    return c  # type: ignore[no-any-return]
            return None

        # A call resuming one cut off while it created the customer may find the customer that call created.
        made = (await created() if attempt.in_flight(CUSTOMER) else None) or \
            await self.api.write("POST", "/customers", body, check=created, what="the new customer")
        places = mapping.locations(made, self.zone)
        await self.db.awrite(partial(mirror.upsert, customers=[mapping.customer(made, self.zone)], locations=places,
                                     contacts=mapping.customer_contacts(made, self.region)), self.tenant, now)
        return str(made["id"]), next(p.id for p in places if p.address.street == place["street"])

    async def new_place(self, customer: Customer, address: AddressIn, now: datetime) -> str:
        place = mapping.address_out(address, self.business.country)
        known = {x.location_id for x in customer.locations}
        path = f"/customers/{customer.customer_id}/addresses"

        async def created() -> Json | None:
            for a in await self.api.all(path, "addresses"):
                if a.get("street") == place["street"] and str(a["id"]) not in known:
                    return a
            return None

        made = await self.api.write("POST", path, place, check=created, what="the new service address")
        location = mirror.MirroredLocation(id=str(made["id"]), customer_id=customer.customer_id,
                                            address=mapping.address_in(made), created=now)
        await self.db.awrite(partial(mirror.upsert, locations=[location]), self.tenant, now)
        return str(made["id"])

    async def add_contacts(self, customer: Customer, phones: list[str], emails: list[str], now: datetime,
                           person: CallerPerson | None = None) -> Added:
        """The caller's numbers and e-mail the record lacks, each into an empty field of the record; what does
        not fit (a fourth number, a second e-mail) is not added."""
        record = await self.api.one("/customers/{}", "customer", customer.customer_id, "Call lookup_customer again.")
        free = [f for f in mapping.PHONES if not str(record.get(f) or "").strip()]
        changes: Json = dict(zip(free, phones, strict=False))
        if emails and not str(record.get(mapping.EMAIL) or "").strip():
            changes[mapping.EMAIL] = emails[0]
        if not changes:
            return [], None

        async def done() -> Json | None:  # setting the same fields twice changes nothing
            now_held = await self.api.one("/customers/{}", "customer", customer.customer_id, "")
            return now_held if all(_same(k, now_held.get(k), v, self.region) for k, v in changes.items()) else None

        made = await self.api.write("PUT", f"/customers/{customer.customer_id}", changes, check=done,
                                    what="the caller's contacts")
        await self.db.awrite(partial(mirror.upsert, contacts=mapping.customer_contacts(made, self.region)), self.tenant, now)
        return [str(v) for v in changes.values()], None

    async def open_jobs(self, customer_id: str, place_id: str, request: BookingRequest) -> list[Job]:
        start, end = request.window
        raw = await self.jobs.between(start - DAY_BEFORE, end, customer_id=customer_id,
                                      work_status=list(mapping.OPEN_FILTER))
        return [self.jobs.view(j) for j in raw if mapping.place_of(j) == place_id]


def _carries(customer: Json, key: str) -> bool:
    """Whether the customer's notes end with the reference of this key (the booking that created it)."""
    return (m := mapping.REF.search(str(customer.get("notes") or ""))) is not None and m["ref"] == mapping.ref(key)


def _same(field: str, have: Any, want: str, region: str) -> bool:
    """Whether the record read back holds the value sent (Housecall Pro may format a number its own way)."""
    if field == mapping.EMAIL:
        return normalize_email(str(have or "")) == normalize_email(want) if have else False
    try:
        return bool(have) and parse_phone(str(have), region).e164 == want
    except InvalidPhone:
        return False

