"""Invoices to the books exactly once, payments back: against the QuickBooks and Xero fakes over real
loopback HTTP (tests/accounting_rig.py)."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from fsm_mcp.accounting import feed
from fsm_mcp.accounting.oauth import Sealer
from fsm_mcp.accounting.settings import load, load_for
from fsm_mcp.accounting.sink import Sink
from fsm_mcp.accounting.webhooks import quickbooks_signed, xero_signed
from fsm_mcp.cli import main
from fsm_mcp.connectors.http.lanes import LocalLanes
from fsm_mcp.connectors.local import invoices
from fsm_mcp.connectors.vendor_settings import SettingsError
from fsm_mcp.errors import VendorUnavailable
from fsm_mcp.events import outbox
from fsm_mcp.models import Invoice
from fsm_mcp.settings import Settings
from fsm_mcp.store import Store, open_store
from fsm_mcp.store import accounting as sql
from tests.accounting_rig import KEY, TENANT, books, invoiced_job
from tests.fakes.chaos import Chaos
from tests.fakes.signed_hooks import sign

pytestmark = pytest.mark.anyio
PROVIDERS = ["quickbooks", "xero"]


def ours(db: Store, invoice_id: str) -> Invoice:
    return db.read(invoices.load, TENANT, invoice_id)


# ----- settings -----
def test_a_missing_setting_is_named_as_the_user_sets_it() -> None:
    with pytest.raises(SettingsError) as exc:
        load({"provider": "quickbooks", "company": "1"}, {"FSM_MCP_ACCOUNTING_TOKEN_KEY": KEY})
    said = str(exc.value)
    assert "FSM_MCP_ACCOUNTING_CLIENT_ID (or client_id in the [accounting] table) is missing" in said
    assert "FSM_MCP_ACCOUNTING_CLIENT_SECRET" in said and KEY not in said


def test_a_business_table_is_named_with_its_business(tmp_path: Path) -> None:
    config = tmp_path / "fsm.toml"
    config.write_text('[businesses.acme]\nname = "Acme"\n[businesses.acme.accounting]\nprovider = "xero"\n'
                      'client_id = "abc"\ncompany = "t-1"\n')
    with pytest.raises(SettingsError) as exc:
        load_for("acme", {"FSM_MCP_CONFIG": str(config), "FSM_MCP_ACME_ACCOUNTING_TOKEN_KEY": KEY})
    assert "FSM_MCP_ACME_ACCOUNTING_CLIENT_SECRET (or client_secret in the [businesses.acme.accounting] table)" \
        in str(exc.value)


def test_secrets_come_from_the_environment_or_a_file_never_the_table(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    got = load({"provider": "quickbooks", "client_id": "abc", "company": "1", "client_secret_file": str(secret)},
               {"FSM_MCP_ACCOUNTING_TOKEN_KEY": KEY})
    assert got is not None and got.client_secret.get_secret_value() == "s3cret" and got.per_minute == 500
    assert got.at_once == 10 and "s3cret" not in repr(got)
    with pytest.raises(SettingsError, match="client_secret may not be written in the file"):
        load({"provider": "xero", "client_secret": "x"}, {})
    assert load({}, {}) is None and load({"provider": "none"}, {}) is None


# ----- invoices out -----
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_invoice_reaches_the_books_once_with_its_lines_tax_and_job(provider: str, db: Store) -> None:
    invoice_id = invoiced_job(db, "Ann Lee", "(217) 555-0199", "ann@example.com", discount="10.00")
    with books(provider, db) as rig:
        await rig.connect()
        sink = rig.sink()
        first = await sink.post_invoice(invoice_id)
        again = await sink.post_invoice(invoice_id)
        await rig.aclose()
    assert (first.already, again.already, again.their_id) == (False, True, first.their_id)
    [row] = rig.invoices()
    invoice = ours(db, invoice_id)
    assert rig.total(row) == invoice.total == Decimal("236.53")  # (190 + 38.50 - 10) * 1.0825
    assert invoice.job_id in str(row.get("CustomerMemo") or row.get("Reference"))
    assert db.read(sql.linked, TENANT, "invoice", invoice_id, provider) == first.their_id
    assert db.read(sql.linked, TENANT, "customer", invoice.customer_id, provider) == first.customer_id


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_every_answer_lost_after_the_write_still_makes_one_invoice(provider: str, db: Store) -> None:
    invoice_id = invoiced_job(db, "Ann Lee", "(217) 555-0199")
    with books(provider, db, Chaos(p_lost=1.0)) as rig:
        await rig.connect()
        posted = await rig.sink().post_invoice(invoice_id)
        await rig.aclose()
    assert len(rig.invoices()) == 1 and len(rig.customers()) == 1
    assert rig.their_number(rig.invoices()[0]).endswith(invoice_id.removeprefix("inv_"))
    assert posted.their_id == str(rig.invoices()[0]["Id" if provider == "quickbooks" else "InvoiceID"])


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_throttling_and_failures_make_one_invoice_each_and_no_request_inside_a_hold(
        provider: str, db: Store) -> None:
    ids = [invoiced_job(db, f"Customer {n} Smith{n}", f"(217) 555-01{n:02d}") for n in range(6)]
    # Xero's 60 a minute would make this a minute long: both fake and sink allow 600 here (the pace is the lane's).
    with books(provider, db, Chaos(p429=0.25, p503=0.1, p_lost=0.1, retry_after="1"), per_minute=600) as rig:
        await rig.connect()
        sink = rig.sink(per_minute=600)
        async with anyio.create_task_group() as tg:
            for invoice_id in ids:
                tg.start_soon(_post_until_done, sink, invoice_id)
        await rig.aclose()
    numbers = [rig.their_number(r) for r in rig.invoices()]
    assert len(numbers) == len(set(numbers)) == 6
    assert rig.fake.door.count_429 > 0 and rig.fake.door.inside_hold == 0


async def _post_until_done(sink: Sink, invoice_id: str) -> None:
    for _ in range(10):
        try:
            await sink.post_invoice(invoice_id)
            return
        except VendorUnavailable:
            await anyio.sleep(0.5)
    raise AssertionError("never posted")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_bill_jenkins_is_the_books_william_jenkins_not_a_new_customer(provider: str, db: Store) -> None:
    invoice_id = invoiced_job(db, "Bill Jenkins", "(217) 555-0143")
    stranger = invoiced_job(db, "Bill Jenkins", "(312) 555-0999", "other@example.com")
    with books(provider, db) as rig:
        add = rig.fake.add_customer if provider == "quickbooks" else rig.fake.add_contact
        william = add("William Jenkins", phone="217-555-0143")
        await rig.connect()
        sink = rig.sink()
        posted = await sink.post_invoice(invoice_id)
        other = await sink.post_invoice(stranger)
        await rig.aclose()
    assert posted.customer_id == william
    assert other.customer_id != william  # a namesake with other contacts is someone else: made anew
    assert sorted(c.get("DisplayName") or c["Name"] for c in rig.customers()) == ["Bill Jenkins", "William Jenkins"]


# ----- tokens -----
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_expired_token_is_refreshed_once_across_replicas_and_the_rotated_one_kept(
        provider: str, db: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ids = [invoiced_job(db, f"Pat Doe{n}", f"(217) 555-02{n:02d}") for n in range(4)]
    with books(provider, db) as rig:
        await rig.connect()
        before = db.read(sql.load_grant, TENANT, provider)
        replicas = [rig.sink(), rig.sink()]  # two processes' sinks on one store
        await replicas[0].post_invoice(ids[0])
        later = timedelta(seconds=rig.fake.auth.access_ttl * 2)  # every access token has expired
        rig.fake.clock.advance(later)
        db.clock.advance(later)
        async with anyio.create_task_group() as tg:
            for n, invoice_id in enumerate(ids[1:]):
                tg.start_soon(replicas[n % 2].post_invoice, invoice_id)
        await rig.aclose()
    after = db.read(sql.load_grant, TENANT, provider)
    assert rig.fake.auth.refreshes == 1 and rig.fake.auth.dead_refresh_uses == 0
    assert after.version == before.version + 1
    sealer = Sealer(rig.settings.token_key)
    live = sealer.open(after.refresh_token)
    assert live in rig.fake.auth.refresh and live != sealer.open(before.refresh_token)
    assert live not in after.refresh_token and live not in caplog.text
    assert len(rig.invoices()) == 4


# ----- payments back -----
@pytest.mark.parametrize(("provider", "form"), [("quickbooks", "legacy"), ("quickbooks", "cloudevents"),
                                                ("xero", None)])
async def test_a_payment_announced_twice_and_out_of_order_is_applied_once(
        provider: str, form: str | None, db: Store) -> None:
    invoice_id = invoiced_job(db, "Ann Lee", "(217) 555-0199")
    seen: list[tuple[str, str, Decimal]] = []
    with books(provider, db) as rig:
        await rig.connect()
        sink = rig.sink()

        async def record(ours_id: str, payment: str, amount: Decimal) -> None:
            seen.append((ours_id, payment, amount))

        sink.on_payment = record
        posted = await sink.post_invoice(invoice_id)
        async with rig.webhooks(sink) as hooks:
            rig.fake.pending()  # the invoice's own creation is old news
            rig.pay(posted.their_id, "100.00")
            rig.pay(posted.their_id)
            options = {"form": form} if form else {}
            delivered = await rig.deliver(hooks, repeat=2, shuffle=True, per_delivery=1, **options)
        await rig.aclose()
    assert delivered and all(d.status == 200 for d in delivered)
    invoice = ours(db, invoice_id)
    assert (invoice.balance, invoice.status) == (Decimal("0.00"), "paid")
    assert sorted(a for _, _, a in seen) == sorted([Decimal("100.00"), invoice.total - Decimal("100.00")])
    assert {o for o, _, _ in seen} == {invoice_id}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_wrongly_signed_delivery_is_refused_and_changes_nothing(provider: str, db: Store) -> None:
    invoice_id = invoiced_job(db, "Ann Lee", "(217) 555-0199")
    with books(provider, db) as rig:
        await rig.connect()
        sink = rig.sink()
        posted = await sink.post_invoice(invoice_id)
        async with rig.webhooks(sink) as hooks:
            if provider == "xero":
                assert await rig.fake.intent_to_receive(rig.hook_url, client=hooks)
            rig.pay(posted.their_id)
            delivered = await rig.fake.deliver(rig.hook_url, client=hooks, wrong_signature=True)
            unsigned = await hooks.post(rig.hook_url, content=b'{"events": []}')
        await rig.aclose()
    assert [d.status for d in delivered] == [401] and unsigned.status_code == 401
    assert ours(db, invoice_id).status == "open"


async def test_xero_activates_the_endpoint_after_its_intent_to_receive(db: Store) -> None:
    with books("xero", db) as rig:
        async with rig.webhooks(rig.sink()) as hooks:
            assert await rig.fake.intent_to_receive(rig.hook_url, client=hooks)
        await rig.aclose()
    assert rig.fake.endpoints[rig.hook_url] == "OK"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_payment_made_while_no_webhook_arrived_is_caught_up(provider: str, db: Store) -> None:
    invoice_id = invoiced_job(db, "Ann Lee", "(217) 555-0199")
    with books(provider, db) as rig:
        await rig.connect()
        sink = rig.sink()
        posted = await sink.post_invoice(invoice_id)
        rig.pay(posted.their_id, "50.00")
        applied = await sink.catch_up()
        await rig.aclose()
    invoice = ours(db, invoice_id)
    assert applied >= 1 and invoice.balance == invoice.total - Decimal("50.00") and invoice.status == "open"


def test_signatures_are_the_base64_hmac_of_the_body() -> None:
    body = b'{"eventNotifications":[]}'
    assert quickbooks_signed(body, sign(body, "verifier"), "verifier")
    assert not quickbooks_signed(body + b" ", sign(body, "verifier"), "verifier")
    assert xero_signed(body, sign(body, "k"), "k") and not xero_signed(body, sign(body, "other"), "k")
    assert not xero_signed(body, None, "k")


@pytest.mark.parametrize("backend", ["servicetitan", "fieldpulse", "housecallpro"])
def test_books_over_a_vendor_backend_are_refused_at_load_naming_the_table_and_why(
        backend: str, tmp_path: Path) -> None:
    """The vendor keeps the invoices (ours would not find them) and posts them to the books itself: posting
    from here too would bill each one twice. The table is refused, by name, before anything is sent."""
    config = tmp_path / "fsm.toml"
    config.write_text(f'[businesses.acme]\nname = "Acme"\nbackend = "{backend}"\n[businesses.acme.accounting]\n'
                      'provider = "quickbooks"\nclient_id = "abc"\ncompany = "9341"\n'
                      '[businesses.local]\nname = "Local"\n[businesses.local.accounting]\n'
                      'provider = "xero"\nclient_id = "abc"\ncompany = "t-1"\n')
    env = {"FSM_MCP_CONFIG": str(config), "FSM_MCP_ACME_ACCOUNTING_TOKEN_KEY": KEY,
           "FSM_MCP_ACME_ACCOUNTING_CLIENT_SECRET": "s3cret", "FSM_MCP_LOCAL_ACCOUNTING_TOKEN_KEY": KEY,
           "FSM_MCP_LOCAL_ACCOUNTING_CLIENT_SECRET": "s3cret"}
    with pytest.raises(SettingsError) as exc:
        load_for("acme", env)
    said = str(exc.value)
    assert said.startswith(f"[businesses.acme.accounting]: provider = 'quickbooks' cannot be used with backend = "
                           f"'{backend}'") and "bill each one twice" in said and "FSM_MCP_ACME_ACCOUNTING_PROVIDER" \
        in said and "s3cret" not in said
    got = load_for("local", env)  # the other business, on the local backend, keeps its books
    assert got is not None and got.provider == "xero"
    assert load_for("acme", env | {"FSM_MCP_ACME_ACCOUNTING_PROVIDER": "none"}) is None
    with pytest.raises(SettingsError, match=r"^\[businesses.acme.accounting\]: provider = 'xero'"):
        load_for("acme", env | {"FSM_MCP_ACME_ACCOUNTING_PROVIDER": "xero"})
    # The backend set from the environment counts as well; a file of one business names [accounting].
    one = tmp_path / "one.toml"
    one.write_text('[business]\nname = "Solo"\n[accounting]\nprovider = "xero"\nclient_id = "abc"\n'
                   'company = "t-1"\n')
    solo = {"FSM_MCP_CONFIG": str(one), "FSM_MCP_ACCOUNTING_TOKEN_KEY": KEY, "FSM_MCP_ACCOUNTING_CLIENT_SECRET": "x"}
    assert load_for(None, solo) is not None
    with pytest.raises(SettingsError, match=r"^\[accounting\]: provider = 'xero' cannot be used with backend"):
        load_for(None, solo | {"FSM_MCP_BACKEND": backend})


async def test_the_lane_is_shared_by_every_sink_of_a_company(db: Store) -> None:
    lanes = LocalLanes()
    with books("xero", db) as rig:
        a, b = rig.sink(lanes=lanes), rig.sink(lanes=lanes)
        await rig.aclose()
    # Xero's lane is wrapped by its count of requests a day (kept in the store); the pace inside is one.
    assert a.books.client.lane.inner is b.books.client.lane.inner  # type: ignore[attr-defined]


# ----- the event spine and the commands -----
async def _created(db: Store, invoice_id: str) -> None:
    invoice = ours(db, invoice_id)
    await outbox.record(db, TENANT, "invoice.created", "invoice", invoice_id,
                        {"invoice_id": invoice_id, "job_id": invoice.job_id, "customer_id": invoice.customer_id})


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_invoice_created_on_the_outbox_posts_once_and_a_payment_goes_out_as_payment_received(
        provider: str, db: Store) -> None:
    ids = [invoiced_job(db, f"Lee Park{n}", f"(217) 555-03{n:02d}") for n in range(2)]
    for invoice_id in ids:
        await _created(db, invoice_id)
    with books(provider, db) as rig:
        await rig.connect()
        sink = rig.sink()
        feed.announce(sink)
        assert await feed.drain(sink) == 2 and await feed.drain(sink) == 0
        their = db.read(sql.linked, TENANT, "invoice", ids[0], provider)
        rig.pay(their)
        async with rig.webhooks(sink) as hooks:
            await rig.deliver(hooks, repeat=3, shuffle=True)
        await rig.aclose()
    received = [e for e in (await outbox.read(db, TENANT, None, 500)).events if e.type == "payment.received"]
    assert len(rig.invoices()) == 2 and len(received) == 1
    assert received[0].data["invoice_id"] == ids[0] and ours(db, ids[0]).status == "paid"


async def test_a_slow_invoice_holds_no_other_and_the_cursor_waits_just_before_it(db: Store) -> None:
    """The outbox is posted as a sliding window, not a page at a time: while the first invoice waits (a 429 hold,
    say) the ones after it, pages further on or created meanwhile, go to the books; the cursor stays just before
    the slow one, so a crash would post again only it; a failure leaves the cursor before it and the next round
    posts it alone."""
    ids = [invoiced_job(db, f"Ana Silva{n}", f"(217) 555-04{n:02d}") for n in range(7)]
    for invoice_id in ids[:5]:
        await _created(db, invoice_id)
    with books("quickbooks", db) as rig:
        await rig.connect()
        sink = rig.sink()
        assert sink.at_once == 10
        post, gate, landed = sink.post_invoice, anyio.Event(), []
        cursors: list[str | None] = []

        async def slow_first(invoice_id: str, wait: float = 30.0) -> Any:
            if invoice_id == ids[0]:
                with anyio.fail_after(10):  # paged, the pages after the first never start: this fails
                    await gate.wait()
                cursors.append(db.read(sql.get_cursor, TENANT, "quickbooks", "outbox"))
                raise VendorUnavailable("the books are down", status=503)
            done = await post(invoice_id, wait)
            landed.append(invoice_id)
            if invoice_id == ids[4]:  # two more are created while the first still waits
                for later in ids[5:]:
                    await _created(db, later)
            if len(landed) == len(ids) - 1:
                gate.set()
            return done

        sink.post_invoice = slow_first  # type: ignore[method-assign]
        with pytest.raises(VendorUnavailable):
            await feed.drain(sink, limit=2, at_once=3)  # 2 a page: the next four are on two more pages
        assert sorted(landed) == sorted(ids[1:])
        events = [e.id for e in (await outbox.read(db, TENANT, None, 500)).events if e.type == "invoice.created"]
        # Just before the slow one, while it waited and after it failed: the six after it are done, not passed.
        before = cursors[0]
        assert db.read(sql.get_cursor, TENANT, "quickbooks", "outbox") == before
        after = [e.id for e in (await outbox.read(db, TENANT, before, 500)).events if e.type == "invoice.created"]
        assert after == events
        sink.post_invoice = post  # type: ignore[method-assign]
        requests = len(rig.fake.door.log)
        assert await feed.drain(sink) == 7  # all seven seen again: six found linked (no request), one posted
        assert rig.fake.door.log[requests:] and len(rig.invoices()) == 7
        await rig.aclose()


def test_the_commands_connect_check_and_sync_the_books(settings: Settings, tmp_path: Path) -> None:
    db = open_store(settings.db_path)
    invoice_id = invoiced_job(db, "Ann Lee", "(217) 555-0199")
    anyio.run(_created, db, invoice_id)
    db.close()
    with books("quickbooks", open_store(settings.db_path)) as rig:
        token = tmp_path / "refresh"
        token.write_text(rig.fake.connect()["refresh_token"])
        env = {"FSM_MCP_DB": str(settings.db_path), "FSM_MCP_ACCOUNTING_PROVIDER": "quickbooks",
               "FSM_MCP_ACCOUNTING_CLIENT_ID": rig.settings.client_id, "FSM_MCP_ACCOUNTING_COMPANY": rig.settings.company,
               "FSM_MCP_ACCOUNTING_CLIENT_SECRET": rig.settings.client_secret.get_secret_value(),
               "FSM_MCP_ACCOUNTING_TOKEN_KEY": KEY, "FSM_MCP_ACCOUNTING_API_URL": rig.base,
               "FSM_MCP_ACCOUNTING_TOKEN_URL": rig.settings.token_url}
        runner = CliRunner()
        connected = runner.invoke(main, ["accounting", "connect", "--refresh-token-file", str(token)], env=env)
        checked = runner.invoke(main, ["accounting", "check"], env=env)
        synced = runner.invoke(main, ["accounting", "sync"], env=env)
        again = runner.invoke(main, ["accounting", "sync"], env=env)
        rig.db.close()
    assert connected.exit_code == 0, connected.output
    assert "connected" in connected.output and token.read_text() not in connected.output
    assert checked.exit_code == 0 and "0 invoices linked" in checked.output, checked.output
    assert synced.exit_code == 0 and "1 invoices posted" in synced.output, synced.output
    assert again.exit_code == 0 and "0 invoices posted" in again.output
    assert len(rig.invoices()) == 1
