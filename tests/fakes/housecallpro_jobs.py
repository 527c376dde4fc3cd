"""The rules of a company's jobs (a mixin of `Company`, which holds the tables), the spec's prose included:

- a job needs customer_id and an address_id of that customer; a schedule with `anytime` needs
  `anytime_start_date`; `invoice_number` is unique across the company's jobs (one already taken:
  422) and generated when left out; JobCreate has no `description`;
- `work_status` is set by what the API allows and nothing else: `needs scheduling` until the job has a
  schedule, `scheduled` once it has; erasing the schedule (or its last appointment) goes back. No
  operation starts, completes or cancels a job: the app does, which `start`, `complete`, `cancel` stand for;
- /schedule cannot change a job with more than one appointment (a multi-day job): the appointments
  operations do; an appointment needs start_time, end_time and dispatched_employees_ids;
- a job's assigned employees are the ones dispatched (on create, /schedule, /dispatch, appointments)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from tests.fakes.housecallpro_lists import Query, invalid, not_found, parse_time, stamp, unprocessable

COMPANY_ID, COMPANY_NAME = "cmp_0f5a7e", "Reyes Heating & Plumbing"
CONTACT = ("first_name", "last_name", "email", "mobile_number", "home_number", "work_number")
WORK_STATUSES = ("needs scheduling", "scheduled", "in progress", "complete rated", "complete unrated",
                 "user canceled", "pro canceled")
STATUS_FILTER = {"unscheduled": ("needs scheduling",), "scheduled": ("scheduled",), "in_progress": ("in progress",),
                 "completed": ("complete rated", "complete unrated"), "canceled": ("user canceled", "pro canceled")}


class JobRules:
    zone: tzinfo
    customers: dict[str, dict[str, Any]]
    addresses: dict[str, dict[str, Any]]
    employees: dict[str, dict[str, Any]]
    jobs: dict[str, dict[str, Any]]
    appointments: dict[str, list[dict[str, Any]]]
    line_items: dict[str, list[dict[str, Any]]]
    invoices: dict[str, dict[str, Any]]
    job_types: dict[str, dict[str, Any]]
    _invoice_numbers: Any
    now: Any
    new_id: Any
    _customer: Any
    _employees: Any
    _job: Any
    touch: Any
    tag_named: Any
    _address_out: Any
    _line_item: Any
    _store_item: Any

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

    def list_jobs(self, q: Query) -> dict[str, Any]:
        statuses = q.many("work_status")
        for status in statuses:
            if status not in STATUS_FILTER:
                raise invalid("work_status", f"must be among {', '.join(STATUS_FILTER)}")
        wanted = {s for status in statuses for s in STATUS_FILTER[status]}
        employees = set(q.many("employee_ids"))
        bounds = [(q.time(f"scheduled_{edge}_{side}"), edge, side) for edge in ("start", "end") for side in ("min", "max")]
        rows = []
        for jid, job in self.jobs.items():
            if (customer := q.get("customer_id")) and job["customer_id"] != customer:
                continue
            if wanted and job["work_status"] not in wanted:
                continue
            if employees and not employees & set(job["assigned_employee_ids"]):
                continue
            if any(bound is not None for bound, _, _ in bounds) and not self._within(jid, bounds):
                continue
            rows.append(job)
        allowed = ("created_at", "updated_at", "invoice_number", "id", "description", "work_status")
        answer = q.page(q.sorted(rows, allowed), "jobs")
        answer["jobs"] = [self.job(row["id"], tuple(q.many("expand"))) for row in answer["jobs"]]
        return answer

    def _within(self, jid: str, bounds: list[tuple[datetime | None, str, str]]) -> bool:
        appointments = self.appointments[jid]
        if not appointments:
            return False
        edges = {"start": min(a["start"] for a in appointments), "end": max(a["end"] for a in appointments)}
        return all(bound is None or (edges[edge] >= bound if side == "min" else edges[edge] <= bound)
                   for bound, edge, side in bounds)

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

    # ----- appointments (a job with more than one is a multi-day job) -----
    def appointments_of(self, jid: str) -> dict[str, Any]:
        self._job(jid)
        return {"appointments": [self.appointment_out(a) for a in self.appointments[jid]]}

    def add_appointment(self, jid: str, body: dict[str, Any]) -> dict[str, Any]:
        self._job(jid)
        appointment = self._appointment_from(body)
        self.appointments[jid].append(appointment)
        self._appointments_changed(jid)
        return self.appointment_out(appointment)

    def update_appointment(self, jid: str, aid: str, body: dict[str, Any]) -> dict[str, Any]:
        self._job(jid)
        at = next((n for n, a in enumerate(self.appointments[jid]) if a["id"] == aid), None)
        if at is None:
            raise not_found("appointment")
        appointment = self._appointment_from(body)
        appointment["id"] = aid
        self.appointments[jid][at] = appointment
        self._appointments_changed(jid)
        return self.appointment_out(appointment)

    def delete_appointment(self, jid: str, aid: str) -> dict[str, Any]:
        self._job(jid)
        if not any(a["id"] == aid for a in self.appointments[jid]):
            raise not_found("appointment")
        self.appointments[jid] = [a for a in self.appointments[jid] if a["id"] != aid]
        self._appointments_changed(jid)
        return {}

    def _appointment_from(self, body: dict[str, Any]) -> dict[str, Any]:
        for field in ("start_time", "end_time", "dispatched_employees_ids"):
            if field not in body:
                raise invalid(field, "is required")
        window = body.get("arrival_window_minutes", 0)
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise invalid("arrival_window_minutes", "must be a whole number of minutes")
        employees = self._employees(body["dispatched_employees_ids"], "dispatched_employees_ids")
        return self._appointment(parse_time(body["start_time"], "start_time", self.zone),
                                 parse_time(body["end_time"], "end_time", self.zone), window, employees)

    def _appointments_changed(self, jid: str) -> None:
        job = self.jobs[jid]
        job["assigned_employee_ids"] = list(dict.fromkeys(
            e for a in self.appointments[jid] for e in a["dispatched_employees_ids"]))
        if self.appointments[jid] and job["work_status"] == "needs scheduling":
            job["work_status"] = "scheduled"
        elif not self.appointments[jid] and job["work_status"] == "scheduled":
            job["work_status"] = "needs scheduling"
        self.touch(jid)

    # ----- what only happens in the app (the pro's phone, the office): no API operation does these -----
    def on_my_way(self, jid: str) -> None:
        self._app_side(jid, "scheduled", None, "on_my_way_at")

    def start(self, jid: str) -> None:
        self._app_side(jid, "in progress", None, "started_at")

    def complete(self, jid: str, rated: bool = False) -> None:
        self._app_side(jid, "complete rated" if rated else "complete unrated", None, "completed_at")

    def cancel(self, jid: str, by_customer: bool = True) -> None:
        """The customer canceled (`user canceled`, canceled_at) or the pro canceled/deleted it (`pro canceled`,
        deleted_at)."""
        self._app_side(jid, "user canceled" if by_customer else "pro canceled",
                       "canceled_at" if by_customer else "deleted_at", None)

    def _app_side(self, jid: str, status: str, stamp_field: str | None, timestamp: str | None) -> None:
        job = self._job(jid)
        job["work_status"] = status
        if stamp_field:
            job[stamp_field] = stamp(self.now())
        if timestamp:
            job["work_timestamps"][timestamp] = stamp(self.now())
        self.touch(jid)
