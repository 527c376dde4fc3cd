"""A fake FieldPulse, built from the published OpenAPI document and rate-limit notes in
../shared/specs/fieldpulse, for the connector's tests and benchmarks.

What the spec declares, it follows: paths, methods, query parameters (`limit` at most
100, `page` from 1, `calculate_count`, `search`, `filter`, `sort_by`/`sort_dir`,
`created_from` as UNIX seconds, `object_type`/`object_id`), the request examples'
fields, `x-api-key`, 400 bodies `{"error": true, "errors": [...]}` and other failures
`{"message": ...}`, and 429 with `RateLimit-Reset` (epoch seconds) for both the
per-second throttle and the monthly quota. What the spec leaves out (every success body,
the job and invoice fields) follows `fsm_mcp/connectors/fieldpulse/mapping.py`'s
reading: `{"error": false, "response": ...}`, times as 'YYYY-MM-DD HH:MM:SS' in UTC,
`filter` as a JSON array of [attribute, operator, value]. A lost answer is API Gateway's
504 `{"message": "Endpoint request timed out"}`. Updating a job requires its
customer_id and job_type again.

Run it standalone on a loopback port: python -m tests.fakes.fieldpulse --port 8766
"""

from __future__ import annotations

import itertools
import json
import math
import time
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fsm_mcp.connectors.fieldpulse.config import FieldPulseSettings
from tests.fakes.chaos import Chaos, Door

API_KEY = "fake-fieldpulse-key"
OPERATORS = {"=": lambda a, b: a == b, ">=": lambda a, b: a >= b, ">": lambda a, b: a > b,
             "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}
TIMES = ("created_at", "updated_at", "start_time", "end_time")


def connector_settings(url: str, **changes: Any) -> FieldPulseSettings:
    """A FieldPulse connector's settings, pointed at this fake served at `url`."""
    values: dict[str, Any] = {"api_key": API_KEY, "api_url": url, "sync_interval": 0,
                              "skills": {"Dana Reyes": ["hvac", "plumbing"], "Sam Ortiz": ["electrical"]}}
    return FieldPulseSettings.model_validate({**values, **changes})


def connector_env(url: str) -> dict[str, str]:
    """The same settings as `FSM_MCP_FIELDPULSE_*` variables, for a server or command in another process
    (skills need the TOML table; see `connector_toml`)."""
    return {"FSM_MCP_BACKEND": "fieldpulse", "FSM_MCP_FIELDPULSE_API_KEY": API_KEY, "FSM_MCP_FIELDPULSE_API_URL": url,
            "FSM_MCP_FIELDPULSE_SYNC_INTERVAL": "0"}


def connector_toml() -> str:
    return '[fieldpulse.skills]\n"Dana Reyes" = ["hvac", "plumbing"]\n"Sam Ortiz" = ["electrical"]\n'


def stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(value: Any, field: str) -> datetime:
    try:
        if isinstance(value, int | float) or str(value).isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"The {field} is not a valid date.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Invalid(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def message(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status, headers=headers)


def next_month(now: datetime) -> datetime:
    return datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)


