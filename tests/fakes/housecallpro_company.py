"""One Housecall Pro company as the fake keeps it: customers and their addresses, employees, jobs with
their schedule (appointments), assigned employees, notes, tags and line items, and the invoices the
business issues from a job in the app. The rules are the spec's, prose included:

- a customer needs one of first_name, last_name, email, mobile_number, home_number, work_number;
  an address added to a customer needs street, city, state, zip and country;
- a job needs customer_id and an address_id of that customer; a schedule with `anytime` needs
  `anytime_start_date`; `invoice_number` is unique across the company's jobs (given one already
  taken: 422) and generated when left out; line items need a name, money in cents, quantities with
  at most two decimals;
- `work_status` is set by what the API allows and nothing else: a job is `needs scheduling` until it
  has a schedule and `scheduled` once it has; erasing the schedule makes it `needs scheduling` again.
  The API has no operation that starts, completes or cancels a job: those happen in the app, which
  the seeding methods `start`, `complete` and `cancel` stand for;
- a job's schedule cannot be changed through /schedule once it has more than one appointment;
- invoices are read-only: the business issues one in the app (`issue_invoice`) from the job's items.

Money is integer cents, as the spec has it. Times are kept in UTC and answered as ...Z."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tests.fakes.housecallpro_lists import Refused, invalid, not_found, parse_time, stamp, unprocessable

COMPANY_ID, COMPANY_NAME = "cmp_0f5a7e", "Reyes Heating & Plumbing"
WORK_STATUSES = ("needs scheduling", "scheduled", "in progress", "complete rated", "complete unrated",
                 "user canceled", "pro canceled")
STATUS_FILTER = {"unscheduled": ("needs scheduling",), "scheduled": ("scheduled",), "in_progress": ("in progress",),
                 "completed": ("complete rated", "complete unrated"), "canceled": ("user canceled", "pro canceled")}
KINDS = ("materials", "labor", "fixed gratuity", "fixed discount", "percent discount")
CONTACT = ("first_name", "last_name", "email", "mobile_number", "home_number", "work_number")
CUSTOMER_FIELDS = (*CONTACT, "company", "notifications_enabled", "tags", "lead_source", "notes")
PERMISSIONS = ("can_add_and_edit_job", "can_be_booked_online", "can_call_and_text_with_customers", "can_chat_with_customers",
               "can_delete_and_cancel_job", "can_edit_message_on_invoice", "can_see_street_view_data", "can_share_job",
               "can_take_payment_see_prices", "can_see_customers", "can_see_full_schedule", "can_see_future_jobs",
               "can_see_marketing_campaigns", "can_see_reporting", "can_edit_settings", "is_point_of_contact", "is_admin")


class Company:
    def __init__(self, now: Callable[[], datetime], zone: tzinfo) -> None:
        self.now, self.zone = now, zone
        self._ids = itertools.count(1)
        self.customers: dict[str, dict[str, Any]] = {}
        self.addresses: dict[str, dict[str, Any]] = {}  # address id -> address, with its customer_id
        self.employees: dict[str, dict[str, Any]] = {}
        self.active: set[str] = set()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.appointments: dict[str, list[dict[str, Any]]] = {}  # job id -> its appointments
        self.line_items: dict[str, list[dict[str, Any]]] = {}  # job id -> its line items
        self.invoices: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, Any]] = {}
        self.lead_sources: dict[str, dict[str, Any]] = {}
        self.job_types: dict[str, dict[str, Any]] = {}
        self._invoice_numbers = itertools.count(1001)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06x}"

    # ----- customers and addresses -----
    def create_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        if not any(body.get(f) for f in CONTACT):
            raise Refused(400, {"message": "One of first_name, last_name, email, mobile_number, home_number or "
                                           "work_number is required", "first_name": "is required"})
        for address in body.get("addresses") or []:
            if not isinstance(address, dict):
                raise invalid("addresses", "must be a list of addresses")
        now = stamp(self.now())
        cid = self.new_id("cus")
        self.customers[cid] = {"id": cid, **dict.fromkeys(CUSTOMER_FIELDS), "notifications_enabled": True, "tags": [],
                               "created_at": now, "updated_at": now, "company_name": COMPANY_NAME, "company_id": COMPANY_ID}
        self._set_customer(cid, body)
        for address in body.get("addresses") or []:
            self._add_address(cid, address)
        return self.customer(cid)

    def update_customer(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        self._customer(cid)
        if not any((body[f] if f in body else self.customers[cid][f]) for f in CONTACT):
            raise invalid("first_name", "is required: a customer keeps one of its name, email or phone numbers")
        self._set_customer(cid, body)
        self.customers[cid]["updated_at"] = stamp(self.now())
        return self.customer(cid)

    def _set_customer(self, cid: str, body: dict[str, Any]) -> None:
        for field in CUSTOMER_FIELDS:
            if field not in body:
                continue
            value = body[field]
            if field == "tags":
                if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                    raise invalid("tags", "must be a list of strings")
            elif field == "notifications_enabled":
                if not isinstance(value, bool):
                    raise invalid(field, "must be true or false")
            elif value is not None and not isinstance(value, str):
                raise invalid(field, "must be a string")
            self.customers[cid][field] = value

    def customer(self, cid: str, expand: tuple[str, ...] = ()) -> dict[str, Any]:
        record = dict(self._customer(cid))
        record["addresses"] = [self._address_out(a) for a in self.addresses.values() if a["customer_id"] == cid]
        if "attachments" in expand:
            record["attachments"] = []
        if "do_not_service" in expand:
            record["do_not_service"] = False
        return record

    def _customer(self, cid: str) -> dict[str, Any]:
        if cid not in self.customers:
            raise not_found("customer")
        return self.customers[cid]

    def add_address(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        self._customer(cid)
        for field in ("street", "city", "state", "zip", "country"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise invalid(field, "is required")
        address = self._add_address(cid, body)
        self.customers[cid]["updated_at"] = stamp(self.now())
        return address

    def _add_address(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        aid = self.new_id("adr")
        self.addresses[aid] = {"id": aid, "type": "service", "customer_id": cid, "created_at": stamp(self.now()),
                               **{f: body.get(f) for f in ("street", "street_line_2", "city", "state", "zip", "country")}}
        return self._address_out(self.addresses[aid])

    def address(self, cid: str, aid: str) -> dict[str, Any]:
        self._customer(cid)
        found = self.addresses.get(aid)
        if found is None or found["customer_id"] != cid:
            raise not_found("address")
        return self._address_out(found)

    def addresses_of(self, cid: str) -> list[dict[str, Any]]:
        self._customer(cid)
        return [{**self._address_out(a), "created_at": a["created_at"]} for a in self.addresses.values()
                if a["customer_id"] == cid]

    @staticmethod
    def _address_out(address: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in address.items() if k not in ("customer_id", "created_at")}

    # ----- employees -----
    def add_employee(self, first: str, last: str, role: str = "field tech", active: bool = True) -> str:
        eid = self.new_id("pro")
        self.employees[eid] = {"id": eid, "first_name": first, "last_name": last, "email": f"{first.lower()}@example.com",
                               "mobile_number": "", "color_hex": "2196f3", "avatar_url": "", "role": role,
                               "created_at": stamp(self.now()), "tags": [], "company_name": COMPANY_NAME,
                               "company_id": COMPANY_ID, "permissions": dict.fromkeys(PERMISSIONS, False)
                               | {"can_add_and_edit_job": True, "can_be_booked_online": True}}
        if active:
            self.active.add(eid)
        return eid

    def active_employees(self) -> list[dict[str, Any]]:
        return [dict(self.employees[e]) for e in self.employees if e in self.active]

    def _employees(self, ids: Any, field: str) -> list[str]:
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise invalid(field, "must be a list of employee ids")
        for eid in ids:
            if eid not in self.active:
                raise invalid(field, f"names {eid}, which is not an active employee of the company")
        return list(dict.fromkeys(ids))

    # ----- jobs -----
    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        for field in ("customer_id", "address_id"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise invalid(field, "is required")
        customer = self._customer(body["customer_id"])
        address = self.addresses.get(body["address_id"])
        if address is None or address["customer_id"] != customer["id"]:
            raise invalid("address_id", "must be an address of the customer")
        number = self._invoice_number(body.get("invoice_number"))
        employees = self._employees(body.get("assigned_employee_ids") or [], "assigned_employee_ids")
        items = [self._line_item(i, "line_items") for i in body.get("line_items") or []]
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise invalid("tags", "must be a list of tag names")
        for field in ("lead_source", "notes"):
            if body.get(field) is not None and not isinstance(body[field], str):
                raise invalid(field, "must be a string")
        job_type = self._job_type((body.get("job_fields") or {}).get("job_type_id"))
        schedule = self._schedule(body["schedule"], employees) if body.get("schedule") else None
        jid, now = self.new_id("job"), stamp(self.now())
        for name in tags:
            self.tag_named(name)
        self.jobs[jid] = {
            "id": jid, "invoice_number": number, "description": "", "customer_id": customer["id"],
            "address_id": address["id"], "notes": [], "work_status": "scheduled" if schedule else "needs scheduling",
            "work_timestamps": {"on_my_way_at": None, "started_at": None, "completed_at": None},
            "assigned_employee_ids": employees, "tags": list(dict.fromkeys(tags)), "lead_source": body.get("lead_source"),
            "job_type": job_type, "created_at": now, "updated_at": now, "canceled_at": None, "deleted_at": None,
            "anytime": bool(schedule and schedule["anytime"]),
        }
        self.appointments[jid] = [schedule] if schedule else []
        self.line_items[jid] = []
        for item in items:
            self._store_item(jid, item)
        if body.get("notes"):
            self.add_note(jid, {"content": body["notes"]})
        return self.job(jid)

    def _invoice_number(self, given: Any) -> str:
        taken = {j["invoice_number"] for j in self.jobs.values()}
        if given in (None, ""):
            number = str(next(self._invoice_numbers))
            while number in taken:
                number = str(next(self._invoice_numbers))
            return number
        if isinstance(given, bool) or not isinstance(given, int | float) or given != int(given):
            raise invalid("invoice_number", "must be a number")
        if str(int(given)) in taken:
            raise unprocessable("Invoice number has already been taken")
        return str(int(given))

    def _schedule(self, body: Any, employees: list[str]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid("schedule", "must be an object")
        if body.get("anytime"):
            if not body.get("anytime_start_date"):
                raise invalid("anytime_start_date", "is required when anytime is true")
            try:
                day = date.fromisoformat(body["anytime_start_date"])
            except (TypeError, ValueError):
                raise invalid("anytime_start_date", "must be a date, YYYY-MM-DD") from None
            start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
            return self._appointment(start, start + timedelta(days=1), 0, employees, anytime=True)
        for field in ("scheduled_start", "scheduled_end"):
            if field not in body:
                raise invalid(field, "is required in a schedule that is not anytime")
        window = body.get("arrival_window") or 0
        if not isinstance(window, int) or window < 0:
            raise invalid("arrival_window", "must be a whole number of minutes")
        start = parse_time(body["scheduled_start"], "scheduled_start", self.zone)
        end = parse_time(body["scheduled_end"], "scheduled_end", self.zone)
        return self._appointment(start, end, window, employees)

    def _appointment(self, start: datetime, end: datetime, window: int, employees: list[str],
                     anytime: bool = False) -> dict[str, Any]:
        if end < start:
            raise invalid("end_time", "must not be before the start time")
        return {"id": self.new_id("appt"), "start": start, "end": end, "arrival_window_minutes": window,
                "anytime": anytime, "dispatched_employees_ids": list(employees)}

    def job(self, jid: str, expand: tuple[str, ...] = ()) -> dict[str, Any]:
        job = self._job(jid)
        customer = self.customers[job["customer_id"]]
        appointments = self.appointments[jid]
        schedule: dict[str, Any] = {
            "scheduled_start": stamp(min((a["start"] for a in appointments), default=None)),
            "scheduled_end": stamp(max((a["end"] for a in appointments), default=None)),
            "arrival_window": appointments[0]["arrival_window_minutes"] if appointments else 0,
        }
        if "appointments" in expand:
            schedule["appointments"] = [self.appointment_out(a) for a in appointments]
        subtotal = sum(i["amount"] for i in self.line_items[jid] if "discount" not in i["kind"]) - sum(
            i["amount"] for i in self.line_items[jid] if "discount" in i["kind"])
        paid = sum(p["amount"] for inv in self.invoices.values() if inv["job_id"] == jid for p in inv["payments"])
        answer = {
            "id": jid, "invoice_number": job["invoice_number"], "description": job["description"],
            "customer": {**{k: customer[k] for k in ("id", *CONTACT, "company", "notifications_enabled", "lead_source",
                                                     "created_at", "updated_at", "company_name", "company_id", "tags")},
                         "notes": []},
            "address": self._address_out(self.addresses[job["address_id"]]),
            "notes": [dict(n) for n in job["notes"]], "work_status": job["work_status"],
            "work_timestamps": dict(job["work_timestamps"]), "schedule": schedule,
            "total_amount": subtotal, "outstanding_balance": subtotal - paid, "subtotal": subtotal,
            "assigned_employees": [dict(self.employees[e]) for e in job["assigned_employee_ids"]],
            "tags": list(job["tags"]), "original_estimate_id": None, "original_estimate_uuids": [],
            "lead_source": job["lead_source"], "job_fields": {"job_type": job["job_type"], "business_unit": None},
            "created_at": job["created_at"], "updated_at": job["updated_at"], "canceled_at": job["canceled_at"],
            "deleted_at": job["deleted_at"], "company_name": COMPANY_NAME, "company_id": COMPANY_ID,
        }
        if answer["job_fields"]["job_type"] is None:
            answer["job_fields"] = {}
        if "attachments" in expand:
            answer["attachments"] = []
        return answer

    def _job(self, jid: str) -> dict[str, Any]:
        if jid not in self.jobs:
            raise not_found("job")
        return self.jobs[jid]

    def touch(self, jid: str) -> None:
        self.jobs[jid]["updated_at"] = stamp(self.now())

    def appointment_out(self, a: dict[str, Any]) -> dict[str, Any]:
        return {"id": a["id"], "start_date": a["start"].astimezone(self.zone).date().isoformat(),
                "start_time": stamp(a["start"]), "end_time": stamp(a["end"]), "anytime": a["anytime"],
                "arrival_window_minutes": a["arrival_window_minutes"],
                "dispatched_employees_ids": list(a["dispatched_employees_ids"])}

    def _job_type(self, tid: Any) -> dict[str, Any] | None:
        if tid in (None, ""):
            return None
        if tid not in self.job_types:
            raise invalid("job_type_id", "must name one of the company's job types")
        return dict(self.job_types[tid])

    # ----- schedule and dispatch -----
    def set_schedule(self, jid: str, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(jid)
        appointments = self.appointments[jid]
        if len(appointments) > 1:
            raise unprocessable("This job has more than one appointment: change them through the appointments endpoints")
        if "start_time" not in body:
            raise invalid("start_time", "is required")
        start = parse_time(body["start_time"], "start_time", self.zone)
        old = appointments[0] if appointments else None
        end = parse_time(body["end_time"], "end_time", self.zone) if body.get("end_time") else \
            start + ((old["end"] - old["start"]) if old else timedelta(hours=1))
        window = body.get("arrival_window_in_minutes", old["arrival_window_minutes"] if old else 0)
        if not isinstance(window, int | float) or window < 0 or window != int(window):
            raise invalid("arrival_window_in_minutes", "must be a whole number of minutes")
        employees = job["assigned_employee_ids"]
        if "dispatched_employees" in body:
            employees = self._dispatched(body["dispatched_employees"])
        appointment = self._appointment(start, end, int(window), employees)
        if old:
            appointment["id"] = old["id"]
        self.appointments[jid] = [appointment]
        job["assigned_employee_ids"] = employees
        if job["work_status"] == "needs scheduling":
            job["work_status"] = "scheduled"
        self.touch(jid)
        return {"start_time": stamp(start), "end_time": stamp(end), "arrival_window_minutes": int(window),
                "assigned_employees": [dict(self.employees[e]) for e in employees],
                "appointments": [self.appointment_out(appointment)]}

    def erase_schedule(self, jid: str) -> dict[str, Any]:
        job = self._job(jid)
        self.appointments[jid] = []
        if job["work_status"] == "scheduled":
            job["work_status"] = "needs scheduling"
        self.touch(jid)
        return {"object": "schedule", "deleted": True}

    def dispatch(self, jid: str, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(jid)
        if "dispatched_employees" not in body:
            raise invalid("dispatched_employees", "is required")
        job["assigned_employee_ids"] = self._dispatched(body["dispatched_employees"])
        for appointment in self.appointments[jid]:
            appointment["dispatched_employees_ids"] = list(job["assigned_employee_ids"])
        self.touch(jid)
        return {"assigned_employees": [dict(self.employees[e]) for e in job["assigned_employee_ids"]]}

    def _dispatched(self, entries: Any) -> list[str]:
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("employee_id"), str)
                                                    for e in entries):
            raise invalid("dispatched_employees", "must be a list of {employee_id}")
        return self._employees([e["employee_id"] for e in entries], "dispatched_employees")

    # ----- notes and tags -----
    def add_note(self, jid: str, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(jid)
        if not isinstance(body.get("content"), str) or not body["content"]:
            raise invalid("content", "is required")
        note = {"id": self.new_id("nte"), "content": body["content"]}
        job["notes"].append(note)
        self.touch(jid)
        return dict(note)

    def tag_named(self, name: str) -> dict[str, Any]:
        found = next((t for t in self.tags.values() if t["name"] == name), None)
        if found is None:
            tid = self.new_id("tag")
            found = self.tags[tid] = {"id": tid, "name": name, "created_at": stamp(self.now())}
        return found

    # ----- line items -----
    def _line_item(self, body: Any, field: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid(field, "must be a list of line items")
        if not isinstance(body.get("name"), str) or not body["name"]:
            raise invalid("name", "is required")
        unit_price, unit_cost = (self._cents(body.get(f, 0), f) for f in ("unit_price", "unit_cost"))
        try:
            quantity = Decimal(str(body.get("quantity", 1)))
        except InvalidOperation:
            raise invalid("quantity", "must be a number") from None
        if isinstance(body.get("quantity"), bool) or quantity != quantity.quantize(Decimal("0.01")) or quantity < 0:
            raise invalid("quantity", "must be a number with at most two decimal places")
        kind = body.get("kind", "labor")
        if kind not in KINDS:
            raise invalid("kind", f"must be one of {', '.join(KINDS)}")
        taxable = body.get("taxable", True)
        if not isinstance(taxable, bool):
            raise invalid("taxable", "must be true or false")
        return {"name": body["name"], "description": body.get("description") or "", "unit_price": unit_price,
                "unit_cost": unit_cost, "unit_of_measure": "each", "quantity": float(quantity), "kind": kind,
                "taxable": taxable, "amount": int((quantity * unit_price).quantize(Decimal(1), ROUND_HALF_UP)),
                **({"service_item_id": body["service_item_id"]} if body.get("service_item_id") else {})}

    @staticmethod
    def _cents(value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise invalid(field, "must be a whole number of cents")
        return int(value)

    def _store_item(self, jid: str, item: dict[str, Any], lid: str | None = None) -> dict[str, Any]:
        items = self.line_items[jid]
        stored = {"id": lid or self.new_id("li"), **item, "order_index": len(items)}
        items.append(stored)
        return dict(stored)

    def items_of(self, jid: str) -> list[dict[str, Any]]:
        self._job(jid)
        return [dict(i) for i in self.line_items[jid]]

    def add_item(self, jid: str, body: Any) -> dict[str, Any]:
        self._job(jid)
        stored = self._store_item(jid, self._line_item(body, "line item"))
        self.touch(jid)
        return stored

    def update_item(self, jid: str, lid: str, body: Any) -> dict[str, Any]:
        self._job(jid)
        items = self.line_items[jid]
        at = next((n for n, i in enumerate(items) if i["id"] == lid), None)
        if at is None:
            raise Refused(404, {})
        items[at] = {"id": lid, **self._line_item(body, "line item"), "order_index": at}
        self.touch(jid)
        return dict(items[at])

    def delete_item(self, jid: str, lid: str) -> dict[str, Any]:
        self._job(jid)
        if not any(i["id"] == lid for i in self.line_items[jid]):
            raise Refused(404, {})
        self.line_items[jid] = [i for i in self.line_items[jid] if i["id"] != lid]
        self.touch(jid)
        return {"id": lid, "deleted": True}

    def bulk_items(self, jid: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Items with an id replace that item, items without one are new; unless append_line_items, the job's
        items the request leaves out are deleted."""
        self._job(jid)
        entries = body.get("line_items")
        if not isinstance(entries, list):
            raise invalid("line_items", "is required: a list of line items")
        current = {i["id"]: i for i in self.line_items[jid]}
        ready = [(e.get("id") if isinstance(e, dict) else None, self._line_item(e, "line_items")) for e in entries]
        for lid, _ in ready:
            if lid is not None and lid not in current:
                raise invalid("line_items", f"names the line item {lid}, which is not on this job")
        kept = list(current.values()) if body.get("append_line_items") else []
        kept = [i for i in kept if i["id"] not in {lid for lid, _ in ready}]
        self.line_items[jid] = []
        for item in kept:
            self._store_item(jid, {k: v for k, v in item.items() if k not in ("id", "order_index")}, item["id"])
        for lid, item in ready:
            self._store_item(jid, item, lid)
        self.touch(jid)
        return self.items_of(jid)
