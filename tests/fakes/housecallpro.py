"""A fake Housecall Pro (public API v1), built from the published OpenAPI in
../shared/specs/housecallpro/housecall-v1.yaml, for the connector's tests and benchmarks.

    fake = FakeHousecallPro()                      # one company; Chaos() and no rate limit unless given
    fake.add_employee("Dana", "Reyes")             # -> "pro_..." (what the business has in the app)
    cid = fake.add_customer("Ann Lee", "12 Elm St", "Springfield", "62701", mobile="2175550101")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(fake.app), base_url="https://api.housecallpro.com",
                             headers=HEADERS)      # {"Authorization": "Token fake-hcp-company-key"}
    # or over real HTTP: with tests.fakes.serve.serving(fake.app) as url: ...
    # or its own process: python -m tests.fakes.housecallpro --port 8768

Auth: `Authorization: Token <API_KEY>`; anything else is 401 `{"message": ...}`. With `strict_keys=True`
the key is what the spec calls a Company API Key and the operations whose security leaves that kind
out refuse it with 401 (PUT /jobs/{id}/schedule and /dispatch take an Application API Key or an OAuth
token only); APP_KEY is then an Application API Key, refused where the spec leaves that kind out
(appointments, job types).

Served: /company; /customers (q, page, page_size, sort_by, sort_direction, expand), GET/PUT
/customers/{id}, /customers/{id}/addresses (+ /{address_id}); /employees (active ones only);
/jobs (customer_id, scheduled_start_min/max, scheduled_end_min/max, employee_ids, work_status, sort,
expand) and POST /jobs, GET /jobs/{id}, PUT/DELETE /jobs/{id}/schedule, PUT /jobs/{id}/dispatch,
/jobs/{id}/appointments (+ /{appointment_id}), POST /jobs/{id}/notes, POST/DELETE /jobs/{id}/tags,
the line items (list, add, update, delete, bulk_update; a single add is rate limited, as the spec
says: `line_items_per_minute` a job, then 429), GET /jobs/{id}/invoices, /invoices (its filters) and
/api/invoices/{uuid} (invoices are read-only: no write route exists), /pipeline/statuses (GET, PUT:
forward only), /tags, /lead_sources, /job_fields/job_types. The rules are in
tests/fakes/housecallpro_company.py (customers, addresses, employees, tags, pipeline),
housecallpro_jobs.py (jobs, schedule, dispatch, appointments, statuses) and housecallpro_money.py
(line items, invoices); the refusal bodies and paging in housecallpro_lists.py.

Statuses: `work_status` moves only as the API allows: `needs scheduling` <-> `scheduled` by a schedule
(on create, PUT/DELETE /schedule, appointments). No operation starts, completes or cancels a job;
the app does, and so do `fake.start(job)`, `fake.complete(job)`, `fake.cancel(job, by_customer)`.
The business issues and is paid invoices in the app: `fake.issue_invoice(job)`, `fake.pay_invoice(id)`.
A job pipeline (an organisation's own stages, off unless `fake.set_pipeline("Booked", "Done")`)
moves forward only (422 backwards).

A job's external reference: the spec has no field for one. What a create can carry and a read gives
back is `notes` (a string on create; the job's `notes[].content` when read), `tags` (names) and
`lead_source`; GET /jobs filters by `customer_id`, not by any of them. `invoice_number` is unique per
company (a second create with the same one is refused with 422), the only server-side duplicate guard.

Controls and counters:
- `fake.chaos` (tests/fakes/chaos.py): latency, p429 (Retry-After: chaos.retry_after), p503, p_lost
  (the write is done, the answer is a 504), rate (requests a second; beyond it 429, Retry-After: 1);
- `per_minute`/`at_once`: limits on the company (the spec publishes none; off unless given);
- every 429 holds the whole company until its Retry-After has passed; `fake.inside_hold` counts the
  requests that arrived inside a hold (any request, not only repeats of the refused one);
- `fake.writes` (writes done, by kind: "customer", "address", "job", "schedule", ...), `fake.lost`
  (writes done whose answer was lost), `fake.count_429`, `fake.requests`, `fake.door.log` (exchanges);
- `fake.ignored` ((operation, field) of body fields the spec does not define, which Housecall Pro
  ignores: a test can assert a connector sends none).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict, deque
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fsm_mcp.clock import Clock
from tests.fakes.chaos import Chaos, Door
from tests.fakes.housecallpro_company import Company
from tests.fakes.housecallpro_jobs import COMPANY_ID, COMPANY_NAME
from tests.fakes.housecallpro_lists import Query, Refused, invalid
from tests.fakes.tenant_limits import TenantLimits, wait

API_KEY, APP_KEY = "fake-hcp-company-key", "fake-hcp-application-key"
HEADERS = {"Authorization": f"Token {API_KEY}"}
ZONE = "America/Chicago"
COMPANY_ONLY = ("appointments", "job_types")  # operations whose security leaves out an Application API Key
APPLICATION_ONLY = ("schedule", "dispatch")  # ... and those that leave out a Company API Key
FIELDS = {  # what each write's published schema defines
    "customer": {"first_name", "last_name", "email", "company", "notifications_enabled", "mobile_number", "home_number",
                 "work_number", "tags", "lead_source", "notes", "addresses"},
    "address": {"street", "street_line_2", "city", "state", "zip", "country", "latitude", "longitude"},
    "job": {"invoice_number", "customer_id", "address_id", "schedule", "assigned_employee_ids", "line_items", "tags",
            "lead_source", "notes", "job_fields"},
    "schedule": {"start_time", "end_time", "arrival_window_in_minutes", "notify", "notify_pro", "expand",
                 "dispatched_employees"},
    "dispatch": {"dispatched_employees"}, "note": {"content"}, "tag": {"tag_id", "name"}, "named": {"name"},
    "line_item": {"name", "description", "unit_price", "quantity", "unit_cost", "kind", "taxable", "service_item_id",
                  "service_item_type"},
    "line_items": {"line_items", "append_line_items"},
    "appointment": {"start_time", "end_time", "arrival_window_minutes", "dispatched_employees_ids"},
    "pipeline": {"resource_type", "resource_id", "status_id"},
}


def connector_settings(url: str, **changes: Any) -> Any:
    """A Housecall Pro connector's settings, pointed at this fake served at `url`."""
    from fsm_mcp.connectors.housecallpro.config import HousecallProSettings

    values: dict[str, Any] = {"api_key": API_KEY, "api_url": url, "sync_interval": 0,
                              "skills": {"Dana Reyes": ["hvac", "plumbing"], "Sam Ortiz": ["electrical"]}}
    return HousecallProSettings.model_validate({**values, **changes})


