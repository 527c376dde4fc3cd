"""A fake Xero (Accounting API 2.0, identity and webhooks), built from the vendor's OpenAPI documents
in ../shared/specs/xero and the accounting notes in ../shared/specs/README.md, for the accounting
connector's tests and benchmarks.

What it serves, all on one loopback host (Xero splits them over login., identity. and api.xero.com):
- OAuth 2: /identity/connect/authorize (consent granted at once; `offline_access` is needed for a
  refresh token), /connect/token (access tokens of 30 minutes, refresh tokens that rotate, see
  tests/fakes/oauth2.py), /connections (the organisations the app may reach);
- /api.xro/2.0/: Contacts, Items, Invoices (and Email), Payments, with the `Xero-Tenant-Id` header
  naming the organisation, `If-Modified-Since`, `where`, `order`, `page`/`pageSize` on lists, the
  rules of tests/fakes/xero_org.py, and ValidationException bodies (or, with summarizeErrors=false,
  200 with each element's ValidationErrors);
- `Idempotency-Key` on PUT and POST, at most 128 characters: the same key again, for the same
  organisation, gets the first answer back without doing the write again, also when that answer
  was lost on the way;
- 60 calls a minute, 5 at once and 5,000 a day per organisation: 429 with Retry-After and
  X-Rate-Limit-Problem; X-MinLimit-Remaining and X-DayLimit-Remaining on every answer; and the
  shared chaos knobs of tests/fakes/chaos.py;
- webhooks signed with the webhook key (`x-xero-signature`): `intent_to_receive` runs Xero's check
  (correctly signed deliveries must be answered 200, wrongly signed ones 401) and only an endpoint
  that passed it gets events from `deliver`, repeated and shuffled on demand.

Run it standalone on a loopback port: python -m tests.fakes.xero --port 8768
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import string
import time
import uuid
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fsm_mcp.clock import Clock
from tests.fakes.chaos import Chaos, Door
from tests.fakes.oauth2 import Authority, Grant, OAuthError
from tests.fakes.replays import Replays
from tests.fakes.signed_hooks import Delivery, Sender
from tests.fakes.tenant_limits import TenantLimits
from tests.fakes.xero_org import Event, Invalid, NotFound, Organisation, ms_date
from tests.fakes.xero_where import BadFilter, matcher, ordering, resolve

TENANT = "4f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c01"
CLIENT_ID, CLIENT_SECRET = "FAKEXEROCLIENTID0000000000000001", "fake-xero-secret"
WEBHOOK_KEY = "fake-xero-webhook-key"
SCOPE = "openid profile email offline_access accounting.transactions accounting.contacts accounting.settings"
GRACE = 1800  # seconds a rotated-out refresh token still works, "in case the response is lost" (Xero)
AUTHORIZE_PATH, TOKEN_PATH, API = "/identity/connect/authorize", "/connect/token", "/api.xro/2.0"
ACCESS_TTL, REFRESH_TTL = 1800, 60 * 86_400
SCOPES = {"Contacts": "accounting.contacts", "Invoices": "accounting.transactions",
          "Payments": "accounting.transactions", "Items": "accounting.settings"}
SINGLE = {"Contacts": "ContactID", "Invoices": "InvoiceID", "Payments": "PaymentID", "Items": "ItemID"}


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"Type": None, "Title": title, "Status": status, "Detail": detail, "Instance": str(uuid.uuid4()),
                         "Extensions": {}}, status_code=status, headers=headers)


def validation(elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
            "Elements": elements}


class FakeXero:
    def __init__(self, chaos: Chaos | None = None, clock: Clock | None = None,
                 tenants: dict[str, str] | None = None, per_minute: int = 60, at_once: int = 5, per_day: int = 5000) -> None:
        self.clock = clock or Clock()
        self.chaos = chaos or Chaos()
        self.door = Door(self.chaos, lambda wait: self._throttled("minute", int(wait)),
                         lambda: problem(503, "Service Unavailable", "The Xero API is temporarily unavailable."))
        self.orgs = {t: Organisation(t, name, self.clock.now) for t, name in (tenants or {TENANT: "Demo Company (US)"}).items()}
        self.connections = {t: str(uuid.uuid4()) for t in self.orgs}
        self.limits = TenantLimits(self._seconds, per_minute, at_once, per_day)
        self.auth = Authority(CLIENT_ID, CLIENT_SECRET, self.clock.now, ACCESS_TTL, REFRESH_TTL, refresh_needs="offline_access",
                              grace=GRACE)
        self.replays = Replays(longest=128)
        self.hooks = Sender("x-xero-signature", WEBHOOK_KEY)
        self.endpoints: dict[str, str] = {}  # webhook URL -> "OK" once it passed the intent to receive, else "FAILED"
        self.notified = dict.fromkeys(self.orgs, 0)
        self.sequence = 0
        self.rng = random.Random(self.chaos.seed)
        self.app = Starlette(routes=self._routes())

    def _seconds(self) -> float:
        return time.monotonic() + self.clock.offset.total_seconds()

    # ----- seeding, and what the bookkeeper does in Xero -----
    def org(self, tenant: str = TENANT) -> Organisation:
        return self.orgs[tenant]

    def connect(self, scope: str = SCOPE) -> dict[str, Any]:
        """A token answer as the code exchange gives it, without the browser: for a connector's settings."""
        return self._token_answer(self.auth.issue(Grant(tuple(self.orgs), scope)))

    def add_contact(self, name: str, email: str | None = None, phone: str | None = None, tenant: str = TENANT) -> str:
        first, _, last = name.partition(" ")
        body: dict[str, Any] = {"Name": name, "FirstName": first, "LastName": last, "EmailAddress": email or ""}
        if phone:
            body["Phones"] = [{"PhoneType": "MOBILE", "PhoneNumber": phone}]
        return str(self.org(tenant).save_contact(body)["ContactID"])

    def pay(self, invoice_id: str, amount: str | None = None, tenant: str = TENANT) -> str:
        """The customer paid (all that is due, or `amount`) and the bookkeeper recorded it in Xero."""
        org = self.org(tenant)
        due = amount or str(org.get("Invoices", invoice_id)["AmountDue"])
        return str(org.pay({"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"},
                            "Date": self.clock.now().date().isoformat(), "Amount": due})["PaymentID"])

    # ----- routes -----
    def _routes(self) -> list[Route]:
        r = self._route
        routes = [Route(AUTHORIZE_PATH, self.authorize, methods=["GET"]), Route(TOKEN_PATH, self.token, methods=["POST"]),
                  Route("/connections", self.list_connections, methods=["GET"]),
                  Route("/Connections", self.list_connections, methods=["GET"]),
                  Route("/connections/{id}", self.delete_connection, methods=["DELETE"]),
                  Route("/Connections/{id}", self.delete_connection, methods=["DELETE"])]
        for kind in ("Contacts", "Invoices", "Payments", "Items"):
            routes += [r(f"{API}/{kind}", "GET", kind, self._list), r(f"{API}/{kind}/{{id}}", "GET", kind, self._one),
                       r(f"{API}/{kind}", "PUT", kind, self._create), r(f"{API}/{kind}", "POST", kind, self._save),
                       r(f"{API}/{kind}/{{id}}", "POST", kind, self._save)]
        routes.append(r(f"{API}/Invoices/{{id}}/Email", "POST", "Invoices", self._email))
        return routes

    def _route(self, path: str, method: str, kind: str, handler: Any) -> Route:
        async def endpoint(request: Request) -> Response:
            response = await self._serve(request, kind, handler, method != "GET")
            with contextlib.suppress(ValueError):  # a body that was not JSON: refused; the record keeps JSON only
                await self.door.record(request, response)
            return response

        return Route(path, endpoint, methods=[method])

    async def _serve(self, request: Request, kind: str, handler: Any, write: bool) -> Response:
        grant = self.auth.bearer(request.headers.get("authorization", ""))
        if grant is None:
            return problem(401, "Unauthorized", "TokenExpired: the access token is missing, unknown or expired",
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        tenant = (request.headers.get("xero-tenant-id") or "").lower()
        if tenant not in grant.tenants or tenant not in self.orgs:
            return problem(403, "Forbidden", "AuthenticationUnsuccessful: the Xero-Tenant-Id header must name an "
                           "organisation this app is connected to")
        if not any(s in grant.scope.split() for s in (SCOPES[kind], f"{SCOPES[kind]}.read")) or \
                (write and SCOPES[kind] not in grant.scope.split()):
            return problem(403, "Forbidden", f"AuthorizationUnsuccessful: the scope {SCOPES[kind]} was not granted")
        refusal = self.limits.admit(tenant)
        if refusal is not None:
            return self._throttled(refusal.problem, refusal.retry_after)
        try:
            early = await self.door.before(request, write)
            if early is not None:
                if early.status_code == 429:
                    self.limits.hold(tenant, float(early.headers["Retry-After"]))
                return early
            key = request.headers.get("idempotency-key") if write else None
            if key is not None:
                if not key or self.replays.too_long(key):
                    return self._answer(tenant, 400, validation([{"ValidationErrors": [
                        {"Message": "The Idempotency-Key header must be 1 to 128 characters."}]}]))
                if (first := self.replays.first(tenant, key)) is not None:
                    return self._answer(tenant, *first)
            status, body = await self._run(handler, self.orgs[tenant], kind, request)
            if key is not None and status < 500:
                self.replays.keep(tenant, key, status, body)
            if status < 300 and self.door.lose_answer(write):
                return problem(504, "Gateway Timeout", "The request timed out.")
            return self._answer(tenant, status, body)
        finally:
            self.limits.done(tenant)

    async def _run(self, handler: Any, org: Organisation, kind: str, request: Request) -> tuple[int, Any]:
        try:
            body: Any = None
            if request.method != "GET":
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    raise Invalid("The request body is not valid JSON.") from None
            return handler(org, kind, request, body)
        except NotFound:
            return 404, {"Type": None, "Title": "Not Found", "Status": 404, "Detail": "The resource you're looking for "
                         "cannot be found"}
        except (Invalid, BadFilter) as exc:
            messages = exc.messages if isinstance(exc, Invalid) else [str(exc)]
            return 400, validation([{"ValidationErrors": [{"Message": m} for m in messages]}])

    def _answer(self, tenant: str, status: int, body: Any) -> Response:
        minute, day = self.limits.remaining(tenant)
        headers = {"X-MinLimit-Remaining": str(minute), "X-DayLimit-Remaining": str(day), "X-AppMinLimit-Remaining": "9999"}
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    def _throttled(self, problem_kind: str, seconds: int) -> Response:
        return problem(429, "Too Many Requests", f"Rate limit exceeded ({problem_kind})",
                       {"Retry-After": str(max(1, seconds)), "X-Rate-Limit-Problem": problem_kind})

    def _envelope(self, kind: str, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "fsm-mcp fake", "DateTimeUTC": ms_date(self.clock.now()),
                kind: rows, **extra}

    # ----- reads -----
    def _one(self, org: Organisation, kind: str, request: Request, _: Any) -> tuple[int, Any]:
        ident = request.path_params["id"]
        if kind == "Contacts" and ident.lower() not in org.tables[kind]:  # GET /Contacts/{ContactNumber} shares the path
            found = [c for c in org.tables[kind].values() if str(c.get("ContactNumber") or "").lower() == ident.lower()]
            if found:
                return 200, self._envelope(kind, found[:1])
        return 200, self._envelope(kind, [org.get(kind, ident)])

    def _list(self, org: Organisation, kind: str, request: Request, _: Any) -> tuple[int, Any]:
        q = request.query_params
        rows = list(org.tables[kind].values())
        if since := request.headers.get("if-modified-since"):
            moment = modified_since(since)
            rows = [r for r in rows if org.changed[r[SINGLE[kind]]] >= moment]
        for param, field in (("IDs", SINGLE[kind]), ("InvoiceNumbers", "InvoiceNumber"), ("ContactIDs", "Contact.ContactID"),
                             ("Statuses", "Status")):
            if q.get(param):
                wanted = {v.strip().lower() for v in q[param].split(",")}
                rows = [r for r in rows if resolve(r, field) in wanted]
        if term := (q.get("searchTerm") or "").lower():
            fields = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress") if kind == "Contacts" \
                else ("InvoiceNumber", "Reference")
            rows = [r for r in rows if any(term in str(r.get(f) or "").lower() for f in fields)]
        if kind in ("Contacts", "Invoices") and q.get("includeArchived") != "true":
            rows = [r for r in rows if r.get("ContactStatus", r.get("Status")) not in ("ARCHIVED",)]
        keep = matcher(q.get("where"))
        rows = [r for r in rows if keep(r)]
        if order := ordering(q.get("order")):
            rows.sort(key=lambda r: (resolve(r, order[0]) is not None, resolve(r, order[0]) or 0), reverse=order[1])
        if not q.get("page"):
            return 200, self._envelope(kind, rows)
        try:
            page, size = int(q["page"]), int(q.get("pageSize") or 100)
        except ValueError:
            raise BadFilter("page and pageSize must be whole numbers.") from None
        if page < 1 or not 1 <= size <= 1000:
            raise BadFilter("page starts at 1; pageSize is 1 to 1000.")
        shown = rows[(page - 1) * size: page * size]
        return 200, self._envelope(kind, shown, pagination={"page": page, "pageSize": size,
                                                            "pageCount": -(-len(rows) // size), "itemCount": len(rows)})

    # ----- writes -----
    def _create(self, org: Organisation, kind: str, request: Request, body: Any) -> tuple[int, Any]:
        elements = [{k: v for k, v in e.items() if k != SINGLE[kind]} if isinstance(e, dict) else e
                    for e in self._elements(kind, body)]
        return self._batch(org, kind, request, elements, None)

    def _save(self, org: Organisation, kind: str, request: Request, body: Any) -> tuple[int, Any]:
        return self._batch(org, kind, request, self._elements(kind, body), request.path_params.get("id"))

    def _email(self, org: Organisation, kind: str, request: Request, body: Any) -> tuple[int, Any]:
        org.emailed(request.path_params["id"])
        return 204, None

    @staticmethod
    def _elements(kind: str, body: Any) -> list[Any]:
        if isinstance(body, dict) and isinstance(body.get(kind), list):
            return list(body[kind])
        if isinstance(body, dict) and body and kind not in body:
            return [body]
        raise Invalid(f"The body must be {{\"{kind}\": [...]}} with at least one element.")

    def _batch(self, org: Organisation, kind: str, request: Request, elements: list[Any], ident: str | None
               ) -> tuple[int, Any]:
        summarize = request.query_params.get("summarizeErrors", "true").lower() != "false"
        before = copy.deepcopy((org.tables, org.changed, org.events)) if summarize and len(elements) > 1 else None
        saved, failed = [], []
        for element in elements:
            try:
                if not isinstance(element, dict):
                    raise Invalid(f"Each element of {kind} must be an object.")
                saved.append(self._save_one(org, kind, element, ident))
            except (Invalid, NotFound) as exc:
                messages = exc.messages if isinstance(exc, Invalid) else [f"{kind[:-1]} {exc} does not exist."]
                row = {**(element if isinstance(element, dict) else {}), "HasValidationErrors": True,
                       "StatusAttributeString": "ERROR", "ValidationErrors": [{"Message": m} for m in messages]}
                failed.append(row)
                saved.append(row)
        if failed and summarize:
            if before is not None:
                org.tables, org.changed, org.events = before
            return 400, validation(failed)
        return 200, self._envelope(kind, [{**r, "StatusAttributeString": r.get("StatusAttributeString", "OK")} for r in saved])

    @staticmethod
    def _save_one(org: Organisation, kind: str, element: dict[str, Any], ident: str | None) -> dict[str, Any]:
        if kind == "Contacts":
            return org.save_contact(element, ident)
        if kind == "Items":
            return org.save_item(element, ident)
        if kind == "Invoices":
            return org.save_invoice(element, ident)
        payment_id = ident or element.get("PaymentID")
        return org.unpay(str(payment_id), element) if payment_id else org.pay(element)

    # ----- identity -----
    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        try:
            if q.get("response_type") != "code":
                raise OAuthError(400, "unsupported_response_type", "response_type must be code.")
            code = self.auth.authorize(q.get("client_id", ""), q.get("redirect_uri", ""), tuple(self.orgs), q.get("scope", ""))
        except OAuthError as exc:
            return JSONResponse(exc.body, status_code=exc.status)
        query = urlencode({"code": code, "scope": q.get("scope", ""), "state": q.get("state", ""),
                           "session_state": uuid.uuid4().hex})
        return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        try:
            issued = self.auth.token(form, request.headers.get("authorization", ""))
        except OAuthError as exc:
            return JSONResponse(exc.body, status_code=exc.status)
        return JSONResponse(self._token_answer(issued))

    def _token_answer(self, issued: Any) -> dict[str, Any]:
        extra = {"id_token": uuid.uuid4().hex} if "openid" in issued.grant.scope.split() else {}
        return self.auth.answer(issued, token_type="Bearer", scope=issued.grant.scope, **extra)

    async def list_connections(self, request: Request) -> Response:
        grant = self.auth.bearer(request.headers.get("authorization", ""))
        if grant is None:
            return problem(401, "Unauthorized", "TokenExpired: the access token is missing, unknown or expired")
        when = self.clock.now().isoformat(timespec="microseconds").replace("+00:00", "")
        return JSONResponse([{"id": self.connections[t], "authEventId": self.connections[t], "tenantId": t,
                              "tenantType": "ORGANISATION", "tenantName": self.orgs[t].name, "createdDateUtc": when,
                              "updatedDateUtc": when} for t in grant.tenants])

    async def delete_connection(self, request: Request) -> Response:
        grant = self.auth.bearer(request.headers.get("authorization", ""))
        if grant is None:
            return problem(401, "Unauthorized", "TokenExpired: the access token is missing, unknown or expired")
        tenant = next((t for t, c in self.connections.items() if c == request.path_params["id"]), None)
        if tenant is None or tenant not in grant.tenants:
            return Response(status_code=404)
        grant.tenants = tuple(t for t in grant.tenants if t != tenant)
        return Response(status_code=204)

    # ----- webhooks -----
    def _payload(self, events: list[tuple[str, Event]]) -> dict[str, Any]:
        first = self.sequence + 1
        self.sequence += max(1, len(events))
        return {"events": [{"resourceUrl": f"https://api.xero.com/api.xro/2.0/{e.category.title()}s/{e.resource_id}",
                            "resourceId": e.resource_id, "eventDateUtc": e.at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
                            "eventType": e.kind, "eventCategory": e.category, "tenantId": tenant,
                            "tenantType": "ORGANISATION"} for tenant, e in events],
                "firstEventSequence": first, "lastEventSequence": self.sequence, "entropy": self._entropy()}

    def _entropy(self) -> str:
        return "".join(self.rng.choices(string.ascii_uppercase, k=20))

    async def intent_to_receive(self, url: str, client: Any = None) -> bool:
        """Xero's check before it sends an endpoint anything: empty deliveries, some signed with the webhook key and
        some not; the endpoint passes when it answered every right one 200 and every wrong one 401."""
        empty = {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": self._entropy()}
        right = self.hooks.prepare([empty], repeat=2)
        wrong = self.hooks.prepare([{**empty, "entropy": self._entropy()}], repeat=2, wrong_signature=True)
        mixed = right + wrong
        self.rng.shuffle(mixed)
        await self.hooks.post(url, mixed, client, timeout=5.0)
        passed = all(d.status == 200 for d in right) and all(d.status == 401 for d in wrong)
        self.endpoints[url] = "OK" if passed else "FAILED"
        return passed

    def pending(self) -> list[tuple[str, Event]]:
        found = []
        for tenant, org in self.orgs.items():
            found += [(tenant, e) for e in org.events[self.notified[tenant]:]]
            self.notified[tenant] = len(org.events)
        return found

    async def deliver(self, url: str, events: list[tuple[str, Event]] | None = None, repeat: int = 1,
                      shuffle: bool = False, per_delivery: int | None = None, wrong_signature: bool = False,
                      client: Any = None) -> list[Delivery]:
        """POST signed events (by default every one not yet delivered) to `url`, which must have passed the intent
        to receive."""
        if self.endpoints.get(url) != "OK":
            raise RuntimeError(f"{url} has not passed Xero's intent to receive; Xero sends it nothing")
        chosen = self.pending() if events is None else events
        if not chosen:
            return []
        size = per_delivery or len(chosen)
        payloads = [self._payload(chosen[i:i + size]) for i in range(0, len(chosen), size)]
        return await self.hooks.post(url, self.hooks.prepare(payloads, repeat, shuffle, wrong_signature), client)


def modified_since(text: str) -> datetime:
    """If-Modified-Since as the spec gives it (ISO 8601) or as HTTP dates are written."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise BadFilter("If-Modified-Since must be a date-time, e.g. 2020-02-06T12:17:43.202-08:00.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main() -> None:
    import argparse

    from tests.fakes.servicetitan import seed_person
    from tests.fakes.standalone import serve

    parser = argparse.ArgumentParser(description="A fake Xero on a loopback port")
    parser.add_argument("--port", type=int, default=8768)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--p429", type=float, default=0.0)
    parser.add_argument("--p503", type=float, default=0.0)
    parser.add_argument("--p-lost", type=float, default=0.0, help="share of writes done, then answered 504")
    parser.add_argument("--contacts", type=int, default=3, help="contacts to seed")
    args = parser.parse_args()
    fake = FakeXero(Chaos(latency=args.latency, p429=args.p429, p503=args.p503, p_lost=args.p_lost))
    for n in range(args.contacts):
        name, _ = seed_person(n)
        fake.add_contact(name, phone=f"(217) 555-{n:04d}")
    tokens = fake.connect()
    base = f"http://127.0.0.1:{args.port}"
    serve(fake.app, args.port, f"Xero fake at {base}\n  api:            {base}{API}\n  authorize:      {base}{AUTHORIZE_PATH}\n"
          f"  token:          {base}{TOKEN_PATH}\n  connections:    {base}/connections\n"
          f"  client id:      {CLIENT_ID}\n  client secret:  {CLIENT_SECRET}\n  tenant id:      {TENANT}\n"
          f"  webhook key:    {WEBHOOK_KEY}\n  refresh token:  {tokens['refresh_token']}\n"
          f"  access token:   {tokens['access_token']} (30 minutes)")


if __name__ == "__main__":
    main()
