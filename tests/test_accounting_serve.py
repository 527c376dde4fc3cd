"""`fsm-mcp serve` keeps the books: a real server process over loopback HTTP, its accounting worker posting what
the tools invoice to the fake QuickBooks, and the books' signed webhook served by its HTTP app."""

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest

from fsm_mcp.accounting.settings import load
from fsm_mcp.connectors.local import technicians
from fsm_mcp.store import open_store
from tests.accounting_rig import KEY, TENANT, books, serve_env
from tests.conftest import MONDAY_9, NEW_CALLER, call
from tests.fakes import quickbooks as qbo
from tests.http_rig import ENV, client, serving

pytestmark = pytest.mark.anyio
LINES = [{"description": "Diagnostic", "quantity": "1", "unit_price": "89.00", "kind": "service"},
         {"description": "Labor", "quantity": "1.5", "unit_price": "110.00", "kind": "labor"}]


async def completed_and_invoiced(session: Any, tech: str) -> dict[str, Any]:
    job = await call(session, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                     idempotency_key="serve-books-1", **MONDAY_9)
    await call(session, "dispatch_technician", job_id=job["job_id"], technician_id=tech)
    for status in ("en_route", "arrived", "working", "completed"):
        await call(session, "update_job_status", job_id=job["job_id"], status=status)
    return await call(session, "create_invoice", job_id=job["job_id"], line_items=LINES, tax_rate="0.0825",
                      idempotency_key="serve-books-inv")


async def test_serve_posts_a_tools_invoice_to_the_books_and_their_signed_webhook_pays_it(tmp_path: Path) -> None:
    path = tmp_path / "served.db"
    db = open_store(path)
    tech = db.write(lambda conn: technicians.insert(conn, TENANT, "Maria Lopez", ["hvac"]))
    with books("quickbooks", db) as rig:
        await rig.connect()  # the administrator's `fsm-mcp accounting connect`, done before serving
        db.close()
        with serving(path, "--no-auth", env=serve_env("quickbooks", rig.base, ENV)) as base, anyio.fail_after(90):
            async with client(base, None) as session:
                invoice = await completed_and_invoiced(session, tech)
                while not rig.invoices():  # the served worker posts it within a round or two
                    await anyio.sleep(0.2)
                [row] = rig.invoices()
                assert row["DocNumber"] == invoice["invoice_id"].removeprefix("inv_")
                assert rig.total(row) == Decimal(invoice["total"])
                [customer] = rig.customers()
                assert customer["DisplayName"] == "Maria Garcia"

                rig.pay(str(row["Id"]), "50.00")  # part paid in QuickBooks, announced by Intuit's signed webhook
                async with httpx.AsyncClient(timeout=30) as http:
                    [delivery] = await rig.fake.deliver(f"{base}/webhooks/quickbooks/{TENANT}", client=http)
                    assert delivery.status == 200
                    [forged] = await rig.fake.deliver(f"{base}/webhooks/quickbooks/{TENANT}", client=http,
                                                      changes=[(qbo.REALM, c) for c in rig.fake.companies[qbo.REALM].changes[-1:]],
                                                      wrong_signature=True)
                    assert forged.status == 401
                found = await call(session, "lookup_customer", phone=NEW_CALLER["phone"])
                assert Decimal(found["customer"]["open_balance"]) == Decimal(invoice["total"]) - 50


def test_the_readmes_books_table_is_what_the_settings_read(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[accounting]" in b]
    env = {"FSM_MCP_ACCOUNTING_CLIENT_SECRET": "s", "FSM_MCP_ACCOUNTING_WEBHOOK_KEY": "w",
           "FSM_MCP_ACCOUNTING_TOKEN_KEY": KEY}
    books_settings = load(tomllib.loads(block)["accounting"], env)
    assert books_settings is not None and books_settings.provider == "quickbooks" and books_settings.email_invoices
    assert (books_settings.per_minute, books_settings.at_once) == (500, 10)
    assert books_settings.company == "9341453050000001"
