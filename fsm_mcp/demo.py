"""`fsm-mcp demo`: a demo business, then a scripted call through a real MCP client over stdio."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from fsm_mcp.connectors.local import technicians
from fsm_mcp.directory import customers
from fsm_mcp.identity.phones import parse_phone
from fsm_mcp.inputs import AddressIn
from fsm_mcp.models import Equipment, JobStatus
from fsm_mcp.settings import Business
from fsm_mcp.store import jobs
from fsm_mcp.store.db import Database

DEMO_ENV = {"FSM_MCP_NAME": "Prairie Comfort Heating & Plumbing", "FSM_MCP_TIMEZONE": "America/Chicago"}


def seed(db: Database, business: Business) -> None:
    """Technicians and returning customers with service history."""

    def write(conn: Any) -> None:
        tenant, now = business.tenant_id, db.clock.now()
        technicians.insert(conn, tenant, "Maria Lopez", ["hvac", "plumbing"], "+12175550101")
        technicians.insert(conn, tenant, "Dev Patel", ["hvac", "electrical"], "+12175550102")
        technicians.insert(conn, tenant, "Sam Okafor", ["plumbing"], "+12175550103")
        william = customers.insert_customer(conn, tenant, now, name="William Jenkins", phones=[parse_phone("+12175550143")],
                                            emails=["wjenkins@example.com"], notes="Prefers morning visits.")
        oak = customers.insert_location(
            conn, tenant, william, AddressIn(street="123 Oak Street", city="Springfield", state="IL", postal_code="62704"),
            now, access_notes="Side gate code 4417; dog in the back yard.",
            equipment=[Equipment(kind="furnace", make="Carrier", model="59TP6", installed="2014")],
        )
        linda = customers.insert_customer(conn, tenant, now, name="Linda Park", phones=[parse_phone("217-555-0177")])
        customers.insert_location(conn, tenant, linda, AddressIn(street="88 Elm Ave Apt 2", city="Springfield", state="IL",
                                                                 postal_code="62702"), now)
        customers.reindex(conn, tenant, [william, linda])
        october = datetime(now.year if now.month > 10 else now.year - 1, 10, 14, 15, tzinfo=business.zone)
        jobs.insert_past_job(conn, tenant, william, oak, "hvac", "hvac", "Annual furnace tune-up; replaced the flame sensor",
                             "normal", (october, october + timedelta(hours=2)), JobStatus.completed,
                             "Flame sensor replaced")

    db.write(write)


def _show(title: str, value: Any) -> None:
    click.secho(f"\n▶ {title}", fg="cyan", bold=True)
    click.echo(json.dumps(value, indent=2, default=str)[:1800])


async def _call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    click.secho(f"\n→ {tool}({json.dumps(args, default=str)})", fg="yellow")
    result = await client.call_tool(tool, args)
    if result.is_error:
        raise click.ClickException(f"{tool} failed: {result.content[0].text}")  # type: ignore[union-attr]
    return dict(result.structured_content or {})


def _next_weekday(after: date) -> date:
    day = after + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


async def run_demo(db_path: Path | None) -> None:
    """Seed a demo business in `db_path`, a file that must not exist yet (None: a fresh temporary database,
    removed when the demo ends), and play the call against a server over stdio."""
    workdir = None
    if db_path is None:
        workdir = tempfile.TemporaryDirectory(prefix="fsm-mcp-demo-")
        db_path = Path(workdir.name) / "demo.db"
    elif db_path.exists():
        raise click.UsageError(f"{db_path} exists; the demo creates a fresh business, give a new path")
    business = Business(name=DEMO_ENV["FSM_MCP_NAME"], timezone=DEMO_ENV["FSM_MCP_TIMEZONE"])
    db = Database(db_path)
    seed(db, business)
    db.close()
    click.secho(f"Demo business '{business.name}' in {db_path}", bold=True)

    server = StdioServerParameters(
        command=sys.executable, args=["-m", "fsm_mcp", "serve", "--db", str(db_path)],
        env={**os.environ, **DEMO_ENV, "FSM_MCP_LOG_LEVEL": "WARNING"},
    )
    try:
        async with Client(server) as client:
            await the_call(client, _next_weekday(db.clock.today(business.zone)))
    finally:
        if workdir:
            workdir.cleanup()
    click.secho("\nDemo finished: one customer, one job, one invoice, however often the agent retried.", fg="green", bold=True)


async def the_call(client: Client, day: date) -> None:
    """The scripted call, through any MCP client to a server over any backend whose business has the demo's
    technicians and William Jenkins (217-555-0143) with a past furnace job; the new caller is booked on `day`."""
    click.secho("\n☎  Call 1: a returning caller; caller ID arrives as 217.555.0143", bold=True)
    found = await _call(client, "lookup_customer", {"phone": "217.555.0143"})
    card = found["customer"]
    last, home = card["recent_jobs"][0], card["locations"][0]
    _show("recognised", {"match": found["matches"][0], "last job": last["summary"],
                          "equipment": home.get("equipment"), "access notes": home.get("access_notes")})
    click.echo(f'\nAgent: "Hi {card["name"].split()[0]}, welcome back. Is this about the furnace at '
               f'{home["address"].split(",")[0]} we serviced in {datetime.fromisoformat(last["window_start"]):%B}?"')

    click.secho("\n☎  Call 2: a new caller, Maria Garcia, whose AC is making a grinding noise", bold=True)
    found = await _call(client, "lookup_customer", {"phone": "(312) 555-0188", "name": "Maria Garcia"})
    _show("no match", found["next_step"])
    slots = await _call(client, "find_available_slots", {"job_type": "hvac", "date_from": day.isoformat()})
    slot = slots["slots"][0]
    _show("first open window", slot)
    booking = {
        "customer": {"name": "Maria Garcia", "phone": "(312) 555-0188",
                     "address": "410 Maple Dr, Springfield, IL 62704"},
        "job_type": "hvac", "summary": "AC makes a grinding noise when it starts",
        "window_start": slot["window_start"], "window_end": slot["window_end"], "idempotency_key": "demo-call-2-booking",
    }
    job = await _call(client, "create_job", booking)
    _show("booked", {k: job[k] for k in ("job_id", "customer_id", "customer_created", "status", "address")})

    click.secho("\n↻  The voice platform times out and retries the same request", bold=True)
    again = await _call(client, "create_job", booking)
    _show("same job back, nothing written twice", {"job_id": again["job_id"], "same": again["job_id"] == job["job_id"]})
    click.secho("\n↻  The agent regenerates the request with a fresh key", bold=True)
    fresh = await _call(client, "create_job", {**booking, "idempotency_key": "demo-call-2-booking-regenerated"})
    _show("recognised as already booked", {k: fresh[k] for k in ("job_id", "already_booked", "customer_created")})

    tech = slot["technicians"][0]
    dispatched = await _call(client, "dispatch_technician", {"job_id": job["job_id"], "technician_id": tech["technician_id"],
                                                              "idempotency_key": "demo-dispatch"})
    _show(f"dispatched {tech['name']}", {"status": dispatched["status"], "technicians": dispatched["technician_ids"]})
    for status in ("en_route", "arrived", "working", "completed"):
        moved = await _call(client, "update_job_status", {"job_id": job["job_id"], "status": status,
                                                          "note": "Replaced the blower motor bearing" if status == "completed" else None})
    _show("job history", [(h["status"], h["at"]) for h in moved["history"]])
    invoice = await _call(client, "create_invoice", {
        "job_id": job["job_id"], "idempotency_key": "demo-invoice", "tax_rate": "0.0825",
        "line_items": [
            {"description": "Diagnostic visit", "quantity": "1", "unit_price": "89.00", "kind": "service"},
            {"description": "Blower motor bearing", "quantity": "1", "unit_price": "46.50", "kind": "material"},
            {"description": "Labor", "quantity": "1.5", "unit_price": "110.00", "kind": "labor"},
        ],
    })
    _show("invoiced", {k: invoice[k] for k in ("invoice_id", "subtotal", "tax", "discount", "total")})
    board = await _call(client, "list_jobs", {"customer_id": job["customer_id"]})
    _show("Maria Garcia's jobs", [(j["job_id"], j["status"]) for j in board["jobs"]])
    if len(board["jobs"]) != 1:
        raise click.ClickException("the retried booking created a second job")
