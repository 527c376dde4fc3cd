"""The books' lanes pace by the minute, as both vendors publish their limits (QuickBooks 500 a minute per
company, Xero 60): a minute's share of requests may go together, never more in any minute, and nothing is
sent inside a 429's hold."""

from __future__ import annotations

import random
import time
from itertools import pairwise

import anyio
import pytest

from fsm_mcp.accounting.http import GAP
from fsm_mcp.connectors.http.lanes import Held, LocalLanes, since
from fsm_mcp.connectors.http.limits import Pace
from fsm_mcp.store import Store
from tests.accounting_rig import books, invoiced_job
from tests.fakes.chaos import Chaos

pytestmark = pytest.mark.anyio


def test_a_pace_by_the_minute_lets_the_minutes_share_go_together_and_then_waits_for_the_window() -> None:
    now = [0.0]
    pace = Pace(1.0, lambda: now[0], window=60.0, gap=0.02)  # Xero: 60 a minute, 57 after the margin
    waits = [pace.reserve() for _ in range(58)]
    assert waits[:57] == pytest.approx([0.02 * i for i in range(57)])  # together, a gap apart
    assert waits[57] == pytest.approx(60.0)  # the 58th when the first has left the minute


def test_a_pace_by_the_minute_never_allows_more_than_its_share_in_any_minute() -> None:
    now, rng = [0.0], random.Random(4)
    sent: list[float] = []
    waiting: list[float] = []  # the slots of callers asleep to them
    pace = Pace(500 / 60, lambda: now[0], window=60.0, gap=0.02)  # QuickBooks: 475 after the margin
    for _ in range(3000):
        now[0] += rng.expovariate(12.0)  # asked for faster than the limit
        sent += [s for s in waiting if s <= now[0]]
        waiting = [s for s in waiting if s > now[0]] + [now[0] + pace.reserve()]
        if rng.random() < 0.01:  # a hold now and then: those still waiting take new places (as a lane's do)
            pace.restart(now[0] + 1.0)
            waiting = [now[0] + pace.reserve() for _ in waiting]
    sent = sorted(sent + waiting)
    busiest = max(sum(1 for u in sent[i:i + 500] if u < t + 60.0) for i, t in enumerate(sent))
    assert busiest == 475
    assert min(b - a for a, b in pairwise(sent)) >= 0.02 - 1e-9


def test_a_hold_voids_the_slots_still_to_come_and_keeps_those_sent_in_the_window() -> None:
    now = [0.0]
    pace = Pace(1.0, lambda: now[0], window=60.0, gap=0.1)
    assert [pace.reserve() for _ in range(57)][-1] == pytest.approx(5.6)  # the minute's 57, 0.1 s apart
    now[0] = 0.55  # six of them sent, and a 429 says to wait a second
    pace.restart(1.55)
    again = [pace.reserve() for _ in range(51)]  # the 51 voided take new places from the hold's end
    assert again[0] == pytest.approx(1.0) and again[-1] == pytest.approx(6.0)
    assert pace.reserve() == pytest.approx(59.45)  # the six sent still count: the next when the first leaves


def test_evenly_spaced_by_default_as_the_field_service_vendors_need() -> None:
    now = [0.0]
    pace = Pace(100, lambda: now[0])
    assert [pace.reserve() for _ in range(3)] == pytest.approx([0.0, 1 / 95, 2 / 95])


async def test_an_ordered_lane_lets_the_oldest_work_go_first_after_a_hold_and_a_cancelled_waiter_stops_none() -> None:
    lane = LocalLanes().lane("Books", "realm", 1000, window=60.0, ordered=True)
    await lane.hold(0.3)
    went: list[float] = []

    async def request(began: float) -> None:
        since.set(began)
        await lane.turn()
        went.append(began)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for began in (5.0, 3.0, 4.0, 1.0, 2.0):
                tg.start_soon(request, began)
            async with anyio.create_task_group() as gone:
                gone.start_soon(request, 0.0)  # the oldest of all, given up while it waits
                await anyio.sleep(0.1)
                gone.cancel_scope.cancel()
            with pytest.raises(Held):  # a caller whose budget ends inside the hold is told at once
                await lane.turn(deadline=anyio.current_time() + 0.05)
    assert went == [1.0, 2.0, 3.0, 4.0, 5.0]


async def test_an_ordered_lane_sends_the_next_request_when_the_answer_is_in_or_an_even_slot_later() -> None:
    lane = LocalLanes().lane("Books", "org", 1.0, window=60.0, ordered=True)  # Xero: an even slot is 1.05 s
    await lane.turn()  # sent; its answer not in yet

    async def answer_soon() -> None:
        await anyio.sleep(0.1)
        lane.got_answer()

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(answer_soon)
        await lane.turn()
    assert 0.09 <= time.monotonic() - started < 0.6  # when the answer came
    await lane.turn()  # the second's answer never comes: the third goes a slot after it
    assert 1.0 <= time.monotonic() - started - 0.1 < 1.6


@pytest.mark.parametrize("provider", ["quickbooks", "xero"])
async def test_the_books_send_a_queue_together_at_the_published_minute_and_nothing_inside_a_hold(
        provider: str, db: Store) -> None:
    ids = [invoiced_job(db, f"Noor Haddad{n}", f"(217) 555-06{n:02d}") for n in range(6)]
    with books(provider, db, Chaos(p429=0.25, retry_after="1", seed=5)) as rig:  # the published limits
        await rig.connect()
        sink = rig.sink()
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for invoice_id in ids:
                    tg.start_soon(sink.post_invoice, invoice_id)
        await rig.aclose()
    assert len(rig.invoices()) == 6
    assert rig.fake.door.count_429 > 0 and rig.fake.door.inside_hold == 0, rig.fake.door.too_early[:3]
    times = sorted(e.at for e in rig.fake.door.log)
    # Evenly spaced at the rate, Xero's requests would be 1.05 s apart and QuickBooks' 0.126 s: here requests that
    # queued go a gap apart.
    assert min(b - a for a, b in pairwise(times)) < 0.1
    assert sum(1 for a, b in pairwise(times) if b - a < GAP * 3) >= 3
