"""A fake ServiceTitan (v2 tenant API), built from the published OpenAPI documents and the
notes in ../shared/specs/README.md, for the connector's tests and benchmarks.

It keeps what the connector touches: tokens that expire, customers with locations and
contacts, jobs with appointments, technician assignments, notes, job invoices and their
items, payments (listed; made in the office: `receive_payment`), the settings lists (business units, job types, technicians, cancel and hold
reasons). Paths, parameters, payload shapes and status codes follow the spec; validation
errors come back as ApiErrorResponse. Chaos (latency, 429s, 503s, lost answers) comes
from `tests/fakes/chaos.py`.

Run it standalone on a loopback port: python -m tests.fakes.servicetitan --port 8765
"""

from __future__ import annotations

import itertools
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fsm_mcp.connectors.servicetitan.config import ServiceTitanSettings
from tests.fakes.chaos import Chaos, Door

TENANT = "1001"
CLIENT_ID, CLIENT_SECRET, APP_KEY = "fake-client", "fake-secret", "fake-app-key"
APP_GUID = "5b0b8a1e-0000-4000-8000-00000000f5a0"
CAMPAIGN = 77


def connector_settings(url: str, **changes: Any) -> ServiceTitanSettings:
    """A ServiceTitan connector's settings, pointed at this fake served at `url`."""
    values: dict[str, Any] = {
        "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "app_key": APP_KEY,
        "app_guid": APP_GUID, "campaign_id": CAMPAIGN, "business_unit_id": 10, "api_url": url, "auth_url": url,
        "sync_interval": 0,
    }
    return ServiceTitanSettings.model_validate({**values, **changes})


def connector_env(url: str) -> dict[str, str]:
    """The same settings as `FSM_MCP_SERVICETITAN_*` variables, for a server or command in another process."""
    settings = connector_settings(url)
    values = {**settings.model_dump(exclude={"business_units", "skills", "cancel_reason", "hold_reason"}),
              "client_secret": CLIENT_SECRET, "app_key": APP_KEY}
    return {"FSM_MCP_BACKEND": "servicetitan",
            **{f"FSM_MCP_SERVICETITAN_{k.upper()}": str(v) for k, v in values.items() if v is not None}}


