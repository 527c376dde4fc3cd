"""Vendor job changes: a job moved in the vendor's own app is seen by the poll, over real loopback HTTP to the
fake, and recorded in the outbox once, however often, late or out of order it is seen."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from fsm_mcp.connectors.servicetitan.backend import ServiceTitanBackend
from fsm_mcp.events import outbox, vendor_jobs
from fsm_mcp.settings import Settings
from fsm_mcp.store import Store, open_store
from tests import stores
from tests.fakes.serve import serving
from tests.fakes.servicetitan import FakeServiceTitan
from tests.st_rig import BUSINESS, st_settings
from tests.vendor_rig import st_complete, st_job

pytestmark = pytest.mark.anyio


@pytest.fixture
def st() -> Iterator[tuple[FakeServiceTitan, str, str]]:
    """The fake ServiceTitan on a loopback port: (fake, its URL, a technician's id)."""
    fake = FakeServiceTitan()
    tech = str(fake.add_technician("Dana Reyes", "HVAC; plumbing"))
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=["(217) 555-0143"])
    with serving(fake.app) as url:
        yield fake, url, tech


@pytest.fixture
async def backend(st: tuple[FakeServiceTitan, str, str], tmp_path: Any, store_kind: str
                  ) -> AsyncIterator[ServiceTitanBackend]:
    _, url, _ = st
    settings = Settings(db_path=stores.target(store_kind, tmp_path, "st.db"), business=BUSINESS, backend="servicetitan",
                        servicetitan=st_settings(api_url=url, auth_url=url))
    db = open_store(settings.db_path)
    assert settings.servicetitan is not None
    one = ServiceTitanBackend.open(db, settings.business, settings.servicetitan)
    try:
        yield one
    finally:
        await one.aclose()
        db.close()


async def events_of(db: Store, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    page = await outbox.read(db, BUSINESS.tenant_id, None, limit=500)
    return [(e.type, e.data) for e in page.events if e.subject_id == job_id]


async def test_a_job_completed_in_servicetitan_is_seen_once_by_the_poll(st: Any, backend: ServiceTitanBackend) -> None:
    fake, _, tech = st
    assert backend.changes is not None
    await backend.changes.run()  # the poll was watching before the job was made
    job_id = st_job(fake, tech)
    await backend.changes.run()
    st_complete(fake, job_id)
    await backend.changes.run()
    await backend.changes.run()  # the same change read again, in the overlap of the next window
    types = [t for t, _ in await events_of(backend.db, job_id)]
    assert types == ["job.created", "technician.assigned", "job.completed"]
    completed = (await events_of(backend.db, job_id))[-1][1]
    assert completed["previous_status"] == "dispatched" and completed["technician_ids"] == [tech]


async def test_a_change_seen_twice_or_out_of_order_has_one_effect(st: Any, backend: ServiceTitanBackend) -> None:
    fake, _, tech = st
    assert backend.changes is not None
    job_id = st_job(fake, tech)
    before = await backend.changes.feed.sighting(job_id)
    st_complete(fake, job_id)
    after = await backend.changes.feed.sighting(job_id)
    assert before is not None and after is not None and after.modified > before.modified
    tenant = BUSINESS.tenant_id
    await vendor_jobs.apply(backend.db, tenant, [after])
    await vendor_jobs.apply(backend.db, tenant, [after])  # a repeat
    await vendor_jobs.apply(backend.db, tenant, [before])  # late: older than what was applied
    await backend.changes.hint(job_id)  # a webhook read of the same version
    types = [t for t, _ in await events_of(backend.db, job_id)]
    assert types == ["job.created", "technician.assigned", "job.completed"]


async def test_the_poll_resumes_from_its_cursor_and_skips_nothing_committed_late(st: Any, backend: ServiceTitanBackend
                                                                                  ) -> None:
    fake, _, tech = st
    assert backend.changes is not None
    await backend.changes.run()
    first, second = st_job(fake, tech), st_job(fake, tech, hour=13)
    st_complete(fake, first)
    await backend.changes.run()
    # The second job's completion is committed with a time a little before the newest one already read (a late
    # commit): the window's overlap reads it all the same.
    st_complete(fake, second)
    late = fake.jobs[int(first)]["modifiedOn"]
    fake.jobs[int(second)]["modifiedOn"] = late
    reopened = ServiceTitanBackend.open(backend.db, backend.business, backend.api.settings)  # a restart: from the store
    try:
        assert reopened.changes is not None
        await reopened.changes.run()
    finally:
        await reopened.aclose()
    for job_id in (first, second):
        assert [t for t, _ in await events_of(backend.db, job_id)].count("job.completed") == 1


async def test_the_same_state_read_at_a_newer_time_records_nothing(st: Any, backend: ServiceTitanBackend) -> None:
    fake, _, tech = st
    assert backend.changes is not None
    job_id = st_job(fake, tech)
    seen = await backend.changes.feed.sighting(job_id)
    assert seen is not None
    await vendor_jobs.apply(backend.db, BUSINESS.tenant_id, [seen])
    touched = replace(seen, modified=seen.modified + timedelta(seconds=5))  # a note added: nothing that counts moved
    assert await vendor_jobs.apply(backend.db, BUSINESS.tenant_id, [touched]) == (0, [])


async def test_the_background_loop_polls_job_changes_under_the_sync_lease(st: Any, backend: ServiceTitanBackend) -> None:
    from fsm_mcp.connectors import sync_if_ours, sync_lease

    fake, _, tech = st
    lease = sync_lease(backend, 60)
    await sync_if_ours(backend, lease)
    job_id = st_job(fake, tech)
    st_complete(fake, job_id)
    await sync_if_ours(backend, lease)
    assert [t for t, _ in await events_of(backend.db, job_id)][-1] == "job.completed"


@pytest.fixture
async def fp(tmp_path: Any, store_kind: str) -> AsyncIterator[Any]:
    """The fake FieldPulse with a technician and a customer, served, and a FieldPulse backend over it."""
    from fsm_mcp.connectors.fieldpulse.backend import FieldPulseBackend
    from tests.fakes.fieldpulse import FakeFieldPulse
    from tests.fakes.fieldpulse import connector_settings as fp_connector

    fake = FakeFieldPulse()
    tech = str(fake.add_technician("Dana Reyes"))
    fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=("(217) 555-0143",))
    db = open_store(stores.target(store_kind, tmp_path, "fp.db"))
    with serving(fake.app) as url:
        backend = FieldPulseBackend.open(db, BUSINESS, fp_connector(url))
        try:
            assert backend.changes is not None
            yield fake, tech, backend
        finally:
            await backend.aclose()
            db.close()


