"""A fake QuickBooks Online Accounting API (v3), built from the community OpenAPI, webhook
description and rate limits in ../shared/specs/quickbooks and the accounting notes in
../shared/specs/README.md, for the accounting connector's tests and benchmarks.

What it serves, all on one loopback host (Intuit splits them over three):
- OAuth 2 (appcenter.intuit.com/connect/oauth2, oauth.platform.intuit.com/oauth2/v1/tokens/bearer):
  an authorization code (the consent is granted at once, answered with `code`, `state` and `realmId`),
  access tokens of an hour, refresh tokens that rotate (see tests/fakes/oauth2.py);
- /v3/company/{realmId}/: customer, item, invoice (send, void, pdf) and payment (void), `query` and
  `cdc`, with the rules of tests/fakes/quickbooks_company.py and answers in Intuit's envelope
  ({"Invoice": {...}, "time": ...}; errors {"Fault": {"Error": [...], "type": ...}});
- `requestid` on any write: at most 50 characters, unique per company; the same one again gets the
  first answer back (tests/fakes/replays.py), also when that answer was lost on the way;
- 500 requests a minute and 10 at once per company, 429 with Retry-After beyond them
  (tests/fakes/tenant_limits.py), and the shared chaos knobs of tests/fakes/chaos.py;
- webhooks: `deliver` POSTs the changes, signed with the verifier token (`intuit-signature`),
  in the older payload or the CloudEvents one, repeated and shuffled on demand.

Run it standalone on a loopback port: python -m tests.fakes.quickbooks --port 8767
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fsm_mcp.clock import Clock
from tests.fakes.chaos import Chaos, Door
from tests.fakes.oauth2 import Authority, Grant, OAuthError
from tests.fakes.quickbooks_company import ENTITIES, Change, Company, Fault, invalid, missing
from tests.fakes.quickbooks_query import run as run_query
from tests.fakes.replays import Replays
from tests.fakes.signed_hooks import Delivery, Sender
from tests.fakes.tenant_limits import TenantLimits

REALM = "9341453050000001"
CLIENT_ID, CLIENT_SECRET = "fake-qbo-client", "fake-qbo-secret"
VERIFIER_TOKEN = "fake-qbo-verifier-token"
SCOPE = "com.intuit.quickbooks.accounting"
AUTHORIZE_PATH, TOKEN_PATH = "/connect/oauth2", "/oauth2/v1/tokens/bearer"
ACCESS_TTL, REFRESH_TTL = 3600, 8_726_400  # an hour; 101 days, as Intuit's x_refresh_token_expires_in
CDC_DAYS, CDC_MOST = 30, 1000
VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided", "Emailed": "emailed",
         "Merge": "merged"}


def fault(status: int, kind: str, code: str, message: str, detail: str, at: datetime,
          headers: dict[str, str] | None = None) -> JSONResponse:
    error = {"Message": message, "Detail": detail, "code": code}
    return JSONResponse({"Fault": {"Error": [error], "type": kind}, "time": stamp(at)}, status_code=status, headers=headers)


def stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeQuickBooks:
    def __init__(self, chaos: Chaos | None = None, clock: Clock | None = None, realms: tuple[str, ...] = (REALM,),
                 per_minute: int = 500, at_once: int = 10) -> None:
        self.clock = clock or Clock()
        self.chaos = chaos or Chaos()
        self.door = Door(self.chaos, self._throttled, lambda: self._fault(
            503, "SystemFault", "10000", "An application error has occurred", "Service Unavailable"))
        self.companies = {realm: Company(realm, self.clock.now) for realm in realms}
        self.limits = TenantLimits(self._seconds, per_minute, at_once)
        self.auth = Authority(CLIENT_ID, CLIENT_SECRET, self.clock.now, ACCESS_TTL, REFRESH_TTL)
        self.replays = Replays(longest=50)
        self.hooks = Sender("intuit-signature", VERIFIER_TOKEN)
        self.notified: dict[str, int] = dict.fromkeys(realms, 0)  # changes already delivered, per company
        self.app = Starlette(routes=self._routes())

    def _fault(self, status: int, kind: str, code: str, message: str, detail: str,
               headers: dict[str, str] | None = None) -> JSONResponse:
        return fault(status, kind, code, message, detail, self.clock.now(), headers)

    def _throttled(self, seconds: float) -> Response:
        return self._fault(429, "SystemFault", "3001", "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                           "The request limit was reached.", {"Retry-After": str(max(1, round(seconds)))})

    def _seconds(self) -> float:
        return time.monotonic() + self.clock.offset.total_seconds()

    # ----- seeding and acting as the business's bookkeeper would in QuickBooks -----
    def company(self, realm: str = REALM) -> Company:
        return self.companies[realm]

    def connect(self, realm: str = REALM) -> dict[str, Any]:
        """A token answer as the code exchange gives it, without the browser: for a connector's settings."""
        return self._token_answer(self.auth.issue(Grant((realm,), SCOPE)))

    def add_customer(self, name: str, email: str | None = None, phone: str | None = None, realm: str = REALM) -> str:
        body: dict[str, Any] = {"DisplayName": name}
        given, _, family = name.partition(" ")
        body |= {"GivenName": given, "FamilyName": family}
        if email:
            body["PrimaryEmailAddr"] = {"Address": email}
        if phone:
            body["PrimaryPhone"] = {"FreeFormNumber": phone}
        return str(self.company(realm).create("Customer", body)["Id"])

    def pay(self, invoice_id: str, amount: str | None = None, realm: str = REALM) -> str:
        """The customer paid (all of the balance, or `amount`) and it was recorded in QuickBooks."""
        company = self.company(realm)
        invoice = company.read("Invoice", invoice_id)
        paying = amount or str(invoice["Balance"])
        payment = company.create("Payment", {"CustomerRef": invoice["CustomerRef"], "TotalAmt": paying, "Line": [
            {"Amount": paying, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}]})
        return str(payment["Id"])

    # ----- routes -----
    def _routes(self) -> list[Route]:
        base = "/v3/company/{realm}"
        r = self._route
        routes = [Route(AUTHORIZE_PATH, self.authorize, methods=["GET"]), Route(TOKEN_PATH, self.token, methods=["POST"]),
                  r(f"{base}/query", "GET", lambda c, q, _: {"QueryResponse": self._query(c, q)}),
                  r(f"{base}/cdc", "GET", lambda c, q, _: {"CDCResponse": [{"QueryResponse": self._cdc(c, q)}]}),
                  Route(f"{base}/invoice/{{id}}/pdf", self.pdf, methods=["GET"])]
        for entity in ENTITIES:
            path = f"{base}/{entity.lower()}"
            routes += [
                r(path, "POST", lambda c, q, b, e=entity: self._post(c, e, None, q, b)),
                r(f"{path}/{{id}}", "GET", lambda c, q, _, e=entity: {e: c.read(e, q.path_params["id"])}),
                r(f"{path}/{{id}}", "POST", lambda c, q, b, e=entity: self._post(c, e, q.path_params["id"], q, b)),
            ]
            if entity in ("Invoice", "Payment"):
                routes.append(r(f"{path}/{{id}}/void", "POST", lambda c, q, b, e=entity: self._void(c, e, q.path_params["id"], q, b)))
        routes.append(r(f"{base}/invoice/{{id}}/send", "POST",
                        lambda c, q, _: {"Invoice": c.sent(q.path_params["id"], q.query_params.get("sendTo"))}))
        return routes

    def _route(self, path: str, method: str, handler: Callable[[Company, Request, Any], dict[str, Any]]) -> Route:
        write = method == "POST"

        async def endpoint(request: Request) -> Response:
            response = await self._serve(request, handler, write)
            with contextlib.suppress(ValueError):  # a body that was not JSON: refused above; the record keeps JSON
                await self.door.record(request, response)
            return response

        return Route(path, endpoint, methods=[method])

    async def _serve(self, request: Request, handler: Any, write: bool) -> Response:
        realm = request.path_params["realm"]
        grant = self.auth.bearer(request.headers.get("authorization", ""))
        if grant is None:
            return self._fault(401, "AuthenticationFault", "3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                         "Token expired, revoked or invalid: refresh the access token.")
        if realm not in grant.tenants or realm not in self.companies:
            return self._fault(403, "AuthorizationFault", "3100", "message=ApplicationAuthorizationFailed; errorCode=003100; "
                         "statusCode=403", f"The token does not grant access to company {realm}.")
        refusal = self.limits.admit(realm)
        if refusal is not None:
            return self._throttled(refusal.retry_after)
        try:
            early = await self.door.before(request, write)
            if early is not None:
                if early.status_code == 429:
                    self.limits.hold(realm, float(early.headers["Retry-After"]))
                return early
            key = request.query_params.get("requestid") if write else None
            if key is not None:
                if not key or self.replays.too_long(key):
                    return self._answer(400, {"Fault": {"Error": [invalid("requestid", "requestid must be 1 to 50 "
                                                         "characters, unique per company.").error], "type": "ValidationFault"}})
                if (first := self.replays.first(realm, key)) is not None:
                    return self._answer(*first)
            status, body = await self._run(handler, self.companies[realm], request, write)
            if key is not None and status < 500:
                self.replays.keep(realm, key, status, body)
            if status == 200 and self.door.lose_answer(write):
                return self._fault(504, "SystemFault", "10000", "Gateway Timeout", "The request timed out.")
            return self._answer(status, body)
        finally:
            self.limits.done(realm)

    async def _run(self, handler: Any, company: Company, request: Request, write: bool) -> tuple[int, dict[str, Any]]:
        try:
            body: Any = None
            if write:
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    raise Fault("2010", "Request has invalid or unsupported property",
                                "The request body is not valid JSON.") from None
            return 200, {**handler(company, request, body), "time": stamp(self.clock.now())}
        except (AttributeError, TypeError):  # a property of the wrong shape (a string where an object goes)
            exc = invalid("body", "A property of the request has the wrong type; see the entity's schema.")
            return exc.status, {"Fault": {"Error": [exc.error], "type": exc.kind}, "time": stamp(self.clock.now())}
        except Fault as exc:
            return exc.status, {"Fault": {"Error": [exc.error], "type": exc.kind}, "time": stamp(self.clock.now())}

    @staticmethod
    def _answer(status: int, body: dict[str, Any]) -> Response:
        return JSONResponse(body, status_code=status, headers={"intuit_tid": uuid.uuid4().hex})

    # ----- writes, queries, change data capture -----
    @staticmethod
    def _post(company: Company, entity: str, ident: str | None, request: Request, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid(entity, f"The request body must be a {entity} object.")
        if request.query_params.get("operation") == "void" and entity in ("Invoice", "Payment"):
            return {entity: company.void(entity, str(ident or body.get("Id") or ""), body)}
        if ident is None and not body.get("Id"):  # Intuit's create; with an Id, POST /{entity} updates
            return {entity: company.create(entity, body)}
        sparse = body.get("sparse") is True or request.query_params.get("sparse") == "true"
        return {entity: company.update(entity, ident, body, sparse)}

    @staticmethod
    def _void(company: Company, entity: str, ident: str, request: Request, body: Any) -> dict[str, Any]:
        if request.query_params.get("operation") != "void":
            raise missing("operation")
        return {entity: company.void(entity, ident, body if isinstance(body, dict) else {})}

    @staticmethod
    def _query(company: Company, request: Request) -> dict[str, Any]:
        text = request.query_params.get("query")
        if not text:
            raise missing("query")
        return run_query(company, text)

    def _cdc(self, company: Company, request: Request) -> list[dict[str, Any]]:
        names = [n.strip() for n in (request.query_params.get("entities") or "").split(",") if n.strip()]
        if not names:
            raise missing("entities")
        entities = [next((e for e in ENTITIES if e.lower() == n.lower()), "") for n in names]
        if "" in entities:
            raise invalid("entities", f"entities may name {', '.join(ENTITIES)}.")
        raw = request.query_params.get("changedSince")
        if not raw:
            raise missing("changedSince")
        try:
            since = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise invalid("changedSince", "changedSince must be a date-time, e.g. 2025-10-10T14:20:30-07:00.") from None
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        if since < self.clock.now() - timedelta(days=CDC_DAYS):
            raise invalid("changedSince", f"changedSince may be at most {CDC_DAYS} days ago.")
        found = company.changed_since(entities, since, CDC_MOST)
        return [{e: rows, "startPosition": 1, "maxResults": len(rows), "totalCount": len(rows)} if rows else {}
                for e, rows in found.items()]

    async def pdf(self, request: Request) -> Response:
        answer = await self._serve(request, lambda c, q, _: {"Invoice": c.read("Invoice", q.path_params["id"])}, False)
        if answer.status_code != 200:
            return answer
        doc_number = json.loads(bytes(answer.body))["Invoice"]["DocNumber"]
        return Response(f"%PDF-1.4\n% invoice {doc_number}\n%%EOF\n".encode(), media_type="application/pdf")

    # ----- OAuth 2 -----
    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        try:
            if q.get("response_type") != "code":
                raise OAuthError(400, "unsupported_response_type", "response_type must be code.")
            if SCOPE not in (q.get("scope") or "").split():
                raise OAuthError(400, "invalid_scope", f"The scope must include {SCOPE}.")
            realm = q.get("realmId") or next(iter(self.companies))
            code = self.auth.authorize(q.get("client_id", ""), q.get("redirect_uri", ""), (realm,), q.get("scope", ""))
        except OAuthError as exc:
            return JSONResponse(exc.body, status_code=exc.status)
        query = urlencode({"code": code, "state": q.get("state", ""), "realmId": realm})
        return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        try:
            issued = self.auth.token(form, request.headers.get("authorization", ""))
        except OAuthError as exc:
            return JSONResponse(exc.body, status_code=exc.status)
        return JSONResponse(self._token_answer(issued))

    def _token_answer(self, issued: Any) -> dict[str, Any]:
        left = int((issued.grant.refresh_expires - self.clock.now()).total_seconds())
        return self.auth.answer(issued, token_type="bearer", x_refresh_token_expires_in=left)

    # ----- webhooks -----
    def notifications(self, changes: list[tuple[str, Change]], form: str = "legacy", per_delivery: int | None = None
                      ) -> list[Any]:
        """Payloads announcing `changes` ((realm, change) pairs), `per_delivery` changes each (all in one by default):
        Intuit's older {"eventNotifications": [...]} or the CloudEvents list (`type` qbo.<entity>.<verb>.v1)."""
        size = per_delivery or max(1, len(changes))
        groups = [changes[i:i + size] for i in range(0, len(changes), size)]
        if form == "cloudevents":
            return [[{"specversion": "1.0", "id": str(uuid.uuid4()), "source": "intuit.quickbooks",
                      "type": f"qbo.{c.entity.lower()}.{VERBS[c.operation]}.v1", "datacontenttype": "application/json",
                      "time": stamp(c.at), "intuitentityid": c.id, "intuitaccountid": realm, "data": {}}
                     for realm, c in group] for group in groups]
        if form != "legacy":
            raise ValueError("form is 'legacy' or 'cloudevents'")
        payloads = []
        for group in groups:
            realms = list(dict.fromkeys(realm for realm, _ in group))
            payloads.append({"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [
                {"name": c.entity, "id": c.id, "operation": c.operation, "lastUpdated": stamp(c.at)}
                for r, c in group if r == realm]}} for realm in realms]})
        return payloads

    def pending(self) -> list[tuple[str, Change]]:
        """The changes not yet delivered, and mark them delivered."""
        found = []
        for realm, company in self.companies.items():
            found += [(realm, c) for c in company.changes[self.notified[realm]:]]
            self.notified[realm] = len(company.changes)
        return found

    async def deliver(self, url: str, changes: list[tuple[str, Change]] | None = None, form: str = "legacy",
                      repeat: int = 1, shuffle: bool = False, per_delivery: int | None = None,
                      wrong_signature: bool = False, client: Any = None) -> list[Delivery]:
        """POST signed notifications of `changes` (by default every change not yet delivered) to `url`."""
        chosen = self.pending() if changes is None else changes
        if not chosen:
            return []
        payloads = self.notifications(chosen, form, per_delivery)
        return await self.hooks.post(url, self.hooks.prepare(payloads, repeat, shuffle, wrong_signature), client)


