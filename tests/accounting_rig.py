"""The accounting fakes served over real loopback HTTP, a store with completed and invoiced jobs, and a
business's sink over them: what the accounting tests and the benchmark share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx2 as httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from starlette.applications import Starlette

from fsm_mcp.accounting import open_sink
from fsm_mcp.accounting.oauth import Sealer, store_answer
from fsm_mcp.accounting.settings import AccountingSettings
from fsm_mcp.accounting.sink import Sink
from fsm_mcp.accounting.webhooks import routes
from fsm_mcp.connectors.http.lanes import Lanes
from fsm_mcp.connectors.local import invoices
from fsm_mcp.directory.customers import insert_customer, insert_location
from fsm_mcp.identity.phones import parse_phone
from fsm_mcp.inputs import AddressIn, LineItemIn
from fsm_mcp.store import Store
from fsm_mcp.store.db import new_id, to_db
from tests.fakes import quickbooks as qbo
from tests.fakes import xero
from tests.fakes.chaos import Chaos
from tests.fakes.serve import serving

TENANT = "default"
KEY = Fernet.generate_key().decode()


def fake_of(provider: str, chaos: Chaos | None = None, **limits: Any) -> Any:
    return qbo.FakeQuickBooks(chaos, **limits) if provider == "quickbooks" else xero.FakeXero(chaos, **limits)


def settings_for(provider: str, base: str, **changes: Any) -> AccountingSettings:
    if provider == "quickbooks":
        values: dict[str, Any] = {"client_id": qbo.CLIENT_ID, "client_secret": qbo.CLIENT_SECRET, "company": qbo.REALM,
                                  "webhook_key": qbo.VERIFIER_TOKEN, "token_url": base + qbo.TOKEN_PATH}
    else:
        values = {"client_id": xero.CLIENT_ID, "client_secret": xero.CLIENT_SECRET, "company": xero.TENANT,
                  "webhook_key": xero.WEBHOOK_KEY, "token_url": base + xero.TOKEN_PATH}
    return AccountingSettings.model_validate({"provider": provider, "api_url": base, "token_key": KEY, **values,
                                              **changes})


def serve_env(provider: str, base: str, env: dict[str, str], **more: str) -> dict[str, str]:
    """`env` with the business's books (the fake at `base`) set as an administrator sets them for `fsm-mcp serve`."""
    fake = qbo if provider == "quickbooks" else xero
    company = qbo.REALM if provider == "quickbooks" else xero.TENANT
    webhook = qbo.VERIFIER_TOKEN if provider == "quickbooks" else xero.WEBHOOK_KEY
    given = {"PROVIDER": provider, "CLIENT_ID": fake.CLIENT_ID, "CLIENT_SECRET": fake.CLIENT_SECRET, "TOKEN_KEY": KEY,
             "WEBHOOK_KEY": webhook, "COMPANY": company, "API_URL": base, "TOKEN_URL": base + fake.TOKEN_PATH,
             **{k.upper(): v for k, v in more.items()}}
    return {**env, **{f"FSM_MCP_ACCOUNTING_{k}": v for k, v in given.items()}}


def invoiced_job(db: Store, name: str, phone: str | None = None, email: str | None = None,
                 lines: tuple[tuple[str, str, str], ...] = (("Furnace repair", "2", "95.00"), ("Flame sensor", "1", "38.50")),
                 tax_rate: str = "0.0825", discount: str = "0", customer_id: str | None = None) -> str:
    """A customer (unless given), a completed job for them and its invoice, in our store; the invoice's id."""

    def write(conn: Any) -> str:
        now = db.clock.now()
        cid = customer_id or insert_customer(conn, TENANT, now, name=name, phones=[parse_phone(phone)] if phone else [],
                                             emails=[email] if email else [])
        if customer_id is None:
            insert_location(conn, TENANT, cid, AddressIn(street="12 Oak St", city="Springfield", state="IL",
                                                        postal_code="62701"), now)
        job = new_id("job")
        conn.execute(
            "INSERT INTO jobs (tenant_id, id, customer_id, location_id, job_type, skill, summary, priority, window_start, "
            "window_end, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (TENANT, job, cid, None, "Furnace repair", "hvac", "Repair", "normal", to_db(now - timedelta(hours=3)),
             to_db(now - timedelta(hours=1)), "completed", to_db(now), to_db(now)))
        items = [LineItemIn(description=d, quantity=Decimal(q), unit_price=Decimal(p)) for d, q, p in lines]
        return invoices.create(conn, TENANT, job, items, Decimal(tax_rate), Decimal(discount), now).invoice.invoice_id

    return db.write(write)


@dataclass
class Books:
    """A fake vendor on a loopback port, a business's sink over it, and its webhook endpoint (in process)."""

    provider: str
    fake: Any
    base: str
    settings: AccountingSettings
    db: Store
    sinks: list[Sink] = field(default_factory=list)

    def sink(self, lanes: Lanes | None = None, **changes: Any) -> Sink:
        settings = self.settings.model_copy(update=changes) if changes else self.settings
        made = open_sink(self.db, TENANT, settings, lanes=lanes)
        self.sinks.append(made)
        return made

    async def connect(self) -> None:
        await store_answer(self.db, TENANT, self.provider, self.settings.company, Sealer(SecretStr(KEY)),
                           self.fake.connect())

    def webhooks(self, sink: Sink) -> httpx.AsyncClient:
        app = Starlette(routes=routes(lambda business, provider: sink if business == "acme" and
                                      provider == self.provider else None))
        return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app.test")

    @property
    def hook_url(self) -> str:
        return f"http://app.test/webhooks/{self.provider}/acme"

    # what the books hold
    def invoices(self) -> list[dict[str, Any]]:
        if self.provider == "quickbooks":
            return list(self.fake.company().tables["Invoice"].values())
        return list(self.fake.org().tables["Invoices"].values())

    def customers(self) -> list[dict[str, Any]]:
        if self.provider == "quickbooks":
            return list(self.fake.company().tables["Customer"].values())
        return list(self.fake.org().tables["Contacts"].values())

    def total(self, row: dict[str, Any]) -> Decimal:
        return Decimal(str(row["TotalAmt" if self.provider == "quickbooks" else "Total"])).quantize(Decimal("0.01"))

    def their_number(self, row: dict[str, Any]) -> str:
        return str(row["DocNumber" if self.provider == "quickbooks" else "InvoiceNumber"])

    def pay(self, their_id: str, amount: str | None = None) -> str:
        return str(self.fake.pay(their_id, amount))

    async def deliver(self, client: httpx.AsyncClient, **options: Any) -> list[Any]:
        if self.provider == "xero" and self.fake.endpoints.get(self.hook_url) != "OK":
            assert await self.fake.intent_to_receive(self.hook_url, client=client)
        return list(await self.fake.deliver(self.hook_url, client=client, **options))

    async def aclose(self) -> None:
        for made in self.sinks:
            await made.aclose()


@contextmanager
def books(provider: str, db: Store, chaos: Chaos | None = None, **limits: Any) -> Iterator[Books]:
    fake = fake_of(provider, chaos, **limits)
    with serving(fake.app) as base:
        yield Books(provider, fake, base, settings_for(provider, base), db)