class FakeFieldPulse:
    def __init__(self, chaos: Chaos | None = None, quota: int | None = None) -> None:
        self.chaos = chaos or Chaos()
        self.door = Door(self.chaos, self._throttled, lambda: message(503, "Service Unavailable"), hold_tenant=True)
        self.quota = quota  # requests left this month; None: no limit in sight
        self.ids = itertools.count(5000)
        self.customers: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.locations: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.invoices: dict[int, dict[str, Any]] = {}
        self.payments: dict[int, dict[str, Any]] = {}
        self.users: list[dict[str, Any]] = []
        self.app = Starlette(routes=self._routes())

    # ----- seeding (what the company already has in FieldPulse) -----
    def add_technician(self, name: str, active: bool = True) -> int:
        uid = next(self.ids)
        first, _, last = name.partition(" ")
        self.users.append({"id": uid, "first_name": first, "last_name": last, "email": f"{first.lower()}@example.com",
                           "phone": None, "role": "technician", "is_active": active})
        return uid

    def add_customer(self, name: str, street: str, city: str, zip_code: str, phones: tuple[str, ...] = (),
                     emails: tuple[str, ...] = (), modified: datetime | None = None) -> int:
        first, _, last = name.partition(" ")
        body = {"first_name": first, "last_name": last, "display_name": name,
                "phone": phones[0] if phones else "", "secondary_phone": phones[1] if len(phones) > 1 else "",
                "email": emails[0] if emails else "", "service_address_1": street, "service_address_city": city,
                "service_address_state": "IL", "service_address_zip_code": zip_code,
                "locations": [{"object_type": "customer", "title": "Home", "address_1": street, "city": city, "state": "IL",
                               "zip_code": zip_code, "is_main_location": True}]}
        return int(self._create_customer(body, modified)["id"])

    # ----- routes -----
    def _routes(self) -> list[Route]:
        r = self._route
        return [
            r("/customers", "GET", self.list_customers), r("/customers", "POST", self.create_customer),
            r("/customers/{customerId:int}", "GET", lambda q: self._get(self.customers, q.id("customerId"), "customer")),
            r("/customers/{customerId:int}/customer-contact", "GET", self.list_contacts),
            r("/customers/{customerId:int}/customer-contact", "POST", self.create_contact),
            r("/locations", "GET", self.list_locations), r("/locations", "POST", self.create_location),
            r("/jobs", "GET", self.list_jobs), r("/jobs", "POST", self.create_job),
            r("/jobs/{jobId:int}", "GET", lambda q: self._get(self.jobs, q.id("jobId"), "job")),
            r("/jobs/{jobId:int}", "PUT", self.update_job),
            r("/comments", "GET", self.list_comments), r("/comments", "POST", self.create_comment),
            r("/invoices", "GET", self.list_invoices), r("/invoices", "POST", self.create_invoice),
            r("/invoices/{invoiceId:int}", "GET", lambda q: self._get(self.invoices, q.id("invoiceId"), "invoice")),
            r("/payments", "GET", self.list_payments),
            r("/users", "GET", self.list_users),
            # The spec's one success example, and it has no envelope.
            r("/version", "GET", lambda q: {"reported": "2.5", "latest": "2.5", "deprecated": False}, bare=True),
        ]

    def _route(self, path: str, method: str, handler: Any, bare: bool = False) -> Route:
        write = method != "GET"

        async def endpoint(request: Request) -> Response:
            response = await self._serve(request, handler, write, bare)
            await self.door.record(request, response)
            return response

        return Route(path, endpoint, methods=[method])

    async def _serve(self, request: Request, handler: Any, write: bool, bare: bool) -> Response:
        if request.headers.get("x-api-key") != API_KEY:
            return message(401, "Unauthorized")
        if self.quota is not None:
            if self.quota <= 0:
                reset = next_month(datetime.now(UTC))
                return message(429, "Quota exceeded: You have reached your monthly request quota",
                               {"RateLimit-Reset": str(int(reset.timestamp()))})
            self.quota -= 1
        if (early := await self.door.before(request, write)) is not None:
            return early
        try:
            query = Query(request)
            if write:
                raw = await request.body()
                answer = handler(query, json.loads(raw) if raw else {})
            else:
                answer = handler(query)
        except Invalid as exc:
            return JSONResponse({"error": True, "errors": [exc.message]}, status_code=exc.status) if exc.status == 400 \
                else message(exc.status, exc.message)
        if self.door.lose_answer(write):
            return message(504, "Endpoint request timed out")
        return JSONResponse(answer if bare or "response" in answer else {"error": False, "response": answer})

    @staticmethod
    def _throttled(seconds: float) -> Response:
        reset = math.ceil(time.time() + seconds)
        return message(429, "Throttled: You have reached your per second rate limit", {"RateLimit-Reset": str(reset)})

    def _get(self, table: dict[int, dict[str, Any]], ident: int, kind: str) -> dict[str, Any]:
        if ident not in table:
            raise Invalid(f"No {kind} found", status=404)
        return dict(table[ident])

    # ----- customers, contacts, locations -----
    def list_customers(self, q: Query) -> dict[str, Any]:
        rows = list(self.customers.values())
        if by := q.one_of("sort_by", ("searchable", "email", "phone", "address_1")):
            rows = sorted(rows, key=lambda c: (str(c.get({"searchable": "display_name"}.get(by, by)) or ""), c["id"]),
                          reverse=q.get("sort_dir") == "desc")
        if term := (q.get("search") or "").lower():
            rows = [c for c in rows if any(term in str(c.get(f) or "").lower() for f in
                                           ("display_name", "first_name", "last_name", "email", "phone", "service_address_1"))]
        return q.page(q.filtered(rows))

    def create_customer(self, q: Query, body: dict[str, Any]) -> dict[str, Any]:
        return self._create_customer(body)

    def _create_customer(self, body: dict[str, Any], modified: datetime | None = None) -> dict[str, Any]:
        if not (body.get("first_name") or body.get("last_name") or body.get("display_name")):
            raise Invalid("The first name, last name or display name is required.")
        for field in ("phone", "secondary_phone"):
            if body.get(field) and sum(ch.isdigit() for ch in str(body[field])) < 7:
                raise Invalid(f"The {field.replace('_', ' ')} must be a valid phone number.")
        now = stamp(modified)
        cid = next(self.ids)
        record = {k: body.get(k, "") for k in (
            "first_name", "last_name", "display_name", "company_name", "email", "alt_email", "secondary_email", "phone",
            "secondary_phone", "notes", "service_address_1", "service_address_2", "service_address_city",
            "service_address_state", "service_address_zip_code")}
        self.customers[cid] = {"id": cid, **record, "status": body.get("status") or "customer",
                               "account_type": body.get("account_type") or "residential", "created_at": now, "updated_at": now}
        made = [self._create_location({**loc, "object_type": "customer", "object_id": cid}, modified)
                for loc in body.get("locations") or []]
        return {**self.customers[cid], "locations": made}

    def list_contacts(self, q: Query) -> dict[str, Any]:
        cid = q.id("customerId")
        self._get(self.customers, cid, "customer")
        return q.page([c for c in self.contacts.values() if c["customer_id"] == cid])

    def create_contact(self, q: Query, body: dict[str, Any]) -> dict[str, Any]:
        cid = q.id("customerId")
        self._get(self.customers, cid, "customer")
        if not (body.get("phone") or body.get("email")):
            raise Invalid("A phone or an email is required.")
        kid = next(self.ids)
        self.contacts[kid] = {"id": kid, "customer_id": cid, **{k: body.get(k, "") for k in (
            "first_name", "last_name", "email", "phone", "notes")}, "created_at": stamp(), "updated_at": stamp()}
        self.customers[cid]["updated_at"] = stamp()
        return dict(self.contacts[kid])

    def list_locations(self, q: Query) -> dict[str, Any]:
        rows = list(self.locations.values())
        if kind := q.one_of("object_type", ("customer", "job")):
            rows = [loc for loc in rows if loc["object_type"] == kind]
        if owner := q.get("object_id"):
            rows = [loc for loc in rows if str(loc["object_id"]) == owner]
        return q.page(q.filtered(rows))

    def create_location(self, q: Query, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("object_type") != "customer" or int(body.get("object_id") or 0) not in self.customers:
            raise Invalid("The object_type must be customer and object_id an existing customer.")
        return self._create_location(body)

    def _create_location(self, body: dict[str, Any], modified: datetime | None = None) -> dict[str, Any]:
        if not body.get("address_1"):
            raise Invalid("The address 1 field is required.")
        lid = next(self.ids)
        self.locations[lid] = {"id": lid, "object_type": "customer", "object_id": int(body["object_id"]),
                               **{k: body.get(k) or "" for k in ("title", "address_1", "address_2", "city", "state", "zip_code")},
                               "is_main_location": bool(body.get("is_main_location")),
                               "created_at": stamp(modified), "updated_at": stamp(modified)}
        return dict(self.locations[lid])

    # ----- jobs and comments -----
    def list_jobs(self, q: Query) -> dict[str, Any]:
        rows = list(self.jobs.values())
        if start := q.epoch("created_from"):
            rows = [j for j in rows if parse_time(j["created_at"], "created_at") >= start]
        if end := q.epoch("created_to"):
            rows = [j for j in rows if parse_time(j["created_at"], "created_at") <= end]
        rows = q.filtered(rows)
        if by := q.one_of("sort_by", ("created_at", "updated_at")):
            rows = sorted(rows, key=lambda j: (j[by], j["id"]), reverse=q.get("sort_dir") == "desc")
        return q.page(rows)

    def _job_fields(self, body: dict[str, Any], job: dict[str, Any] | None) -> dict[str, Any]:
        for field in ("customer_id", "job_type"):
            if body.get(field) in (None, ""):
                raise Invalid(f"The {field.replace('_', ' ')} field is required.")
        if int(body["customer_id"]) not in self.customers:
            raise Invalid("The selected customer id is invalid.")
        fields: dict[str, Any] = {"customer_id": int(body["customer_id"]), "job_type": body["job_type"]}
        for time_field in ("start_time", "end_time"):
            if body.get(time_field):
                fields[time_field] = stamp(parse_time(body[time_field], time_field.replace("_", " ")))
        if "status" in body:
            if int(body["status"]) not in range(1, 7):
                raise Invalid("The status must be between 1 and 6.")
            fields["status"] = int(body["status"])
        if "assignments" in body:
            users = {u["id"] for u in self.users}
            if any(int(u) not in users for u in body["assignments"]):
                raise Invalid("The selected assignments is invalid.")
            fields["assignments"] = [int(u) for u in body["assignments"]]
        for key in ("location_id", "notes"):
            if key in body:
                fields[key] = body[key]
        return fields

    def create_job(self, q: Query, body: dict[str, Any]) -> dict[str, Any]:
        fields = self._job_fields(body, None)
        jid, now = next(self.ids), stamp()
        self.jobs[jid] = {"id": jid, "status": 1, "assignments": [], "location_id": None, "notes": "", "start_time": None,
                          "end_time": None, **fields, "created_at": now, "updated_at": now}
        return dict(self.jobs[jid])

    def update_job(self, q: Query, body: dict[str, Any]) -> dict[str, Any]:
        job = self.jobs.get(q.id("jobId"))
        if job is None:
            raise Invalid("No job found", status=404)
        job.update(self._job_fields(body, job), updated_at=stamp())
        return dict(job)

    def list_comments(self, q: Query) -> dict[str, Any]:
        rows = [c for c in self.comments.values() if c["commentable_type"] == q.get("object_type")
                and str(c["commentable_id"]) == (q.get("object_id") or "")]
        return q.page(rows)

    def create_comment(self, q: Query, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("text") or body.get("commentable_type") not in ("customer", "job", "project", "invoice"):
            raise Invalid("The text and a known commentable type are required.")
        kid = next(self.ids)
        self.comments[kid] = {"id": kid, "text": body["text"], "commentable_id": int(body["commentable_id"]),
                              "commentable_type": body["commentable_type"], "created_at": stamp()}
        return dict(self.comments[kid])

    # ----- invoices and users -----
    def create_invoice(self, q: Query, body: dict[str, Any]) -> dict[str, Any]:
        if int(body.get("customer_id") or 0) not in self.customers:
            raise Invalid("The selected customer id is invalid.")
        if not body.get("line_items"):
            raise Invalid("At least one line item is required.")
        items, subtotal = [], Decimal("0")
        for item in body["line_items"]:
            quantity, price = Decimal(str(item["quantity"])), Decimal(str(item["unit_price"]))
            total = cents(quantity * price)
            subtotal += total
            items.append({"id": next(self.ids), "name": item.get("name") or "", "description": item.get("description") or "",
                          "quantity": str(quantity), "unit_price": money(price), "total": money(total)})
        discount, rate = Decimal(str(body.get("discount") or "0")), Decimal(str(body.get("tax_rate") or "0"))
        tax = cents((subtotal - discount) * rate)
        total = subtotal - discount + tax
        iid = next(self.ids)
        self.invoices[iid] = {"id": iid, "customer_id": int(body["customer_id"]), "job_id": body.get("job_id"),
                              "line_items": items, "subtotal": money(subtotal), "discount": money(discount),
                              "tax_rate": str(rate), "tax": money(tax), "total": money(total), "amount_paid": "0.00",
                              "balance_due": money(total), "status": "sent", "created_at": stamp(), "updated_at": stamp()}
        return dict(self.invoices[iid])

    def list_invoices(self, q: Query) -> dict[str, Any]:
        rows = q.filtered(list(self.invoices.values()))
        if by := q.get("sort_by"):  # "any attribute name from the current resource"
            if rows and by not in rows[0]:
                raise Invalid(f"The sort by must be an attribute of the invoice, not {by}.")
            rows = sorted(rows, key=lambda i: (str(i.get(by) or ""), i["id"]), reverse=q.get("sort_dir") == "desc")
        return q.page(rows)

    def invoice_in_app(self, job_id: str, *lines: tuple[str, str, str]) -> int:
        """The office invoices a job in FieldPulse's app: (description, quantity, unit price) lines."""
        job = self.jobs[int(job_id)]
        body = {"customer_id": job["customer_id"], "job_id": job["id"],
                "line_items": [{"name": d, "description": d, "quantity": n, "unit_price": p} for d, n, p in lines]}
        return int(self.create_invoice(None, body)["id"])  # type: ignore[arg-type]

    def pay(self, invoice_id: int, amount: str, method: str = "credit card") -> int:
        """The customer pays, and the office records it in FieldPulse's app."""
        invoice = self.invoices[invoice_id]
        paid, now = Decimal(amount), stamp()
        pid = next(self.ids)
        self.payments[pid] = {"id": pid, "cuid": f"c{pid * 7919 % 100003:06d}", "invoice_id": invoice_id,
                              "customer_id": invoice["customer_id"], "amount": money(paid), "method": method,
                              "payment_date": int(time.time()), "notes": "", "created_at": now, "updated_at": now}
        balance = Decimal(invoice["balance_due"]) - paid
        invoice.update(amount_paid=money(Decimal(invoice["amount_paid"]) + paid), balance_due=money(balance),
                       status="paid" if balance <= 0 else invoice["status"], updated_at=now)
        return pid

    def list_payments(self, q: Query) -> dict[str, Any]:
        rows = q.filtered(list(self.payments.values()))
        if by := q.one_of("sort_by", ("cuid", "method", "amount", "payment_date")):  # as its description allows
            rows = sorted(rows, key=lambda p: (p[by], p["id"]), reverse=q.get("sort_dir") == "desc")
        return q.page(rows)

    def list_users(self, q: Query) -> dict[str, Any]:
        if q.get("page") is not None:
            raise Invalid("The page parameter is not supported.")
        return {"error": False, "response": self.users[:q.limit()]}


class Query:
    """A request's query, with what the parameters' descriptions allow held to: pages from 1, `limit` 1 to 100,
    true/false flags, `sort_dir` asc or desc."""

    def __init__(self, request: Request) -> None:
        self.params = request.query_params
        self.path = request.path_params
        if (page := self.get("page")) is not None and not (page.isdigit() and int(page) >= 1):
            raise Invalid("The page must be a number from 1.")
        for flag in ("calculate_count", "with_custom_fields"):
            if self.get(flag) not in (None, "true", "false"):
                raise Invalid(f"The {flag.replace('_', ' ')} must be true or false.")
        self.one_of("sort_dir", ("asc", "desc"))

    def one_of(self, name: str, allowed: tuple[str, ...]) -> str | None:
        value = self.get(name)
        if value is not None and value not in allowed:
            raise Invalid(f"The {name.replace('_', ' ')} must be one of {', '.join(allowed)}.")
        return value

    def epoch(self, name: str) -> datetime | None:
        """A parameter described as a UNIX timestamp."""
        value = self.get(name)
        if value is None:
            return None
        if not value.isdigit():
            raise Invalid(f"The {name.replace('_', ' ')} must be a UNIX timestamp.")
        return datetime.fromtimestamp(int(value), UTC)

    def get(self, name: str) -> str | None:
        return self.params.get(name)

    def id(self, name: str) -> int:
        return int(self.path[name])

    def limit(self) -> int:
        raw = self.params.get("limit") or "20"
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise Invalid("The limit must be between 1 and 100.")
        return int(raw)

    def filtered(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not (raw := self.get("filter")):
            return rows
        try:
            conditions = json.loads(raw)
            for attribute, operator, _ in conditions:
                if operator not in OPERATORS or not isinstance(attribute, str):
                    raise ValueError
        except (ValueError, TypeError):
            raise Invalid("The filter must be an array of [attribute, operator, value] parts.") from None

        def holds(row: dict[str, Any], attribute: str, operator: str, value: Any) -> bool:
            have = row.get(attribute)
            if have is None:
                return False
            if attribute in TIMES:
                return OPERATORS[operator](parse_time(have, attribute), parse_time(value, attribute))  # type: ignore[no-untyped-call]
            return OPERATORS[operator](str(have), str(value))  # type: ignore[no-untyped-call]

        return [r for r in rows if all(holds(r, *c) for c in conditions)]

    def page(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        size, page = self.limit(), int(self.params.get("page") or 1)
        body: dict[str, Any] = {"error": False, "response": rows[(page - 1) * size: page * size]}
        if self.get("calculate_count") == "true":
            body["total_results"] = len(rows)
        return body


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def money(value: Decimal) -> str:
    return str(cents(value))


def main() -> None:
    import argparse

    import uvicorn

    from tests.fakes.servicetitan import seed_person

    parser = argparse.ArgumentParser(description="A fake FieldPulse on a loopback port")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--customers", type=int, default=3, help="customers to seed, each with a location and a phone")
    args = parser.parse_args()
    fake = FakeFieldPulse(Chaos(latency=args.latency))
    fake.add_technician("Dana Reyes")
    for n in range(args.customers):
        name, street = seed_person(n)
        fake.add_customer(name, street, "Springfield", f"627{n % 100:02d}", phones=(f"217555{n:04d}",))
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
