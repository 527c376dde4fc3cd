"""The booking path's steps at FieldPulse: a new customer is created with the caller's phone,
e-mail and service address as its main location; contacts are customer contacts. Each vendor
write is followed by the same write to the directory (for a new customer, in one transaction
with the key's recovery point).

FieldPulse takes no idempotency key and has no field to keep one in: its custom fields take
only fields the account has defined, and notes are text the office reads. What a cut-off call
made is therefore recognised by what makes it this booking, among records created since the
key's last recovery point (`connectors.booking.look_back`), and looked for only when the key's
row says such a call was cut off: a job by its customer, place, job type and start; a customer
by its name and street and the caller's numbers and e-mail on its record (which tell it from
another caller of that name booked at that house meanwhile), looked for when the row says the
cut-off call was creating it (`Attempt.in_flight`). The read-back after a lost answer is the same
test. A failure after the customer exists and before its recovery point is recorded keeps the key
(`connectors.booking.kept_key`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from fsm_mcp.connectors.booking import CUSTOMER, SKEW, Added, kept_key, look_back
from fsm_mcp.connectors.fieldpulse import mapping
from fsm_mcp.connectors.fieldpulse.api import FieldPulseApi, where
from fsm_mcp.connectors.fieldpulse.jobs import Jobs
from fsm_mcp.directory import booking, mirror
from fsm_mcp.identity.contacts import CallerPerson
from fsm_mcp.identity.text import fold
from fsm_mcp.inputs import AddressIn, BookingRequest
from fsm_mcp.models import Customer, Job
from fsm_mcp.settings import Business
from fsm_mcp.store import Store
from fsm_mcp.store.idempotency import Attempt

Json = dict[str, Any]


class FieldPulseSteps:
    """The booking path's steps (`connectors.booking`) at FieldPulse."""

    def __init__(self, api: FieldPulseApi, jobs: Jobs, db: Store, business: Business) -> None:
        self.api, self.jobs, self.db, self.business = api, jobs, db, business
        self.tenant, self.region = business.tenant_id, business.country

    async def before(self, request: BookingRequest) -> None:
        return None  # FieldPulse takes any job type

    async def create_job(self, customer_id: str, place_id: str, request: BookingRequest, key: str | None,
                         now: datetime) -> Job:
        start, end = request.window
        body: Json = {
            "customer_id": int(customer_id), "location_id": int(place_id), "job_type": request.job_type.strip(),
            "status": mapping.NEW, "start_time": mapping.stamp(start), "end_time": mapping.stamp(end),
            "notes": mapping.notes_out(request.summary, request.priority), "assignments": [],
        }
        since = now - SKEW
        raw = await self.api.write("POST", "/jobs", body, check=lambda: self._find(customer_id, place_id, request, since),
                                   what="the job")
        return (await self.jobs.views([raw], comments=False))[0]

    async def dispatch(self, job_id: str, technician_id: str, now: datetime) -> Job:
        return await self.jobs.dispatch(job_id, technician_id, None)

    async def job_by_key(self, customer_id: str, place_id: str, request: BookingRequest, key: str,
                         since: datetime) -> Job | None:
        """FieldPulse cannot keep the key: the job is recognised by what makes it this booking."""
        done = await self._find(customer_id, place_id, request, since)
        return (await self.jobs.views([done], comments=False))[0] if done else None

    async def new_customer(self, request: BookingRequest, attempt: Attempt, now: datetime) -> tuple[str, str]:
        details = request.customer
        assert details is not None and request.address is not None
        place = mapping.location_out(request.address, "Service address")
        phones, emails = (sorted(x) for x in booking.caller_contacts(self.business, request))
        name = details.name.strip()
        first, last = mapping.split_name(name)
        body: Json = {
            "first_name": first, "last_name": last, "display_name": name,
            "phone": phones[0] if phones else "", "secondary_phone": phones[1] if len(phones) > 1 else "",
            "email": emails[0] if emails else "",
            "service_address_1": place["address_1"], "service_address_2": place["address_2"],
            "service_address_city": place["city"], "service_address_state": place["state"],
            "service_address_zip_code": place["zip_code"],
            "locations": [{**place, "object_type": "customer", "is_main_location": True}],
        }

        since = look_back(attempt, now)

        async def created() -> Json | None:  # the same name, street and contacts, created since the customer was begun
            for c in await self.api.all("/customers", {"search": name}):
                if fold(mapping.name_of(c)) == fold(name) and c.get("service_address_1") == place["address_1"] and \
                        (made_at := mapping.when(c.get("created_at"))) is not None and made_at >= since and \
                        {*phones, *emails} <= {k.value for k in mapping.customer_contacts(c, self.region)}:
                    return c
            return None

        # A call resuming one cut off while it created the customer may find the customer that call created.
        made = (await created() if attempt.in_flight(CUSTOMER) else None) or \
            await self.api.write("POST", "/customers", body, check=created, what="the new customer")
        async with kept_key("FieldPulse", "the new customer"):  # it exists at FieldPulse: the key is not given back
            locations = made.get("locations") or \
                await self.api.all("/locations", {"object_type": "customer", "object_id": made["id"]})
        customer_id, place_id = str(made["id"]), str(locations[0]["id"])
        await attempt.record(self.db, CUSTOMER, f"{customer_id} {place_id}", partial(
            mirror.upsert, customers=[mapping.customer(made)], locations=[mapping.location(loc) for loc in locations],
            contacts=mapping.customer_contacts(made, self.region),
        ), self.tenant, now)
        return customer_id, place_id

    async def new_place(self, customer: Customer, address: AddressIn, now: datetime) -> str:
        place = mapping.location_out(address, "Service address")
        known = {x.location_id for x in customer.locations}

        async def created() -> Json | None:
            for loc in await self.api.all("/locations", {"object_type": "customer", "object_id": customer.customer_id}):
                if loc.get("address_1") == place["address_1"] and str(loc["id"]) not in known:
                    return loc
            return None

        made = await self.api.write("POST", "/locations", {**place, "object_type": "customer",
                                                           "object_id": int(customer.customer_id), "is_main_location": False},
                                    check=created, what="the new service address")
        await self.db.awrite(partial(mirror.upsert, locations=[mapping.location(made)]), self.tenant, now)
        return str(made["id"])

    async def add_contacts(self, customer: Customer, phones: list[str], emails: list[str], now: datetime,
                           person: CallerPerson | None = None) -> Added:
        """The caller's numbers and e-mail the record lacks, added at FieldPulse as a customer contact, then here."""
        first, last = mapping.split_name(person.name if person else customer.name)  # the caller's own name
        path = f"/customers/{customer.customer_id}/customer-contact"
        added = []
        for field, value in [("phone", p) for p in phones] + [("email", e) for e in emails]:
            async def there(field: str = field, value: str = value) -> Json | None:
                for k in await self.api.all(path):
                    if any(c.value == value for c in mapping.contact(k, customer.customer_id, self.region)):
                        return k
                return None

            made = await self.api.write("POST", path, {"first_name": first, "last_name": last, field: value},
                                        check=there, what=f"the contact {value}")
            await self.db.awrite(partial(mirror.upsert, contacts=mapping.contact(made, customer.customer_id, self.region)),
                                 self.tenant, now)
            added.append(value)
        return added, None

    async def open_jobs(self, customer_id: str, place_id: str, request: BookingRequest) -> list[Job]:
        start, end = request.window
        raw = await self.jobs.between(start - timedelta(days=1), end, ("customer_id", "=", customer_id))
        return await self.jobs.views([j for j in raw if str(j.get("location_id")) == place_id], comments=False)

    async def _find(self, customer_id: str, place_id: str, request: BookingRequest, since: datetime) -> Json | None:
        """This booking's job, if one was created since `since`: same customer, place, type and start."""
        start = request.window[0]
        for job in await self.api.all("/jobs", {"created_from": mapping.epoch(since), "sort_by": "created_at",
                                                "sort_dir": "desc", "filter": where(("customer_id", "=", customer_id))}):
            if str(job.get("location_id")) == place_id and fold(str(job.get("job_type"))) == fold(request.job_type) \
                    and mapping.when(job.get("start_time")) == start:
                return job
        return None
