"""The booking path's steps at ServiceTitan: a new customer is created with a location, a
bill-to address and contacts; the job with its appointment carries the idempotency key in its
externalData, and is read back by it. Each vendor write is followed by the same write to the
directory (for a new customer, in one transaction with the key's recovery point).

A customer cannot carry the key: CRM v2 gives customers no externalData, and its customFields
take only a field type the tenant's office has defined. A call resuming one cut off while it
created the customer (the key's row says so: `Attempt.in_flight`) therefore looks for the same
name at the same street, holding the caller's numbers and e-mail, among customers created since
the customer was begun (`connectors.booking.look_back`): the narrowest test the API allows. Its
contacts tell the cut-off call's customer from another caller of that name booked at that house
meanwhile.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from fsm_mcp.connectors.booking import CUSTOMER, SKEW, Added, kept_key, look_back
from fsm_mcp.connectors.servicetitan import mapping
from fsm_mcp.connectors.servicetitan.api import ServiceTitanApi
from fsm_mcp.connectors.servicetitan.catalog import Settings
from fsm_mcp.connectors.servicetitan.jobs import Jobs
from fsm_mcp.directory import booking, mirror
from fsm_mcp.identity.contacts import CallerPerson
from fsm_mcp.inputs import AddressIn, BookingRequest
from fsm_mcp.models import Customer, Job
from fsm_mcp.settings import Business
from fsm_mcp.store import Store
from fsm_mcp.store.idempotency import Attempt

Json = dict[str, Any]
KEY = "fsm-mcp-idempotency-key"


class ServiceTitanSteps:
    """The booking path's steps (`connectors.booking`) at ServiceTitan."""

    def __init__(self, api: ServiceTitanApi, settings: Settings, jobs: Jobs, db: Store, business: Business) -> None:
        self.api, self.settings, self.jobs, self.db, self.business = api, settings, jobs, db, business
        self.tenant = business.tenant_id
        self.guid = api.settings.app_guid

    async def before(self, request: BookingRequest) -> None:
        await self.settings.job_type(request.job_type)  # an unknown job type is refused before anything is written

    async def create_job(self, customer_id: str, place_id: str, request: BookingRequest, key: str | None,
                         now: datetime) -> Job:
        start, end = request.window
        body: Json = {
            "customerId": int(customer_id), "locationId": int(place_id),
            "businessUnitId": await self.settings.business_unit(request.job_type),
            "jobTypeId": await self.settings.job_type(request.job_type),
            "priority": mapping.PRIORITY_OUT[request.priority], "campaignId": self.api.settings.campaign_id,
            "summary": request.summary.strip(),
            "appointments": [{"start": mapping.stamp(start), "end": mapping.stamp(end),
                              "arrivalWindowStart": mapping.stamp(start), "arrivalWindowEnd": mapping.stamp(end)}],
        }
        if key:
            body["externalData"] = {"applicationGuid": self.guid, "externalData": [{"key": KEY, "value": key}]}
        created = (lambda: self._find_raw(customer_id, key, now - SKEW)) if key else None  # read back by the job's key
        raw = await self.api.write("POST", "jpm", "jobs", body, check=created, what="the job")
        return (await self.jobs.views([raw], notes=False))[0]

    async def dispatch(self, job_id: str, technician_id: str, now: datetime) -> Job:
        return await self.jobs.dispatch(job_id, technician_id, None)

    async def new_customer(self, request: BookingRequest, attempt: Attempt, now: datetime) -> tuple[str, str]:
        details = request.customer
        assert details is not None and request.address is not None
        place = mapping.address_out(request.address, self.business.country)
        phones, emails = booking.caller_contacts(self.business, request)
        name = details.name.strip()
        body = {"name": name, "address": place, "locations": [{"name": name, "address": place}],
                "contacts": mapping.contacts_out(sorted(phones), sorted(emails))}

        since = mapping.stamp(look_back(attempt, now))

        async def created() -> Json | None:  # the same name, street and contacts, created since the customer was begun
            for c in await self.api.all("crm", "customers", {"name": name, "createdOnOrAfter": since}):
                if c.get("name") == name and (c.get("address") or {}).get("street") == place["street"] and \
                        phones | emails <= await self._contact_values(str(c["id"])):
                    return c
            return None

        # A call resuming one cut off while it created the customer may find the customer that call created.
        made = (await created() if attempt.in_flight(CUSTOMER) else None) or \
            await self.api.write("POST", "crm", "customers", body, check=created, what="the new customer")
        async with kept_key("ServiceTitan", "the new customer"):  # it exists there: the key is not given back
            locations = made.get("locations") or await self.api.all("crm", "locations", {"customerId": made["id"]})
            contacts = made.get("contacts") or await self.api.all("crm", f"customers/{made['id']}/contacts")
        customer_id, place_id = str(made["id"]), str(locations[0]["id"])
        await attempt.record(self.db, CUSTOMER, f"{customer_id} {place_id}", partial(
            mirror.upsert, customers=[mapping.customer(made)],
            locations=[mapping.location({**loc, "customerId": made["id"]}) for loc in locations],
            contacts=[k for c in contacts if (k := mapping.contact(c, self.business.country, customer_id=customer_id))],
        ), self.tenant, now)
        return customer_id, place_id

    async def _contact_values(self, customer_id: str) -> set[str]:
        """The numbers (E.164) and e-mails of the customer's record at ServiceTitan."""
        return {k.value for c in await self.api.all("crm", f"customers/{customer_id}/contacts")
                if (k := mapping.contact(c, self.business.country))}

    async def new_place(self, customer: Customer, address: AddressIn, now: datetime) -> str:
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
        await self.db.awrite(partial(mirror.upsert, locations=[mapping.location(made)]), self.tenant, now)
        return str(made["id"])

    async def add_contacts(self, customer: Customer, phones: list[str], emails: list[str], now: datetime,
                           person: CallerPerson | None = None) -> Added:
        """The caller's numbers and e-mail the record lacks, added at ServiceTitan, then here."""
        added = []
        for kind, value in [("MobilePhone", p) for p in phones] + [("Email", e) for e in emails]:
            path = f"customers/{customer.customer_id}/contacts"

            async def there(value: str = value, path: str = path) -> Json | None:
                for c in await self.api.all("crm", path):
                    if (k := mapping.contact(c, self.business.country)) and k.value == value:
                        return c
                return None

            named = person is not None and person.contact_id != mirror.primary(customer.customer_id)  # not the customer
            body = {"type": kind, "value": value} | ({"memo": mapping.person_memo(person.name)} if named and person else {})
            made = await self.api.write("POST", "crm", path, body, check=there, what=f"the contact {value}")
            if k := mapping.contact(made, self.business.country, customer_id=customer.customer_id):
                await self.db.awrite(partial(mirror.upsert, contacts=[k]), self.tenant, now)
            added.append(value)
        return added, None

    async def open_jobs(self, customer_id: str, place_id: str, request: BookingRequest) -> list[Job]:
        # Not filtered by jobStatus: the filter does not support Dispatched, which an open job may show.
        raw = await self.api.all("jpm", "jobs", {"customerId": customer_id})
        return await self.jobs.views([j for j in raw if str(j["locationId"]) == place_id
                                      and j.get("jobStatus") not in ("Completed", "Canceled")], notes=False)

    async def _find_raw(self, customer_id: str, key: str, since: datetime) -> Json | None:
        """The job booked under this key since `since`, if any. The application GUID makes each job show our
        externalData; it does not filter, so the customer's jobs created since then are searched for the key."""
        for job in await self.api.all("jpm", "jobs", {"customerId": customer_id, "externalDataApplicationGuid": self.guid,
                                                      "createdOnOrAfter": mapping.stamp(since)}):
            if any(e.get("key") == KEY and e.get("value") == key for e in job.get("externalData") or []):
                return job
        return None

    async def job_by_key(self, customer_id: str, place_id: str, request: BookingRequest, key: str,
                         since: datetime) -> Job | None:
        raw = await self._find_raw(customer_id, key, since)
        return (await self.jobs.views([raw], notes=False))[0] if raw else None