async def test_a_job_completed_in_fieldpulse_is_seen_once_by_the_poll(fp: Any) -> None:
    from tests.vendor_rig import fp_complete, fp_job

    fake, tech, backend = fp
    await backend.changes.run()
    job_id = fp_job(fake, tech)
    await backend.changes.run()
    fp_complete(fake, job_id)
    for _ in range(2):
        await backend.changes.run()
    assert [t for t, _ in await events_of(backend.db, job_id)] == ["job.created", "technician.assigned", "job.completed"]


async def test_fieldpulse_changes_spanning_pages_are_all_read_with_the_pages_side_by_side(fp: Any) -> None:
    from tests.vendor_rig import fp_complete, fp_job

    fake, tech, backend = fp
    await backend.changes.run()
    jobs = [fp_job(fake, tech) for _ in range(230)]  # three pages of 100
    await backend.changes.run()
    for job_id in jobs:
        fp_complete(fake, job_id)
    asked = len(fake.door.log)
    await backend.changes.run()
    lists = [x for x in fake.door.log[asked:] if x.method == "GET" and x.path == "/jobs"]
    pages = sorted(int(x.query["page"]) for x in lists)
    assert pages[:3] == [1, 2, 3] and len(pages) <= 3 + 3  # asked ahead, at most three past the short last page
    completed, cursor = set(), None
    while True:  # more events than one page of the feed
        page = await outbox.read(backend.db, BUSINESS.tenant_id, cursor, limit=500)
        completed |= {e.subject_id for e in page.events if e.type == "job.completed"}
        cursor = page.cursor
        if not page.more:
            break
    assert completed == set(jobs)


async def test_a_job_completed_in_housecall_pro_is_seen_once_by_the_poll(tmp_path: Any, store_kind: str) -> None:
    from fsm_mcp.connectors.housecallpro.backend import HousecallProBackend
    from tests.fakes.housecallpro import connector_settings as hcp_connector
    from tests.hcp_rig import seeded

    fake, tech = seeded()
    company = fake.company
    customer = next(iter(company.customers))
    address = next(a for a, row in company.addresses.items() if row["customer_id"] == customer)
    db = open_store(stores.target(store_kind, tmp_path, "hcp.db"))
    with serving(fake.app) as url:
        backend = HousecallProBackend.open(db, BUSINESS, hcp_connector(url))
        try:
            assert backend.changes is not None
            await backend.changes.run()
            job_id = str(company.create_job({"customer_id": customer, "address_id": address,
                                             "assigned_employee_ids": [tech]})["id"])
            await backend.changes.run()
            fake.complete(job_id)
            for _ in range(2):
                await backend.changes.run()
            types = [t for t, _ in await events_of(db, job_id)]
            assert types[0] == "job.created" and types.count("job.completed") == 1 and types[-1] == "job.completed"
        finally:
            await backend.aclose()
            db.close()


async def test_a_status_fsm_mcp_noted_on_the_job_is_not_undone_by_the_poll(st: Any, backend: ServiceTitanBackend) -> None:
    from fsm_mcp.events.changes import job_changed
    from fsm_mcp.models import JobStatus

    fake, _, tech = st
    assert backend.changes is not None
    await backend.changes.run()
    job_id = st_job(fake, tech)
    await backend.changes.run()
    moved = await backend.update_job_status(job_id, JobStatus.en_route, None)  # a note at ServiceTitan
    await job_changed(backend.db, BUSINESS.tenant_id, moved)  # what the status service records after it
    await backend.changes.run()
    st_complete(fake, job_id)
    await backend.changes.run()
    changes = await events_of(backend.db, job_id)
    assert [t for t, _ in changes] == ["job.created", "technician.assigned", "job.status_changed", "job.completed"]
    assert changes[-1][1]["previous_status"] == "en_route"


async def test_a_read_that_began_before_fsm_mcp_changed_the_job_is_read_again_not_applied(
        st: Any, backend: ServiceTitanBackend) -> None:
    from fsm_mcp.events.changes import job_changed
    from fsm_mcp.models import JobStatus

    fake, _, tech = st
    assert backend.changes is not None
    job_id = st_job(fake, tech)
    old = await backend.changes.feed.sighting(job_id)  # read while an agent moves the job
    moved = await backend.update_job_status(job_id, JobStatus.en_route, None)
    await job_changed(backend.db, BUSINESS.tenant_id, moved)
    assert old is not None
    assert await vendor_jobs.apply(backend.db, BUSINESS.tenant_id, [old]) == (0, [job_id])
    assert [t for t, _ in await events_of(backend.db, job_id)][-1] == "job.status_changed"  # en route stands
