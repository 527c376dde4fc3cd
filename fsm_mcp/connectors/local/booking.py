"""The booking path's steps on the embedded store. Every step writes in the caller's
transaction (`LocalBackend.create_job` opens one), so the directory's choice of customer,
the duplicate check and the new job stand or fall together. A local job needs no key of its
own: the idempotency record commits with it, so a cut-off call left nothing to read back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fsm_mcp.connectors.booking import Added
from fsm_mcp.connectors.local import jobs as local_jobs
from fsm_mcp.directory import booking as directory
from fsm_mcp.directory import customers
from fsm_mcp.identity.contacts import CallerPerson
from fsm_mcp.identity.phones import parse_phone
from fsm_mcp.inputs import AddressIn, BookingRequest
from fsm_mcp.models import Customer, Job
from fsm_mcp.settings import Business
from fsm_mcp.store import Store, contacts, jobs
from fsm_mcp.store.idempotency import Attempt


class LocalSteps:
    def __init__(self, db: Store, business: Business) -> None:
        self.db, self.business, self.tenant = db, business, business.tenant_id

    async def before(self, request: BookingRequest) -> None:
        return None  # the local store takes any job type

    async def new_customer(self, request: BookingRequest, attempt: Attempt, now: datetime) -> tuple[str, str]:
        return await self.db.awrite(self._new_customer, request, now)

    def _new_customer(self, conn: Any, request: BookingRequest, now: datetime) -> tuple[str, str]:
        details, address = request.customer, request.address
        assert details is not None and address is not None
        phone = parse_phone(details.phone, self.business.country) if details.phone else None
        _, emails = directory.caller_contacts(self.business, request)
        customer_id = customers.insert_customer(conn, self.tenant, now, name=details.name,
                                                phones=[phone] if phone else [], emails=sorted(emails))
        place_id = customers.insert_location(conn, self.tenant, customer_id, address, now)
        customers.reindex(conn, self.tenant, [customer_id])
        return customer_id, place_id

    async def new_place(self, customer: Customer, address: AddressIn, now: datetime) -> str:
        def insert(conn: Any) -> str:
            place_id = customers.insert_location(conn, self.tenant, customer.customer_id, address, now)
            customers.reindex(conn, self.tenant, [customer.customer_id])
            return place_id

        return await self.db.awrite(insert)

    async def add_contacts(self, customer: Customer, phones: list[str], emails: list[str], now: datetime,
                           person: CallerPerson | None = None) -> Added:
        def insert(conn: Any) -> Added:
            added = None
            if person is not None and person.status == "new":  # the caller is a new person of this account
                added = contacts.add_contact(conn, self.tenant, customer.customer_id, person.name, None, now)
            owner = added or (person.contact_id if person else None)  # None: the account's, nobody's in particular
            contacts.give(conn, self.tenant, customer.customer_id, owner, phones, emails)
            customers.reindex(conn, self.tenant, [customer.customer_id])
            return [*phones, *emails], added

        return await self.db.awrite(insert)

    async def open_jobs(self, customer_id: str, place_id: str, request: BookingRequest) -> list[Job]:
        start, end = request.window
        return await self.db.aread(jobs.overlapping_at_place, self.tenant, customer_id, place_id, start, end)

    async def job_by_key(self, customer_id: str, place_id: str, request: BookingRequest, key: str,
                         since: datetime) -> Job | None:
        return None  # never resumed: see the module's docstring

    async def create_job(self, customer_id: str, place_id: str, request: BookingRequest, key: str | None,
                         now: datetime) -> Job:
        def insert(conn: Any) -> Job:
            job_id = jobs.insert_job(conn, self.tenant, customer_id, place_id, request.job_type.strip(),
                                     self.business.skill_for(request.job_type), request.summary.strip(),
                                     request.priority, request.window, now)
            return jobs.load_job(conn, self.tenant, job_id)

        return await self.db.awrite(insert)

    async def dispatch(self, job_id: str, technician_id: str, now: datetime) -> Job:
        return await self.db.awrite(local_jobs.dispatch, self.business, job_id, technician_id, None, now)
