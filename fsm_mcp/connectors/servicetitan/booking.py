"""Booking a job in ServiceTitan: the customer (found in the directory, or created with a
location, a bill-to address and contacts), the location, the caller's new contacts, the
duplicate check, then the job with its appointment and the idempotency key in its
externalData. Each vendor write is followed by the same write to the directory.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from fsm_mcp.connectors.base import Booking, BookingRequest
from fsm_mcp.connectors.servicetitan import mapping
from fsm_mcp.connectors.servicetitan.api import ServiceTitanApi
from fsm_mcp.connectors.servicetitan.catalog import Settings
from fsm_mcp.connectors.servicetitan.jobs import Jobs
from fsm_mcp.directory import booking, customers, mirror
from fsm_mcp.errors import InvalidInput
from fsm_mcp.inputs import AddressIn
from fsm_mcp.models import Customer, JobStatus
from fsm_mcp.scheduling import BOOKED, overlaps
from fsm_mcp.settings import Business
from fsm_mcp.store.db import Database

Json = dict[str, Any]
KEY = "fsm-mcp-idempotency-key"


class Booker:
    def __init__(self, api: ServiceTitanApi, settings: Settings, jobs: Jobs, db: Database, business: Business) -> None:
        self.api, self.settings, self.jobs, self.db, self.business = api, settings, jobs, db, business
        self.tenant = business.tenant_id
        self.guid = api.settings.app_guid

    async def book(self, request: BookingRequest, now: datetime) -> Booking:
        job_type = await self.settings.job_type(request.job_type)  # refuse an unknown type before writing anything
        found, _ = await self.db.aread(booking.attach, self.business, request)
        learned: list[str] = []
        location_id: str | None
        if found is None:
            customer_id, location_id = await self._new_customer(request, now)
        else:
            customer = await self.db.aread(customers.load_customer, self.tenant, found)
            customer_id = customer.customer_id
            location_id = booking.pick_location(customer.locations, request.address)
            if location_id is None:
                assert request.address is not None
                location_id = await self._new_location(customer, request.address)
            learned = await self._learn(request, customer)
            if request.key and request.resumed and (done := await self._find_by_key(customer_id, request.key, now)):
                return Booking(job=done, customer_created=False, already_booked=False, contacts_added=learned)
            if not request.allow_duplicate and (same := await self._same_job(customer_id, location_id, request)):
                return Booking(job=same, customer_created=False, already_booked=True, contacts_added=learned)
        start, end = request.window
        body: Json = {
            "customerId": int(customer_id), "locationId": int(location_id),
            "businessUnitId": await self.settings.business_unit(request.job_type), "jobTypeId": job_type,
            "priority": mapping.PRIORITY_OUT[request.priority], "campaignId": self.api.settings.campaign_id,
            "summary": request.summary.strip(),
            "appointments": [{"start": mapping.stamp(start), "end": mapping.stamp(end),
                              "arrivalWindowStart": mapping.stamp(start), "arrivalWindowEnd": mapping.stamp(end)}],
        }
        if request.key:
            body["externalData"] = {"applicationGuid": self.guid, "externalData": [{"key": KEY, "value": request.key}]}

        key = request.key
        created = (lambda: self._find_raw(customer_id, key, now)) if key else None  # read back by the job's key
        raw = await self.api.write("POST", "jpm", "jobs", body, check=created, what="the job")
        job = (await self.jobs.views([raw], notes=False))[0]
        if request.technician_id:
            job = await self.jobs.dispatch(job.job_id, request.technician_id, None)
        return Booking(job=job, customer_created=found is None, already_booked=False, contacts_added=learned)

    async def _new_customer(self, request: BookingRequest, now: datetime) -> tuple[str, str]:
        details = request.customer
        assert details is not None
        if request.address is None:
            raise InvalidInput("address", "a new customer needs the service address; ask the caller for it")
        place = mapping.address_out(request.address, self.business.country)
        phones, emails = booking.caller_contacts(self.business, request)
        name = details.name.strip()
        body = {"name": name, "address": place, "locations": [{"name": name, "address": place}],
                "contacts": mapping.contacts_out(sorted(phones), sorted(emails))}

        async def created() -> Json | None:  # the same name and street, created since this call began
            since = mapping.stamp(now - timedelta(minutes=5))
            for c in await self.api.all("crm", "customers", {"name": name, "createdOnOrAfter": since}):
                if c.get("name") == name and (c.get("address") or {}).get("street") == place["street"]:
                    return c
            return None

        # A retry of a call that was cut off may find the customer it already created.
        made = (await created() if request.resumed else None) or \
            await self.api.write("POST", "crm", "customers", body, check=created, what="the new customer")
        locations = made.get("locations") or await self.api.all("crm", "locations", {"customerId": made["id"]})
        contacts = made.get("contacts") or await self.api.all("crm", f"customers/{made['id']}/contacts")
        await self.db.awrite(partial(
            mirror.upsert, customers=[mapping.customer(made)],
            locations=[mapping.location({**loc, "customerId": made["id"]}) for loc in locations],
            contacts=[k for c in contacts if (k := mapping.contact(c, self.business.country, customer_id=str(made["id"])))],
        ), self.tenant, now)
        return str(made["id"]), str(locations[0]["id"])

    async def _new_location(self, customer: Customer, address: AddressIn) -> str:
        place = mapping.address_out(address, self.business.country)

        async def created() -> Json | None:
            for loc in await self.api.all("crm", "locations", {"customerId": customer.customer_id}):
                if (loc.get("address") or {}).get("street") == place["street"] and \
                        str(loc["id"]) not in {x.location_id for x in customer.locations}:
                    return loc
            return None

        made = await self.api.write("POST", "crm", "locations",
                                    {"customerId": int(customer.customer_id), "name": customer.name, "address": place},
                                    check=created, what="the new service address")
        await self.db.awrite(partial(mirror.upsert, locations=[mapping.location(made)]), self.tenant, self.db.clock.now())
        return str(made["id"])

    async def _learn(self, request: BookingRequest, customer: Customer) -> list[str]:
        """The caller's numbers and e-mail the record lacks, added at ServiceTitan, then here."""
        phones, emails = booking.missing_contacts(self.business, request, customer)
        added = []
        for kind, value in [("MobilePhone", p) for p in phones] + [("Email", e) for e in emails]:
            path = f"customers/{customer.customer_id}/contacts"

            async def there(value: str = value, path: str = path) -> Json | None:
                for c in await self.api.all("crm", path):
                    if (k := mapping.contact(c, self.business.country)) and k.value == value:
                        return c
                return None

            made = await self.api.write("POST", "crm", path, {"type": kind, "value": value}, check=there,
                                        what=f"the contact {value}")
            if k := mapping.contact(made, self.business.country, customer_id=customer.customer_id):
                await self.db.awrite(partial(mirror.upsert, contacts=[k]), self.tenant, self.db.clock.now())
            added.append(value)
        return added

    async def _same_job(self, customer_id: str, location_id: str, request: BookingRequest) -> Any:
        raw = await self.api.all("jpm", "jobs", {"customerId": customer_id, "jobStatus": "Scheduled,Dispatched,InProgress,Hold"})
        skill = self.business.skill_for(request.job_type)
        for job in await self.jobs.views([j for j in raw if str(j["locationId"]) == location_id], notes=False):
            if job.skill == skill and (job.status in BOOKED or job.status == JobStatus.on_hold) and \
                    overlaps(request.window, (job.window_start, job.window_end)):
                return job
        return None

    async def _find_raw(self, customer_id: str, key: str, now: datetime) -> Json | None:
        """The job booked under this key, if any. The application GUID makes each job show our externalData;
        it does not filter, so the customer's recent jobs are searched for the key."""
        since = mapping.stamp(now - timedelta(days=1))
        for job in await self.api.all("jpm", "jobs", {"customerId": customer_id, "externalDataApplicationGuid": self.guid,
                                                      "createdOnOrAfter": since}):
            if any(e.get("key") == KEY and e.get("value") == key for e in job.get("externalData") or []):
                return job
        return None

    async def _find_by_key(self, customer_id: str, key: str, now: datetime) -> Any:
        raw = await self._find_raw(customer_id, key, now)
        return (await self.jobs.views([raw], notes=False))[0] if raw else None