def main() -> None:
    import argparse

    from tests.fakes.servicetitan import seed_person
    from tests.fakes.standalone import serve

    parser = argparse.ArgumentParser(description="A fake QuickBooks Online on a loopback port")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--p429", type=float, default=0.0)
    parser.add_argument("--p503", type=float, default=0.0)
    parser.add_argument("--p-lost", type=float, default=0.0, help="share of writes done, then answered 504")
    parser.add_argument("--customers", type=int, default=3, help="customers to seed")
    args = parser.parse_args()
    fake = FakeQuickBooks(Chaos(latency=args.latency, p429=args.p429, p503=args.p503, p_lost=args.p_lost))
    for n in range(args.customers):
        name, _ = seed_person(n)
        fake.add_customer(name, phone=f"(217) 555-{n:04d}")
    tokens = fake.connect()
    base = f"http://127.0.0.1:{args.port}"
    serve(fake.app, args.port, f"QuickBooks fake at {base}\n  api:            {base}/v3/company/{REALM}\n"
          f"  authorize:      {base}{AUTHORIZE_PATH}\n  token:          {base}{TOKEN_PATH}\n"
          f"  client id:      {CLIENT_ID}\n  client secret:  {CLIENT_SECRET}\n  realm id:       {REALM}\n"
          f"  verifier token: {VERIFIER_TOKEN}\n  refresh token:  {tokens['refresh_token']}\n"
          f"  access token:   {tokens['access_token']} (an hour)")


if __name__ == "__main__":
    main()
