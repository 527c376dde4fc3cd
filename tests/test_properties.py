"""Property-based tests: any arguments at all get an answer or a plain tool error and leave the
server serving; and whatever sequence of calls an agent makes, the store keeps its invariants
(no orphan jobs, invoice totals equal their lines, no technician booked twice at once)."""

import tempfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from fsm_mcp.connectors.local import technicians
from fsm_mcp.server import build_server
from fsm_mcp.settings import Settings
from fsm_mcp.store.db import Database
from tests import stores
from tests.conftest import BUSINESS
from tests.test_bad_input import LIBRARY_TALK
from tests.when import MONDAY, at, day, window

TOOLS = {t.name: t.parameters for t in build_server(Settings(db_path=Path(":memory:")))._tool_manager.list_tools()}
SCALARS = (st.none() | st.booleans() | st.integers(-(10**15), 10**15) | st.floats(allow_nan=False)
           | st.text(max_size=40) | st.sampled_from([at(MONDAY, 9), MONDAY.isoformat(), "hvac", "+13125550188",
                                                    "job_x", "cus_x", "-1", "1e9", "0.5", "completed", "\u0000"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _server(db: Path) -> Settings:
    return Settings(db_path=db, business=BUSINESS)


@PROFILE
@given(data=st.data())
def test_any_arguments_get_a_result_or_a_plain_tool_error_and_the_server_goes_on(data: st.DataObject) -> None:
    tool = data.draw(st.sampled_from(sorted(TOOLS)))
    names = [*sorted(TOOLS[tool].get("properties", {})), "unexpected"]
    args = data.draw(st.dictionaries(st.sampled_from(names), VALUES, max_size=len(names)))

    async def body() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            async with Client(build_server(_server(Path(tmp) / "p.db"))) as client:
                result = await client.call_tool(tool, args)
                text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
                if result.is_error:
                    assert not any(talk in text for talk in LIBRARY_TALK), text
                    assert ": " in text, text  # names a field or says what went wrong
                ping = await client.call_tool("list_technicians", {})
                assert not ping.is_error

    anyio.run(body)


STATUSES = ["dispatched", "en_route", "arrived", "working", "completed", "on_hold", "scheduled"]
MONEY = st.decimals(min_value=Decimal("0"), max_value=Decimal("5000"), places=2, allow_nan=False)
LINE = st.fixed_dictionaries({"description": st.sampled_from(["Labor", "Filter", "Trip"]),
                              "kind": st.sampled_from(["labor", "material", "service"]),
                              "quantity": st.decimals(min_value=Decimal("0.25"), max_value=Decimal("40"), places=2),
                              "unit_price": MONEY}).map(lambda d: {k: str(v) for k, v in d.items()})
OPS = st.lists(st.one_of(
    st.tuples(st.just("book"), st.integers(0, 2), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("dispatch"), st.integers(0, 9), st.integers(0, 2), st.integers(0, 5)),
    st.tuples(st.just("status"), st.integers(0, 9), st.sampled_from(STATUSES)),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
    st.tuples(st.just("finish"), st.integers(0, 9), st.integers(0, 2)),
    st.tuples(st.just("invoice"), st.integers(0, 9), st.lists(LINE, min_size=1, max_size=3), MONEY,
              st.sampled_from(["0", "0.0825", "0.3"])),
), min_size=1, max_size=30)
CALLERS = [{"name": "Maria Garcia", "phone": "3125550188", "address": "410 Maple Dr, Springfield, IL 62704"},
           {"name": "Bill Jenkins", "phone": "2175550143", "address": "123 Oak St, Springfield, IL 62704"},
           {"name": "Ann Lee", "phone": "2175550999", "address": "9 Elm Ct, Springfield, IL 62704"}]


def _window(slot: int) -> dict[str, str]:
    return window(day(slot // 3), 8 + 3 * (slot % 3))


async def _play(client: Client, ops: list[tuple[Any, ...]], techs: list[str]) -> None:
    jobs: list[str] = []
    opening = [("book", 0, 0, False), ("book", 1, 1, False), ("finish", 0, 0),  # every run has work to do
               ("invoice", 0, [{"description": "Labor", "kind": "labor", "quantity": "1.5", "unit_price": "95.50"}],
                Decimal("10"), "0.0825")]
    for n, op in enumerate(opening + ops):
        pick = (lambda i: jobs[i % len(jobs)]) if jobs else None
        if op[0] == "book":
            result = await client.call_tool("create_job", {"customer": CALLERS[op[1]], "job_type": "hvac",
                                            "summary": "x", "idempotency_key": f"b{n}", "allow_duplicate": op[3],
                                            **_window(op[2])})
            if not result.is_error and result.structured_content:
                jobs.append(result.structured_content["job_id"])
        elif pick is None:
            continue
        elif op[0] == "dispatch":
            await client.call_tool("dispatch_technician", {"job_id": pick(op[1]), "technician_id": techs[op[2]],
                                                           **({} if op[3] == 0 else _window(op[3]))})
        elif op[0] == "status":
            await client.call_tool("update_job_status", {"job_id": pick(op[1]), "status": op[2]})
        elif op[0] == "cancel":
            first = await client.call_tool("cancel_job", {"job_id": pick(op[1])})
            token = (first.structured_content or {}).get("confirmation_token")
            if token:
                await client.call_tool("cancel_job", {"job_id": pick(op[1]), "confirmation_token": token})
        elif op[0] == "finish":  # the agent's usual path: dispatch, then on through the day to completed
            await client.call_tool("dispatch_technician", {"job_id": pick(op[1]), "technician_id": techs[op[2]]})
            for status in ("en_route", "arrived", "working", "completed"):
                await client.call_tool("update_job_status", {"job_id": pick(op[1]), "status": status})
        elif op[0] == "invoice":
            await client.call_tool("create_invoice", {"job_id": pick(op[1]), "idempotency_key": f"i{n}",
                                                      "line_items": op[2], "discount": str(op[3]), "tax_rate": op[4]})


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _check_invariants(db: Path) -> None:
    import json

    conn = stores.connect(db)
    try:
        orphans = conn.execute(
            "SELECT j.id FROM jobs j LEFT JOIN customers c ON c.tenant_id = j.tenant_id AND c.id = j.customer_id "
            "LEFT JOIN locations l ON l.tenant_id = j.tenant_id AND l.id = j.location_id "
            "WHERE c.id IS NULL OR (j.location_id IS NOT NULL AND (l.id IS NULL OR l.customer_id != j.customer_id))"
        ).fetchall()
        assert orphans == [], "jobs without their customer or place"
        for job_id, lines, subtotal, discount, tax_rate, tax, total, status in conn.execute(
            "SELECT i.job_id, i.lines, i.subtotal, i.discount, i.tax_rate, i.tax, i.total, j.status FROM invoices i "
            "JOIN jobs j ON j.tenant_id = i.tenant_id AND j.id = i.job_id"
        ):
            amounts = [_cents(Decimal(li["quantity"]) * Decimal(li["unit_price"])) for li in json.loads(lines)]
            assert Decimal(subtotal) == sum(amounts, Decimal("0.00")), job_id
            assert Decimal(tax) == _cents((Decimal(subtotal) - Decimal(discount)) * Decimal(tax_rate)), job_id
            assert Decimal(total) == Decimal(subtotal) - Decimal(discount) + Decimal(tax), job_id
            assert status == "completed", "an invoice for a job not completed"
        assert conn.execute("SELECT job_id FROM invoices GROUP BY job_id HAVING count(*) > 1").fetchall() == []
        clashes = conn.execute(
            "SELECT a.job_id, b.job_id FROM job_technicians a JOIN job_technicians b "
            "ON a.tenant_id = b.tenant_id AND a.technician_id = b.technician_id AND a.job_id < b.job_id "
            "JOIN jobs ja ON ja.tenant_id = a.tenant_id AND ja.id = a.job_id "
            "JOIN jobs jb ON jb.tenant_id = b.tenant_id AND jb.id = b.job_id "
            "WHERE ja.status IN ('scheduled','dispatched','en_route','arrived','working') "
            "AND jb.status IN ('scheduled','dispatched','en_route','arrived','working') "
            "AND ja.window_start < jb.window_end AND jb.window_start < ja.window_end"
        ).fetchall()
        assert clashes == [], "a technician booked on two jobs at once"
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


@PROFILE
@given(ops=OPS)
def test_whatever_an_agent_does_the_store_keeps_its_invariants(ops: list[tuple[Any, ...]]) -> None:
    async def body() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "inv.db"
            base = Database(db)
            techs = [base.write(lambda c, n=n: technicians.insert(c, BUSINESS.tenant_id, n, ["hvac"]))
                     for n in ("Ann", "Bo", "Cy")]
            base.close()
            async with Client(build_server(_server(db))) as client:
                await _play(client, ops, techs)
            _check_invariants(db)

    anyio.run(body)