def connector_env(url: str) -> dict[str, str]:
    """The same settings as `FSM_MCP_HOUSECALLPRO_*` variables, for a server or command in another process
    (skills need the TOML table, or the employees' tags)."""
    return {"FSM_MCP_BACKEND": "housecallpro", "FSM_MCP_HOUSECALLPRO_API_KEY": API_KEY,
            "FSM_MCP_HOUSECALLPRO_API_URL": url, "FSM_MCP_HOUSECALLPRO_SYNC_INTERVAL": "0"}


class FakeHousecallPro:
    def __init__(self, chaos: Chaos | None = None, clock: Clock | None = None, zone: str = ZONE,
                 per_minute: int | None = None, at_once: int | None = None, strict_keys: bool = False,
                 line_items_per_minute: int = 5) -> None:
        self.clock = clock or Clock()
        self.chaos = chaos or Chaos()
        self.zone = zone
        self.company = Company(self.clock.now, ZoneInfo(zone))
        self.door = Door(self.chaos, self._throttled, lambda: JSONResponse({"message": "Service Unavailable"}, 503))
        self.limits = TenantLimits(self._seconds, per_minute or 10**9, at_once or 10**9)
        self.strict_keys = strict_keys
        self.line_items_per_minute = line_items_per_minute  # single adds per job; the spec calls that one rate limited
        self.line_item_adds: dict[str, deque[float]] = defaultdict(deque)
        self.writes: Counter[str] = Counter()
        self.ignored: list[tuple[str, str]] = []
        self.lost = 0
        self.requests = 0
        self.count_429 = 0  # every 429 given: chaos, the company limits, the single line-item adds
        self.app = Starlette(routes=self._routes())

    @property
    def inside_hold(self) -> int:
        return self.limits.inside_hold[API_KEY]

    def _seconds(self) -> float:
        return time.monotonic() + self.clock.offset.total_seconds()

    # ----- seeding: what the business already has in Housecall Pro -----
    def add_employee(self, first: str, last: str, role: str = "field tech", active: bool = True,
                     tags: tuple[str, ...] = ()) -> str:
        return self.company.add_employee(first, last, role, active, tags)

    def add_customer(self, name: str, street: str, city: str, zip_code: str, mobile: str | None = None,
                     email: str | None = None, state: str = "IL", **fields: Any) -> str:
        first, _, last = name.partition(" ")
        body = {"first_name": first, "last_name": last or None, "mobile_number": mobile, "email": email, **fields,
                "addresses": [{"street": street, "city": city, "state": state, "zip": zip_code, "country": "US"}]}
        return str(self.company.create_customer(body)["id"])

    def add_job_type(self, name: str) -> str:
        tid = self.company.new_id("jbt")
        self.company.job_types[tid] = {"id": tid, "name": name}
        return tid

    def add_lead_source(self, name: str) -> str:
        lid = self.company.new_id("lsr")
        self.company.lead_sources[lid] = {"id": lid, "name": name, "editable": True}
        return lid

    def set_pipeline(self, *names: str) -> list[str]:
        """Turn the job pipeline on with these stages, in order; their ids."""
        return self.company.set_pipeline("job", names)

    # ----- what happens in the app, where the API cannot reach -----
    def start(self, job_id: str) -> None:
        self.company.start(job_id)

    def complete(self, job_id: str, rated: bool = False) -> None:
        self.company.complete(job_id, rated)

    def cancel(self, job_id: str, by_customer: bool = True) -> None:
        self.company.cancel(job_id, by_customer)

    def issue_invoice(self, job_id: str, due_in_days: int = 30) -> str:
        return self.company.issue_invoice(job_id, due_in_days)

    def pay_invoice(self, invoice_id: str, cents: int | None = None, method: str = "credit_card") -> None:
        self.company.pay_invoice(invoice_id, cents, method)

    # ----- routes -----
    def _routes(self) -> list[Route]:
        c, r = self.company, self._route
        return [
            r("/company", "GET", lambda q, _: self._company()),
            r("/customers", "GET", lambda q, _: c.list_customers(q)), r("/customers", "POST", lambda q, b: (201, c.create_customer(b)), "customer"),
            r("/customers/{customer_id}", "GET", lambda q, _: c.customer(q.path["customer_id"], tuple(q.many("expand")))),
            r("/customers/{customer_id}", "PUT", lambda q, b: c.update_customer(q.path["customer_id"], b), "customer"),
            r("/customers/{customer_id}/addresses", "GET",
              lambda q, _: q.page(q.sorted(c.addresses_of(q.path["customer_id"]), ("created_at", "updated_at")), "addresses")),
            r("/customers/{customer_id}/addresses", "POST", lambda q, b: c.add_address(q.path["customer_id"], b), "address"),
            r("/customers/{customer_id}/addresses/{address_id}", "GET",
              lambda q, _: c.address(q.path["customer_id"], q.path["address_id"])),
            r("/employees", "GET", lambda q, _: q.page(q.sorted(c.active_employees()), "employees")),
            r("/jobs", "GET", lambda q, _: c.list_jobs(q)), r("/jobs", "POST", lambda q, b: (201, c.create_job(b)), "job"),
            r("/jobs/{id}", "GET", lambda q, _: c.job(q.path["id"], tuple(q.many("expand")))),
            r("/jobs/{job_id}/schedule", "PUT", lambda q, b: c.set_schedule(q.path["job_id"], b), "schedule"),
            r("/jobs/{job_id}/schedule", "DELETE", lambda q, _: c.erase_schedule(q.path["job_id"]), "schedule"),
            r("/jobs/{job_id}/dispatch", "PUT", lambda q, b: c.dispatch(q.path["job_id"], b), "dispatch"),
            r("/jobs/{job_id}/notes", "POST", lambda q, b: (201, c.add_note(q.path["job_id"], b)), "note"),
            r("/jobs/{job_id}/tags", "POST", lambda q, b: (201, c.tag_job(q.path["job_id"], b)), "tag"),
            r("/jobs/{job_id}/tags/{tag_id}", "DELETE", lambda q, _: c.untag_job(q.path["job_id"], q.path["tag_id"]), "tag"),
            r("/jobs/{job_id}/line_items", "GET", lambda q, _: self._items(q.path["job_id"], c.items_of(q.path["job_id"]))),
            r("/jobs/{job_id}/line_items", "POST", self._add_item, "line_item"),
            r("/jobs/{job_id}/line_items/bulk_update", "PUT",
              lambda q, b: self._items(q.path["job_id"], c.bulk_items(q.path["job_id"], b)), "line_items"),
            r("/jobs/{job_id}/line_items/{id}", "PUT", lambda q, b: c.update_item(q.path["job_id"], q.path["id"], b),
              "line_item"),
            r("/jobs/{job_id}/line_items/{id}", "DELETE", lambda q, _: c.delete_item(q.path["job_id"], q.path["id"]),
              "line_item"),
            r("/jobs/{job_id}/appointments", "GET", lambda q, _: c.appointments_of(q.path["job_id"])),
            r("/jobs/{job_id}/appointments", "POST", lambda q, b: (201, c.add_appointment(q.path["job_id"], b)),
              "appointment"),
            r("/jobs/{job_id}/appointments/{appointment_id}", "PUT",
              lambda q, b: c.update_appointment(q.path["job_id"], q.path["appointment_id"], b), "appointment"),
            r("/jobs/{job_id}/appointments/{appointment_id}", "DELETE",
              lambda q, _: c.delete_appointment(q.path["job_id"], q.path["appointment_id"]), "appointment"),
            r("/jobs/{job_id}/invoices", "GET", lambda q, _: c.invoices_of(q.path["job_id"])),
            r("/invoices", "GET", lambda q, _: c.list_invoices(q)),
            r("/api/invoices/{uuid}", "GET", lambda q, _: c.invoice(q.path["uuid"])),
            r("/pipeline/statuses", "GET", lambda q, _: c.pipeline_statuses(q)),
            r("/pipeline/statuses", "PUT", lambda q, b: c.move_pipeline(b), "pipeline"),
            r("/tags", "GET", lambda q, _: q.page(q.sorted(list(c.tags.values()), ("created_at", "name")), "tags")),
            r("/tags", "POST", lambda q, b: (201, self._named(b, c.tag_named)), "named"),
            r("/lead_sources", "GET", lambda q, _: c.list_lead_sources(q)),
            r("/lead_sources", "POST", lambda q, b: (201, self._named(b, self._new_lead_source)), "named"),
            r("/job_fields/job_types", "GET", lambda q, _: c.list_job_types(q)),
            r("/job_fields/job_types", "POST", lambda q, b: self._named(b, lambda n: c.job_types[self.add_job_type(n)]),
              "named"),
        ]

    def _route(self, path: str, method: str, handler: Any, kind: str | None = None) -> Route:
        write = method != "GET"
        operation = path.rsplit("/", 1)[-1] if "{" not in path.rsplit("/", 1)[-1] else path.split("/")[-2]

        async def endpoint(request: Request) -> Response:
            response = await self._serve(request, handler, write, kind or operation, operation)
            await self.door.record(request, response)
            return response

        return Route(path, endpoint, methods=[method])

    async def _serve(self, request: Request, handler: Any, write: bool, kind: str, operation: str) -> Response:
        self.requests += 1
        if (refused := self._refuse_key(request.headers.get("authorization", ""), operation)) is not None:
            return JSONResponse({"message": refused}, status_code=401)
        refusal = self.limits.admit(API_KEY)
        if refusal is not None:
            return self._throttled(refusal.retry_after)
        try:
            early = await self.door.before(request, write)
            if early is not None:
                if early.status_code == 429:
                    self.limits.hold(API_KEY, float(early.headers["Retry-After"]))
                return early
            query = Query(request.query_params, dict(request.path_params), self.company.zone)
            try:
                body = await self._body(request, kind) if write else None
                answer = handler(query, body)
            except Refused as exc:
                if exc.status == 429:
                    self.limits.hold(API_KEY, float(exc.body["retry_after"]))
                    return self._throttled(exc.body["retry_after"])
                return JSONResponse(exc.body, status_code=exc.status)
            status, answer = answer if isinstance(answer, tuple) else (200, answer)
            if write:
                self.writes[kind] += 1
                if self.door.lose_answer(write):
                    self.lost += 1
                    return JSONResponse({"message": "Gateway Timeout"}, status_code=504)
            return JSONResponse(answer, status_code=status)
        finally:
            self.limits.done(API_KEY)

    def _refuse_key(self, header: str, operation: str) -> str | None:
        scheme, _, key = header.partition(" ")
        if scheme != "Token" or key not in (API_KEY, APP_KEY):
            return "Unauthorized: send Authorization: Token <your company's API key>"
        if self.strict_keys and key == API_KEY and operation in APPLICATION_ONLY:
            return f"Unauthorized: {operation} takes an Application API Key or an OAuth token, not a Company API Key"
        if self.strict_keys and key == APP_KEY and operation in COMPANY_ONLY:
            return f"Unauthorized: {operation} takes a Company API Key or an OAuth token"
        return None

    async def _body(self, request: Request, kind: str) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise invalid("body", "must be JSON") from None
        if not isinstance(body, dict):
            raise invalid("body", "must be a JSON object")
        self.ignored += [(kind, k) for k in body if k not in FIELDS.get(kind, set(body))]
        return body

    def _throttled(self, seconds: float) -> Response:
        self.count_429 += 1
        return JSONResponse({"message": "Too Many Requests"}, status_code=429,
                            headers={"Retry-After": str(max(1, round(seconds)))})

    # ----- handlers that are more than one call -----
    def _company(self) -> dict[str, Any]:
        return {"id": COMPANY_ID, "name": COMPANY_NAME, "support_email": "office@example.com", "phone_number": "2175550100",
                "logo_url": "", "website": "", "default_arrival_window": "60", "time_zone": self.zone,
                "address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "zip": "62701", "country": "US"}}

    def _add_item(self, q: Query, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        jid, now = q.path["job_id"], self._seconds()
        self.company._job(jid)
        adds = self.line_item_adds[jid]
        while adds and adds[0] <= now - 60:
            adds.popleft()
        if len(adds) >= self.line_items_per_minute:
            raise Refused(429, {"retry_after": wait(adds[0] + 60 - now)})
        made = self.company.add_item(jid, body)
        adds.append(now)
        return 201, made

    def _items(self, jid: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"url": f"/jobs/{jid}/line_items", "data": items}

    @staticmethod
    def _named(body: dict[str, Any], make: Any) -> dict[str, Any]:
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise invalid("name", "is required")
        made = dict(make(body["name"]))
        made.pop("created_at", None)
        return made

    def _new_lead_source(self, name: str) -> dict[str, Any]:
        return self.company.lead_sources[self.add_lead_source(name)]


def main() -> None:
    import argparse

    from tests.fakes.servicetitan import seed_person
    from tests.fakes.standalone import serve

    parser = argparse.ArgumentParser(description="A fake Housecall Pro on a loopback port")
    parser.add_argument("--port", type=int, default=8768)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--p429", type=float, default=0.0)
    parser.add_argument("--p503", type=float, default=0.0)
    parser.add_argument("--p-lost", type=float, default=0.0, help="share of writes done, then answered 504")
    parser.add_argument("--customers", type=int, default=3, help="customers to seed, each with an address and a phone")
    args = parser.parse_args()
    fake = FakeHousecallPro(Chaos(latency=args.latency, p429=args.p429, p503=args.p503, p_lost=args.p_lost))
    fake.add_employee("Dana", "Reyes")
    fake.add_employee("Sam", "Ortiz")
    for n in range(args.customers):
        name, street = seed_person(n)
        fake.add_customer(name, street, "Springfield", f"627{n % 100:02d}", mobile=f"217555{n:04d}")
    base = f"http://127.0.0.1:{args.port}"
    serve(fake.app, args.port, f"Housecall Pro fake at {base}\n  api url:        {base}\n"
          f"  access token:   {API_KEY} (send Authorization: Token <it>)")


if __name__ == "__main__":
    main()
