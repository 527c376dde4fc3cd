import itertools
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from fsm_mcp.billing import Line, totals
from fsm_mcp.errors import InvalidInput, InvalidTransition
from fsm_mcp.models import JobStatus as S
from fsm_mcp.scheduling import check_transition, check_window, free_slots
from fsm_mcp.settings import Business
from tests.when import MONDAY, ZONE, local

NOW = local(MONDAY - timedelta(days=7), 10)  # a week before the days these tests book


def test_money_rounds_half_up_to_cents() -> None:
    sums = totals([Line("Labor", "labor", Decimal("1.5"), Decimal("33.33"))], Decimal("0.0825"), Decimal("0"))
    assert sums.subtotal == Decimal("50.00")  # 49.995 rounds up
    assert sums.tax == Decimal("4.13")  # 4.125 rounds up
    assert sums.total == Decimal("54.13")


def test_tax_is_charged_after_the_discount() -> None:
    sums = totals([Line("Visit", "service", Decimal("1"), Decimal("200"))], Decimal("0.10"), Decimal("50"))
    assert (sums.subtotal, sums.discount, sums.tax, sums.total) == (
        Decimal("200.00"), Decimal("50.00"), Decimal("15.00"), Decimal("165.00"))


@pytest.mark.parametrize(
    ("line", "discount", "field"),
    [
        (Line("x", "labor", Decimal("-1"), Decimal("10")), Decimal("0"), "line_items[0].quantity"),
        (Line("x", "labor", Decimal("1"), Decimal("-10")), Decimal("0"), "line_items[0].unit_price"),
        (Line("x", "labor", Decimal("1"), Decimal("10")), Decimal("11"), "discount"),
    ],
)
def test_bad_invoice_figures_name_their_field(line: Line, discount: Decimal, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        totals([line], Decimal("0"), discount)
    assert caught.value.field == field


def test_the_happy_path_of_a_job_is_allowed() -> None:
    path = [S.scheduled, S.dispatched, S.en_route, S.arrived, S.working, S.completed]
    for current, new in itertools.pairwise(path):
        check_transition(current, new)


@pytest.mark.parametrize(("current", "new"), [(S.completed, S.working), (S.canceled, S.scheduled), (S.scheduled, S.completed)])
def test_senseless_moves_are_refused(current: S, new: S) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, new)


def test_a_naive_window_is_read_in_the_business_zone() -> None:
    business = Business(timezone="America/Chicago")
    start, _ = check_window(local(MONDAY, 9).replace(tzinfo=None), local(MONDAY, 11).replace(tzinfo=None), business, NOW)
    assert start == local(MONDAY, 9)


def test_a_window_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_window(local(MONDAY, 11), local(MONDAY, 9), Business(), NOW)
    assert caught.value.field == "window_end"


def test_free_slots_respect_working_hours_and_bookings() -> None:
    business = Business(timezone="UTC", working_hours={"mon": (time(8), time(12))})
    eight = datetime.combine(MONDAY, time(8), UTC)
    busy = {"t1": [(eight, eight + timedelta(hours=2))]}
    slots = free_slots(business, MONDAY, MONDAY + timedelta(days=1), timedelta(hours=2), ["t1", "t2"], busy, NOW)
    assert [(s.start.hour, s.technician_ids) for s in slots] == [(8, ("t2",)), (10, ("t1", "t2"))]


def test_a_window_that_has_passed_is_refused_saying_what_time_it_is() -> None:
    business = Business(timezone="America/Chicago")
    with pytest.raises(InvalidInput) as caught:
        check_window(NOW - timedelta(hours=3), NOW - timedelta(hours=1), business, NOW)
    assert caught.value.field == "window_start"
    assert f"it is now 10:00 on {NOW:%a %b %d} in America/Chicago" in str(caught.value)


def test_a_window_already_begun_may_still_be_booked() -> None:
    start, end = check_window(NOW - timedelta(hours=1), NOW + timedelta(hours=1), Business(timezone="America/Chicago"), NOW)
    assert start < NOW < end


def test_a_slot_search_past_the_booking_horizon_is_refused() -> None:
    far = NOW.date() + timedelta(days=6 * 365)
    with pytest.raises(InvalidInput) as caught:
        free_slots(Business(), far, far, timedelta(hours=2), ["t1"], {}, NOW)
    assert caught.value.field == "date_from"


def test_slots_already_past_today_are_not_offered() -> None:
    business = Business(timezone="America/Chicago", working_hours={d: (time(8), time(17)) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    slots = free_slots(business, NOW.date(), NOW.date(), timedelta(hours=2), ["t1"], {}, NOW)
    assert slots and all(s.start >= NOW for s in slots)
    assert slots[0].start.astimezone(ZONE).hour == 10