def stamp(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")


def parse_time(value: Any, field: str) -> datetime:
    """ServiceTitan wants every datetime with an offset; one without is a validation error."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(field, "The value is not a valid date-time.") from None
    if parsed.tzinfo is None:
        raise Invalid(field, "The date-time must include a UTC offset.")
    return parsed


def at(value: str) -> datetime:
    """A stored time, for comparing (the stored text varies in its fraction digits)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Invalid(Exception):
    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


def problem(status: int, title: str, errors: dict[str, list[str]] | None = None) -> JSONResponse:
    return JSONResponse({"type": "https://tools.ietf.org/html/rfc7231", "title": title, "status": status,
                         "traceId": secrets.token_hex(8), "errors": errors or {}, "data": {}}, status_code=status)


class FakeServiceTitan:
    def __init__(self, chaos: Chaos | None = None, token_ttl: int = 900) -> None:
        self.chaos = chaos or Chaos()
        self.door = Door(self.chaos, lambda wait: problem_429(wait), hold_tenant=True)
        self.token_ttl = token_ttl
        self.tokens: dict[str, float] = {}
        self.ids = itertools.count(1000)
        self.customers: dict[int, dict[str, Any]] = {}
        self.locations: dict[int, dict[str, Any]] = {}
        self.customer_contacts: dict[int, dict[str, Any]] = {}
        self.location_contacts: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.external: dict[int, dict[str, list[dict[str, str]]]] = {}  # job -> app guid -> externalData
        self.appointments: dict[int, dict[str, Any]] = {}
        self.assignments: list[dict[str, Any]] = []
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.invoices: dict[int, dict[str, Any]] = {}
        self.payments: dict[int, dict[str, Any]] = {}  # each with its modifiedOn, which the API does not show
        self.business_units = [{"id": unit, "active": True, "name": name, "createdOn": stamp(), "modifiedOn": stamp(),
                                "externalData": []} for unit, name in ((10, "HVAC Service"), (11, "Plumbing"))]
        self.job_types = [{"id": 20, "name": "Furnace repair"}, {"id": 21, "name": "Drain cleaning"},
                          {"id": 22, "name": "hvac"}, {"id": 23, "name": "plumbing"}]
        self.cancel_reasons = [{"id": 30, "name": "Customer canceled", "active": True}]
        self.hold_reasons = [{"id": 31, "name": "Waiting on parts", "active": True}]
        self.technicians: list[dict[str, Any]] = []
        self.app = Starlette(routes=self._routes())

    # ----- seeding (what the business already has in ServiceTitan) -----
    def add_technician(self, name: str, skills: str, active: bool = True) -> int:
        tid = next(self.ids)
        self.technicians.append({
            "id": tid, "name": name, "businessUnitId": 10, "createdOn": stamp(), "modifiedOn": stamp(),
            "email": None, "phoneNumber": None, "loginName": None, "dailyGoal": 0,
            "isManagedTech": False, "active": active,
            "customFields": [{"typeId": 501, "name": "Skills", "value": skills}],
        })
        return tid

    def add_customer(self, name: str, street: str, city: str, zip_code: str, phones: list[str] = (),  # type: ignore[assignment]
                     emails: list[str] = (), modified: datetime | None = None) -> int:  # type: ignore[assignment]
        body = {"name": name, "address": address(street, city, zip_code),
                "locations": [{"name": name, "address": address(street, city, zip_code)}],
                "contacts": [{"type": "MobilePhone", "value": p} for p in phones] + [{"type": "Email", "value": e} for e in emails]}
        created = self._create_customer(body, modified)
        return int(created["id"])

    # ----- routes -----
    def _routes(self) -> list[Route]:
        crm, jpm = f"/crm/v2/tenant/{TENANT}", f"/jpm/v2/tenant/{TENANT}"
        dispatch, settings, acc = f"/dispatch/v2/tenant/{TENANT}", f"/settings/v2/tenant/{TENANT}", f"/accounting/v2/tenant/{TENANT}"
        r = self._route
        return [
            Route("/connect/token", self.token, methods=["POST"]),
            r(f"{crm}/customers", "GET", self.list_customers), r(f"{crm}/customers", "POST", self.create_customer),
            r(f"{crm}/customers/contacts", "GET", self.list_customer_contacts),
            r(f"{crm}/customers/{{id:int}}", "GET", self.get_customer),
            r(f"{crm}/customers/{{id:int}}/contacts", "POST", self.add_customer_contact),
            r(f"{crm}/customers/{{id:int}}/contacts", "GET", self.customer_contacts_of),
            r(f"{crm}/locations", "GET", self.list_locations), r(f"{crm}/locations", "POST", self.create_location),
            r(f"{crm}/locations/contacts", "GET", self.list_location_contacts),
            r(f"{jpm}/jobs", "GET", self.list_jobs), r(f"{jpm}/jobs", "POST", self.create_job),
            r(f"{jpm}/jobs/{{id:int}}", "GET", self.get_job),
            r(f"{jpm}/jobs/{{id:int}}/complete", "PUT", self.complete_job),
            r(f"{jpm}/jobs/{{id:int}}/cancel", "PUT", self.cancel_job),
            r(f"{jpm}/jobs/{{id:int}}/hold", "PUT", self.hold_job),
            r(f"{jpm}/jobs/{{id:int}}/notes", "GET", self.list_notes), r(f"{jpm}/jobs/{{id:int}}/notes", "POST", self.add_note),
            r(f"{jpm}/job-types", "GET", self.list_job_types),
            r(f"{jpm}/job-cancel-reasons", "GET", lambda q: page_of(self.cancel_reasons, q)),
            r(f"{jpm}/job-hold-reasons", "GET", lambda q: page_of(self.hold_reasons, q)),
            r(f"{jpm}/appointments", "GET", self.list_appointments),
            r(f"{jpm}/appointments/{{id:int}}/reschedule", "PATCH", self.reschedule),
            r(f"{dispatch}/appointment-assignments", "GET", self.list_assignments),
            r(f"{dispatch}/appointment-assignments/assign-technicians", "POST", self.assign),
            r(f"{settings}/technicians", "GET", lambda q: page_of(self.technicians, q, active=True)),
            r(f"{settings}/business-units", "GET", lambda q: page_of(self.business_units, q, active=True)),
            r(f"{acc}/invoices", "GET", self.list_invoices),
            r(f"{acc}/invoices/{{id:int}}", "PATCH", self.patch_invoice),
            r(f"{acc}/invoices/{{id:int}}/items", "PATCH", self.add_item),
            r(f"{acc}/payments", "GET", self.list_payments),
        ]

    def _route(self, path: str, method: str, handler: Any) -> Route:
        write = method != "GET"

        async def endpoint(request: Request) -> Response:
            response = await self._serve(request, handler, write)
            await self.door.record(request, response)
            return response

        return Route(path, endpoint, methods=[method])

    async def _serve(self, request: Request, handler: Any, write: bool) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.tokens.get(token, 0) < time.monotonic():
            return problem(401, "Unauthorized")
        if request.headers.get("ST-App-Key") != APP_KEY:
            return problem(401, "Unauthorized: missing or unknown ST-App-Key")
        if (early := await self.door.before(request, write)) is not None:
            return early
        try:
            query = Query(request)
            if write:
                body = await request.json() if await request.body() else None
                answer = handler(query, body)
            else:
                answer = handler(query)
        except Invalid as exc:
            return problem(exc.status, "One or more validation errors occurred." if exc.status == 400 else exc.message,
                           {exc.field: [exc.message]})
        if self.door.lose_answer(write):
            return problem(504, "Gateway Timeout")
        return JSONResponse(answer) if answer is not None else Response(status_code=200)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != CLIENT_ID \
                or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        token = secrets.token_urlsafe(16)
        self.tokens[token] = time.monotonic() + self.token_ttl
        return JSONResponse({"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer"})

    # ----- CRM -----
    def list_customers(self, q: Query) -> dict[str, Any]:
        rows = list(self.customers.values())
        if ids := q.ids():
            rows = [c for c in rows if c["id"] in ids]
        return page_of(q.modified(rows), q)

    def get_customer(self, q: Query) -> dict[str, Any]:
        return dict(self._get(self.customers, q.path_id, "id"))

    def create_customer(self, q: Query, body: Any) -> dict[str, Any]:
        return self._create_customer(body)

    def _create_customer(self, body: Any, modified: datetime | None = None) -> dict[str, Any]:
        need(body, "name", "locations", "address")
        if not body["locations"]:
            raise Invalid("locations", "At least one location is required.")
        check_address(body["address"], "address")
        now = stamp(modified)
        cid = next(self.ids)
        self.customers[cid] = {"id": cid, "active": True, "name": body["name"], "type": body.get("type") or "Residential",
                               "address": body["address"], "customFields": [], "balance": 0, "doNotMail": False,
                               "doNotService": False, "createdOn": now, "createdById": 1, "modifiedOn": now, "mergedToId": None}
        contacts = [self._contact(self.customer_contacts, c, customerId=cid, modified=modified) for c in body.get("contacts") or []]
        locations = [self._create_location({**loc, "customerId": cid}, modified) for loc in body["locations"]]
        return {**dict(self.customers[cid]), "locations": locations,
                "contacts": [strip(c, "customerId", "modifiedOn", "phoneSettings") for c in contacts]}

    def add_customer_contact(self, q: Query, body: Any) -> dict[str, Any]:
        self._get(self.customers, q.path_id, "id")
        contact = self._contact(self.customer_contacts, body, customerId=q.path_id)
        self.customers[q.path_id]["modifiedOn"] = stamp()
        return strip(contact, "customerId")

    def customer_contacts_of(self, q: Query) -> dict[str, Any]:
        self._get(self.customers, q.path_id, "id")
        rows = [strip(c, "customerId") for c in self.customer_contacts.values() if c["customerId"] == q.path_id]
        return page_of(rows, q)

    def list_customer_contacts(self, q: Query) -> dict[str, Any]:
        q.need_modified()
        return page_of(q.modified(list(self.customer_contacts.values())), q)

    def list_locations(self, q: Query) -> dict[str, Any]:
        rows = list(self.locations.values())
        if customer := q.int("customerId"):
            rows = [loc for loc in rows if loc["customerId"] == customer]
        if ids := q.ids():
            rows = [loc for loc in rows if loc["id"] in ids]
        return page_of(q.modified(rows), q)

    def create_location(self, q: Query, body: Any) -> dict[str, Any]:
        need(body, "name", "address", "customerId")
        self._get(self.customers, int(body["customerId"]), "customerId")
        return self._create_location(body)

    def _create_location(self, body: Any, modified: datetime | None = None) -> dict[str, Any]:
        check_address(body["address"], "address")
        lid, now = next(self.ids), stamp(modified)
        self.locations[lid] = {"id": lid, "customerId": int(body["customerId"]), "active": True, "name": body["name"],
                               "address": body["address"], "customFields": [], "createdOn": now, "createdById": 1,
                               "modifiedOn": now, "mergedToId": None, "taxZoneId": None}
        contacts = [self._contact(self.location_contacts, c, locationId=lid, modified=modified) for c in body.get("contacts") or []]
        return {**self.locations[lid], "contacts": [strip(c, "locationId", "modifiedOn", "phoneSettings") for c in contacts]}

    def list_location_contacts(self, q: Query) -> dict[str, Any]:
        q.need_modified()
        return page_of(q.modified(list(self.location_contacts.values())), q)

    def _contact(self, table: dict[int, dict[str, Any]], body: Any, modified: datetime | None = None, **owner: int) -> dict[str, Any]:
        need(body, "type", "value")
        if body["type"] not in ("Phone", "Email", "Fax", "MobilePhone"):
            raise Invalid("type", f"'{body['type']}' is not a valid contact type.")
        kid = next(self.ids)
        table[kid] = {"id": kid, "type": body["type"], "value": body["value"], "memo": body.get("memo"),
                      # The spec requires phoneSettings on every contact; an e-mail's carries an empty number.
                      "phoneSettings": {"phoneNumber": body["value"] if "Phone" in body["type"] else "", "doNotText": False},
                      "modifiedOn": stamp(modified), **owner}
        return table[kid]

    # ----- jobs and appointments -----
    def create_job(self, q: Query, body: Any) -> dict[str, Any]:
        need(body, "customerId", "locationId", "businessUnitId", "jobTypeId", "priority", "campaignId", "appointments")
        customer = self._get(self.customers, int(body["customerId"]), "customerId")
        location = self._get(self.locations, int(body["locationId"]), "locationId")
        if location["customerId"] != customer["id"]:
            raise Invalid("locationId", "The location does not belong to the customer.")
        if body["businessUnitId"] not in {b["id"] for b in self.business_units}:
            raise Invalid("businessUnitId", "Business unit not found.")
        if body["jobTypeId"] not in {t["id"] for t in self.job_types}:
            raise Invalid("jobTypeId", "Job type not found.")
        if body["campaignId"] != CAMPAIGN:
            raise Invalid("campaignId", "Campaign not found.")
        if body["priority"] not in ("Low", "Normal", "High", "Urgent"):
            raise Invalid("priority", "Priority must be one of Low, Normal, High, Urgent.")
        if not body["appointments"]:
            raise Invalid("appointments", "At least one appointment is required.")
        jid, now = next(self.ids), stamp()
        appointment_ids = []
        for i, a in enumerate(body["appointments"]):
            start, end = parse_time(a.get("start"), f"appointments[{i}].start"), parse_time(a.get("end"), f"appointments[{i}].end")
            if end <= start:
                raise Invalid(f"appointments[{i}].end", "The end must be after the start.")
            aid = next(self.ids)
            self.appointments[aid] = {"id": aid, "jobId": jid, "appointmentNumber": f"{jid}-{i + 1}", "start": stamp(start),
                                      "end": stamp(end), "arrivalWindowStart": a.get("arrivalWindowStart"),
                                      "arrivalWindowEnd": a.get("arrivalWindowEnd"), "status": "Scheduled",
                                      "specialInstructions": None, "createdOn": now, "modifiedOn": now}
            appointment_ids.append(aid)
            for tech in a.get("technicianIds") or []:
                self._assign(aid, int(tech))
        self.jobs[jid] = {"id": jid, "jobNumber": str(jid), "customerId": customer["id"], "locationId": location["id"],
                          "jobStatus": "Scheduled", "completedOn": None, "businessUnitId": body["businessUnitId"],
                          "jobTypeId": body["jobTypeId"], "priority": body["priority"], "campaignId": body["campaignId"],
                          "summary": body.get("summary"), "customFields": [], "appointmentCount": len(appointment_ids),
                          "firstAppointmentId": appointment_ids[0], "lastAppointmentId": appointment_ids[-1],
                          "recallForId": None, "warrantyId": None, "noCharge": False,
                          "notificationsEnabled": True, "createdOn": now, "createdById": 1, "modifiedOn": now,
                          "tagTypeIds": [], "leadCallId": None, "bookingId": None, "soldById": None}
        if ext := body.get("externalData"):
            self.external[jid] = {ext["applicationGuid"]: list(ext["externalData"])}
        # ServiceTitan opens the job's invoice itself.
        iid = next(self.ids)
        self.invoices[iid] = {"id": iid, "summary": body.get("summary"), "subTotal": "0.00", "salesTax": "0.00",
                              "total": "0.00", "balance": "0.00", "customer": {"id": customer["id"], "name": customer["name"]},
                              "job": {"id": jid, "number": str(jid), "type": None}, "modifiedOn": now, "items": [],
                              "invoiceDate": now}
        self.notes[jid] = []
        return self._job_view(self.jobs[jid], q.get("externalDataApplicationGuid"))

    def get_job(self, q: Query) -> dict[str, Any]:
        return self._job_view(self._get(self.jobs, q.path_id, "id"), q.get("externalDataApplicationGuid"))

    def list_jobs(self, q: Query) -> dict[str, Any]:
        rows = list(self.jobs.values())
        if ids := q.ids():
            rows = [j for j in rows if j["id"] in ids]
        if customer := q.int("customerId"):
            rows = [j for j in rows if j["customerId"] == customer]
        if wanted := q.one_of("jobStatus", JOB_STATUSES):
            rows = [j for j in rows if j["jobStatus"] in wanted]
        if after := q.get("createdOnOrAfter"):
            rows = [j for j in rows if at(j["createdOn"]) >= parse_time(after, "createdOnOrAfter")]
        tech = q.int("technicianId")
        starts_after, starts_before = q.get("appointmentStartsOnOrAfter"), q.get("appointmentStartsBefore")
        if tech or starts_after or starts_before:
            def fits(job: dict[str, Any]) -> bool:
                for a in self.appointments.values():
                    if a["jobId"] != job["id"]:
                        continue
                    if starts_after and at(a["start"]) < parse_time(starts_after, "appointmentStartsOnOrAfter"):
                        continue
                    if starts_before and at(a["start"]) >= parse_time(starts_before, "appointmentStartsBefore"):
                        continue
                    if tech and not any(s["appointmentId"] == a["id"] and s["technicianId"] == tech for s in self.assignments):
                        continue
                    return True
                return False
            rows = [j for j in rows if fits(j)]
        rows = sort_rows(q.modified(rows), q.get("sort"))
        guid = q.get("externalDataApplicationGuid")
        return page_of([self._job_view(j, guid) for j in rows], q)

    def _job_view(self, job: dict[str, Any], guid: str | None) -> dict[str, Any]:
        # externalDataApplicationGuid chooses whose external data each job shows; it does not filter.
        return {**job, "externalData": self.external.get(job["id"], {}).get(guid or "", [])}

    def _appointment_of(self, job: dict[str, Any]) -> dict[str, Any]:
        return self.appointments[job["firstAppointmentId"]]

    def complete_job(self, q: Query, body: Any) -> None:
        job = self._get(self.jobs, q.path_id, "id")
        need(body, "completedOn")
        parse_time(body["completedOn"], "completedOn")
        if job["jobStatus"] in ("Completed", "Canceled"):
            raise Invalid("id", "Job already completed or cancelled.", 409)
        if not any(s["jobId"] == job["id"] for s in self.assignments):
            raise Invalid("id", "Job has no assigned technicians.", 409)
        job.update(jobStatus="Completed", completedOn=body["completedOn"], modifiedOn=stamp())
        self._appointment_of(job)["status"] = "Done"

    def cancel_job(self, q: Query, body: Any) -> None:
        job = self._get(self.jobs, q.path_id, "id")
        need(body, "reasonId", "memo")
        if body["reasonId"] not in {r["id"] for r in self.cancel_reasons}:
            raise Invalid("reasonId", "Cancel reason not found.")
        if job["jobStatus"] in ("Completed", "Canceled"):
            raise Invalid("id", "Job already completed or cancelled.", 409)
        job.update(jobStatus="Canceled", modifiedOn=stamp())
        self._appointment_of(job)["status"] = "Canceled"

    def hold_job(self, q: Query, body: Any) -> None:
        job = self._get(self.jobs, q.path_id, "id")
        need(body, "reasonId", "memo")
        if body["reasonId"] not in {r["id"] for r in self.hold_reasons}:
            raise Invalid("reasonId", "Hold reason not found.")
        job.update(jobStatus="Hold", modifiedOn=stamp())
        self._appointment_of(job)["status"] = "Hold"

    def list_notes(self, q: Query) -> dict[str, Any]:
        self._get(self.jobs, q.path_id, "id")
        return page_of(self.notes[q.path_id], q)

    def add_note(self, q: Query, body: Any) -> dict[str, Any]:
        self._get(self.jobs, q.path_id, "id")
        need(body, "text")
        note = {"text": body["text"], "isPinned": bool(body.get("pinToTop")), "createdById": 1, "createdOn": stamp(),
                "modifiedOn": stamp()}
        self.notes[q.path_id].append(note)
        return note

    def list_job_types(self, q: Query) -> dict[str, Any]:
        return page_of([{**t, "modifiedOn": stamp(), "externalData": []} for t in self.job_types], q)

    def list_appointments(self, q: Query) -> dict[str, Any]:
        rows = list(self.appointments.values())
        if ids := q.ids():
            rows = [a for a in rows if a["id"] in ids]
        if job := q.int("jobId"):
            rows = [a for a in rows if a["jobId"] == job]
        if tech := q.int("technicianId"):
            mine = {s["appointmentId"] for s in self.assignments if s["technicianId"] == tech}
            rows = [a for a in rows if a["id"] in mine]
        if after := q.get("startsOnOrAfter"):
            rows = [a for a in rows if at(a["start"]) >= parse_time(after, "startsOnOrAfter")]
        if before := q.get("startsBefore"):
            rows = [a for a in rows if at(a["start"]) < parse_time(before, "startsBefore")]
        if wanted := q.one_of("status", APPOINTMENT_STATUSES):
            rows = [a for a in rows if a["status"] in wanted]
        return page_of(sort_rows(q.modified(rows), q.get("sort")), q)

    def reschedule(self, q: Query, body: Any) -> dict[str, Any]:
        appointment = self._get(self.appointments, q.path_id, "id")
        need(body, "start", "end")
        start, end = parse_time(body["start"], "start"), parse_time(body["end"], "end")
        if end <= start:
            raise Invalid("end", "The end must be after the start.")
        appointment.update(start=stamp(start), end=stamp(end), modifiedOn=stamp())
        return appointment

    def list_assignments(self, q: Query) -> dict[str, Any]:
        rows = self.assignments
        if ids := q.int_list("appointmentIds"):
            rows = [s for s in rows if s["appointmentId"] in ids]
        if job := q.int("jobId"):
            rows = [s for s in rows if s["jobId"] == job]
        return page_of(rows, q)

    def assign(self, q: Query, body: Any) -> dict[str, Any]:
        need(body, "jobAppointmentId", "technicianIds")
        appointment = self._get(self.appointments, int(body["jobAppointmentId"]), "jobAppointmentId")
        for tech in body["technicianIds"]:
            self._assign(appointment["id"], int(tech))
        return appointment

    def _assign(self, appointment_id: int, tech: int) -> None:
        if tech not in {t["id"] for t in self.technicians}:
            raise Invalid("technicianIds", f"Technician {tech} not found.")
        appointment = self.appointments[appointment_id]
        if any(s["appointmentId"] == appointment_id and s["technicianId"] == tech for s in self.assignments):
            return
        name = next(t["name"] for t in self.technicians if t["id"] == tech)
        self.assignments.append({"id": next(self.ids), "technicianId": tech, "technicianName": name, "assignedById": 1,
                                 "assignedOn": stamp(), "status": "Scheduled", "isPaused": False,
                                 "jobId": appointment["jobId"], "appointmentId": appointment_id})

    # ----- accounting -----
    def list_invoices(self, q: Query) -> dict[str, Any]:
        rows = q.modified(list(self.invoices.values()))  # no sort: the invoices take none (orderBy names no values)
        if job := q.int("jobId"):
            rows = [i for i in rows if i["job"]["id"] == job]
        if ids := q.ids():
            rows = [i for i in rows if i["id"] in ids]
        return page_of(rows, q)

    def patch_invoice(self, q: Query, body: Any) -> None:
        invoice = self._get(self.invoices, q.path_id, "id")
        if body.get("tax") is not None:
            invoice["salesTax"] = money(Decimal(str(body["tax"])))
        self._total(invoice)

    def add_item(self, q: Query, body: Any) -> None:
        invoice = self._get(self.invoices, q.path_id, "id")
        need(body, "description", "quantity")
        quantity, price = Decimal(str(body["quantity"])), Decimal(str(body.get("unitPrice") or 0))
        invoice["items"].append({"id": next(self.ids), "description": body["description"], "quantity": str(quantity),
                                 "cost": "0.00", "totalCost": "0.00", "price": money(price), "type": "Service",
                                 "skuName": body.get("skuName"), "skuId": body.get("skuId") or 0,
                                 "total": money(quantity * price), "inventory": False, "taxable": True,
                                 "membershipTypeId": 0, "modifiedOn": stamp(), "order": len(invoice["items"]) + 1})
        self._total(invoice)

    def bill_in_app(self, job_id: str, *lines: tuple[str, str, str]) -> int:
        """A technician puts the work on the job's invoice in ServiceTitan's app: (description, quantity, unit
        price) lines. Returns the invoice's id."""
        invoice = next(i for i in self.invoices.values() if i["job"]["id"] == int(job_id) and not i.get("adjustmentToId"))
        for description, quantity, price in lines:
            self.add_item(_Path(invoice["id"]), {"description": description, "quantity": quantity, "unitPrice": price})
        return int(invoice["id"])

    def receive_payment(self, *splits: tuple[int, str], memo: str = "") -> int:
        """The office records a payment in ServiceTitan: (invoice id, amount) splits, each applied to its invoice."""
        pid, now = next(self.ids), stamp()
        applied = []
        for invoice_id, amount in splits:
            invoice = self._get(self.invoices, invoice_id, "invoiceId")
            paid = Decimal(amount)
            invoice.update(balance=money(Decimal(invoice["balance"]) - paid), modifiedOn=now)
            applied.append({"appliedTo": invoice_id, "appliedAmount": money(paid), "appliedOn": now, "appliedBy": "office"})
        first = self.invoices[splits[0][0]]
        self.payments[pid] = {"id": pid, "syncStatus": "Pending", "referenceNumber": str(pid), "date": now,
                              "type": "Credit Card", "typeId": "61", "total": money(sum((Decimal(a) for _, a in splits),
                                                                                       Decimal(0))),
                              "unappliedAmount": "0.00", "memo": memo, "customer": dict(first["customer"]),
                              "createdBy": "office", "appliedTo": applied, "customFields": [], "modifiedOn": now}
        return pid

    def list_payments(self, q: Query) -> dict[str, Any]:
        rows = q.modified(list(self.payments.values()))
        if ids := q.ids():
            rows = [p for p in rows if p["id"] in ids]
        if customer := q.int("customerId"):
            rows = [p for p in rows if p["customer"]["id"] == customer]
        body = page_of(rows, q)
        body["data"] = [strip(p, "modifiedOn") for p in body["data"]]  # DetailedPaymentResponse has no such field
        return body

    def _total(self, invoice: dict[str, Any]) -> None:
        subtotal = sum((Decimal(i["total"]) for i in invoice["items"]), Decimal(0))
        total = subtotal + Decimal(invoice["salesTax"])
        paid = sum((Decimal(a["appliedAmount"]) for p in self.payments.values() for a in p["appliedTo"]
                    if a["appliedTo"] == invoice["id"]), Decimal(0))
        invoice.update(subTotal=money(subtotal), total=money(total), balance=money(total - paid), modifiedOn=stamp())

    def _get(self, table: dict[int, dict[str, Any]], key: int, field: str) -> dict[str, Any]:
        if key not in table:
            raise Invalid(field, f"Entity with id {key} was not found.", 404)
        return table[key]


class _Path:
    """What a handler reads of a request made in the vendor's own app: the record's id."""

    def __init__(self, path_id: int) -> None:
        self.path_id = path_id


class Query:
    """A request's query, with what the parameters' descriptions allow held to: pages from 1, at most 5000 to a
    page (the README), `active` one of True/Any/False, `sort` a signed Id/ModifiedOn/CreatedOn."""

    def __init__(self, request: Request) -> None:
        self.params = request.query_params
        self.path_id = int(request.path_params.get("id", 0))
        if (page := self.int("page")) is not None and page < 1:
            raise Invalid("page", "Pages count from 1.")
        if (size := self.int("pageSize")) is not None and not 1 <= size <= 5000:
            raise Invalid("pageSize", "The page size must be 1 to 5000.")
        if (active := self.get("active")) is not None and active.lower() not in ("true", "any", "false"):
            raise Invalid("active", "The value must be True, Any or False.")
        if (sort := self.get("sort")) is not None and sort.lstrip("+-").lower() not in SORTABLE:
            raise Invalid("sort", "Sort by Id, ModifiedOn or CreatedOn, as +Field or -Field.")
        if (total := self.get("includeTotal")) is not None and total.lower() not in ("true", "false"):
            raise Invalid("includeTotal", "The value must be true or false.")

    def get(self, name: str) -> str | None:
        return self.params.get(name)

    def int(self, name: str) -> int | None:
        value = self.params.get(name)
        if not value:
            return None
        if not value.lstrip("-").isdigit():
            raise Invalid(name, f"The value '{value}' is not valid.")
        return int(value)

    def int_list(self, name: str) -> set[int]:
        value = self.params.get(name)
        if value and not all(v.strip().isdigit() for v in value.split(",")):
            raise Invalid(name, "The value must be ids separated by commas.")
        return {int(v) for v in value.split(",")} if value else set()

    def one_of(self, name: str, allowed: tuple[str, ...]) -> set[str]:
        """A comma-separated filter whose description lists the values it supports."""
        values = set(filter(None, (self.get(name) or "").split(",")))
        if unknown := values - set(allowed):
            raise Invalid(name, f"Unsupported value {', '.join(sorted(unknown))}: supported are {', '.join(allowed)}.")
        return values

    def ids(self) -> set[int]:
        ids = self.int_list("ids")
        if len(ids) > 50:
            raise Invalid("ids", "At most 50 ids may be given.")
        return ids

    def modified(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if after := self.get("modifiedOnOrAfter"):
            cut = parse_time(after, "modifiedOnOrAfter")
            rows = [r for r in rows if at(r["modifiedOn"]) >= cut]
        if before := self.get("modifiedBefore"):
            cut = parse_time(before, "modifiedBefore")
            rows = [r for r in rows if at(r["modifiedOn"]) < cut]
        if on := self.get("modifiedOn"):
            day = parse_time(on, "modifiedOn").date()
            rows = [r for r in rows if at(r["modifiedOn"]).date() == day]
        return sort_rows(rows, self.get("sort"))

    def need_modified(self) -> None:
        """The contact lists' descriptions: a date must be given (modifiedOn in the operation's, modifiedBefore in
        the parameters')."""
        if not any(self.get(p) for p in ("modifiedOn", "modifiedOnOrAfter", "modifiedBefore")):
            raise Invalid("modifiedOnOrAfter", "A modification date is required: give modifiedOn or modifiedOnOrAfter.")


SORTABLE = {"id": "id", "modifiedon": "modifiedOn", "createdon": "createdOn"}
JOB_STATUSES = ("Scheduled", "InProgress", "Hold", "Completed", "Canceled")  # what jobStatus supports
APPOINTMENT_STATUSES = ("Scheduled", "Dispatched", "Working", "Hold", "Done", "Canceled")


def sort_rows(rows: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
    if not sort or sort.lower() in ("+id", "id"):  # the tables are kept in id order (ids only grow)
        return rows
    field = SORTABLE[sort.lstrip("+-").lower()]
    def key(r: dict[str, Any]) -> tuple[Any, int]:
        return (at(r[field]) if field != "id" else r[field], r.get("id", 0))

    return sorted(rows, key=key, reverse=sort.startswith("-"))


def page_of(rows: list[dict[str, Any]], q: Query, active: bool = False) -> dict[str, Any]:
    if active and q.get("active") not in ("Any", "any"):
        rows = [r for r in rows if r.get("active", True) == (q.get("active") not in ("False", "false"))]
    page, size = q.int("page") or 1, q.int("pageSize") or 50
    chunk = rows[(page - 1) * size: page * size]
    body: dict[str, Any] = {"page": page, "pageSize": size, "hasMore": page * size < len(rows), "data": chunk}
    if q.get("includeTotal") in ("true", "True"):
        body["totalCount"] = len(rows)
    return body


def address(street: str, city: str, zip_code: str, state: str = "IL") -> dict[str, Any]:
    return {"street": street, "unit": None, "city": city, "state": state, "zip": zip_code, "country": "USA"}


def check_address(value: Any, field: str) -> None:
    for part in ("street", "city", "state", "zip", "country"):
        if not isinstance(value, dict) or not value.get(part):
            raise Invalid(f"{field}.{part}", f"The {part} field is required.")


def need(body: Any, *fields: str) -> None:
    for field in fields:
        if not isinstance(body, dict) or body.get(field) in (None, ""):
            raise Invalid(field, f"The {field} field is required.")


def strip(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def problem_429(wait: float) -> Response:
    seconds = max(1, int(wait + 0.999))
    return problem_with(429, "Too Many Requests", {"Retry-After": str(seconds)})


def problem_with(status: int, title: str, headers: dict[str, str]) -> Response:
    response = problem(status, title)
    response.headers.update(headers)
    return response


GIVEN = ("Ava", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jade", "Kurt", "Lena", "Milo")
FAMILY = ("Abbott", "Brandt", "Castillo", "Dunn", "Eriksen", "Fujita", "Grant", "Haddad", "Ibarra", "Jensen", "Kowalski")
STREETS = ("Oak St", "Elm Ave", "Birch Rd", "Cedar Ln", "Maple Dr", "Walnut Ct", "Spruce Way")


def seed_person(n: int) -> tuple[str, str]:
    """A distinct, plausible customer for seeding: name and street."""
    given, family = GIVEN[n % len(GIVEN)], FAMILY[(n // len(GIVEN)) % len(FAMILY)]
    suffix = f" {n // (len(GIVEN) * len(FAMILY))}" if n >= len(GIVEN) * len(FAMILY) else ""
    return f"{given} {family}{suffix}", f"{100 + 7 * n} {STREETS[n % len(STREETS)]}"


CALLER_GIVEN = ("Quinn", "Rosa", "Theo", "Uma", "Vera", "Wade", "Xena", "Yuri", "Zoe")
CALLER_FAMILY = ("Nakamura", "Okafor", "Petrov", "Quintero", "Rossi", "Sato", "Tanaka", "Umarov")
CALLER_STREET = ("Lakeshore", "Harbor", "Summit", "Prairie", "Canyon", "Meadow", "Ridge", "Bayview", "Orchard")
SUFFIX = ("Dr", "Rd", "Ave", "Ln", "Way", "Ct", "Pl", "Blvd")


def new_caller(n: int) -> tuple[str, str]:
    """A caller unlike anyone `seed_person` puts on file (a look-alike would rightly be asked about), for up
    to 72 callers: name and street."""
    name = f"{CALLER_GIVEN[n % len(CALLER_GIVEN)]} {CALLER_FAMILY[n // len(CALLER_GIVEN) % len(CALLER_FAMILY)]}"
    return name, f"{2000 + n} {CALLER_STREET[n % len(CALLER_STREET)]} {SUFFIX[n // len(CALLER_STREET) % len(SUFFIX)]}"


def main() -> None:
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description="A fake ServiceTitan on a loopback port")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--customers", type=int, default=3, help="customers to seed, each with a location and a phone")
    parser.add_argument("--technicians", type=int, default=1, help="technicians to seed (Dana Reyes, then Tech 2, ...)")
    args = parser.parse_args()
    fake = FakeServiceTitan(Chaos(latency=args.latency))
    fake.add_technician("Dana Reyes", "hvac; plumbing")
    for n in range(2, args.technicians + 1):
        fake.add_technician(f"Tech {n}", "hvac; plumbing")
    for n in range(args.customers):
        name, street = seed_person(n)
        fake.add_customer(name, street, "Springfield", f"627{n % 100:02d}", phones=[f"217555{n:04d}"])
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
