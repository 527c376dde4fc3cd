"""One Housecall Pro company as the fake keeps it: the tables, customers and their addresses,
employees, tags, lead sources, job types and the pipeline; the jobs' rules are in housecallpro_jobs.py
and the money's in housecallpro_money.py (mixins of `Company`). The rules are the spec's, prose
included: a customer needs one of first_name, last_name, email, mobile_number, home_number or
work_number; an address added to a customer needs street, city, state, zip and country; a pipeline
only moves forward. Money is integer cents, as the spec has it; times are kept in UTC, answered as ...Z."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from tests.fakes.housecallpro_jobs import COMPANY_ID, COMPANY_NAME, CONTACT, JobRules
from tests.fakes.housecallpro_lists import Query, Refused, invalid, not_found, stamp, unprocessable
from tests.fakes.housecallpro_money import MoneyRules

PIPELINE_TYPES = ("lead", "job", "estimate")
CUSTOMER_FIELDS = (*CONTACT, "company", "notifications_enabled", "tags", "lead_source", "notes")
PERMISSIONS = ("can_add_and_edit_job", "can_be_booked_online", "can_call_and_text_with_customers", "can_chat_with_customers",
               "can_delete_and_cancel_job", "can_edit_message_on_invoice", "can_see_street_view_data", "can_share_job",
               "can_take_payment_see_prices", "can_see_customers", "can_see_full_schedule", "can_see_future_jobs",
               "can_see_marketing_campaigns", "can_see_reporting", "can_edit_settings", "is_point_of_contact", "is_admin")


class Company(JobRules, MoneyRules):
    def __init__(self, now: Callable[[], datetime], zone: tzinfo) -> None:
        self.now, self.zone = now, zone
        self._ids = itertools.count(1)
        self.customers: dict[str, dict[str, Any]] = {}
        self.addresses: dict[str, dict[str, Any]] = {}  # address id -> address, with its customer_id
        self.addresses_by_customer: dict[str, list[str]] = defaultdict(list)
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
        self.pipeline: dict[str, list[dict[str, Any]]] = {}  # resource type -> its stages, in order
        self.pipeline_of: dict[str, dict[str, Any]] = {}  # job id -> its stage

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06x}"

    def _job(self, jid: str) -> dict[str, Any]:
        if jid not in self.jobs:
            raise not_found("job")
        return self.jobs[jid]

    def touch(self, jid: str) -> None:
        self.jobs[jid]["updated_at"] = stamp(self.now())

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
        record["addresses"] = [self._address_out(self.addresses[a]) for a in self.addresses_by_customer[cid]]
        if "attachments" in expand:
            record["attachments"] = []
        if "do_not_service" in expand:
            record["do_not_service"] = False
        return record

    def _customer(self, cid: str) -> dict[str, Any]:
        if cid not in self.customers:
            raise not_found("customer")
        return self.customers[cid]

    def list_customers(self, q: Query) -> dict[str, Any]:
        rows = list(self.customers.values())
        if term := (q.get("q") or "").lower():
            digits = "".join(ch for ch in term if ch.isdigit())

            def matches(row: dict[str, Any]) -> bool:
                names = " ".join(str(row.get(f) or "") for f in ("first_name", "last_name", "email", "company")).lower()
                phones = ["".join(ch for ch in str(row.get(f) or "") if ch.isdigit())
                          for f in ("mobile_number", "home_number", "work_number")]
                places = " ".join(f"{a.get('street') or ''} {a.get('city') or ''} {a.get('zip') or ''}"
                                  for a in map(self.addresses.__getitem__, self.addresses_by_customer[row["id"]])).lower()
                return term in names or term in places or bool(digits and len(digits) >= 4 and any(digits in p for p in phones))

            rows = [row for row in rows if matches(row)]
        expand = tuple(q.many("expand"))
        answer = q.page(q.sorted(rows), "customers")
        answer["customers"] = [self.customer(row["id"], expand) for row in answer["customers"]]
        return answer

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
        self.addresses_by_customer[cid].append(aid)
        return self._address_out(self.addresses[aid])

    def address(self, cid: str, aid: str) -> dict[str, Any]:
        self._customer(cid)
        found = self.addresses.get(aid)
        if found is None or found["customer_id"] != cid:
            raise not_found("address")
        return self._address_out(found)

    def addresses_of(self, cid: str) -> list[dict[str, Any]]:
        self._customer(cid)
        return [{**self._address_out(self.addresses[a]), "created_at": self.addresses[a]["created_at"]}
                for a in self.addresses_by_customer[cid]]

    @staticmethod
    def _address_out(address: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in address.items() if k not in ("customer_id", "created_at")}

    # ----- employees and tags -----
    def add_employee(self, first: str, last: str, role: str = "field tech", active: bool = True,
                     tags: tuple[str, ...] = ()) -> str:
        eid = self.new_id("pro")
        self.employees[eid] = {"id": eid, "first_name": first, "last_name": last, "email": f"{first.lower()}@example.com",
                               "mobile_number": "", "color_hex": "2196f3", "avatar_url": "", "role": role,
                               "created_at": stamp(self.now()), "tags": list(tags), "company_name": COMPANY_NAME,
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

    def tag_named(self, name: str) -> dict[str, Any]:
        found = next((t for t in self.tags.values() if t["name"] == name), None)
        if found is None:
            tid = self.new_id("tag")
            found = self.tags[tid] = {"id": tid, "name": name, "created_at": stamp(self.now())}
        return found

    def tag_job(self, jid: str, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(jid)
        tag = self.tags.get(body.get("tag_id") or "")
        if tag is None:
            raise invalid("tag_id", "is required: the id of one of the company's tags")
        if tag["name"] not in job["tags"]:
            job["tags"].append(tag["name"])
            self.touch(job["id"])
        return {"tags": [self._tag_out(n) for n in job["tags"]]}

    def untag_job(self, jid: str, tid: str) -> dict[str, Any]:
        job = self._job(jid)
        tag = self.tags.get(tid)
        if tag is None or tag["name"] not in job["tags"]:
            raise unprocessable("The job does not have this tag")
        job["tags"].remove(tag["name"])
        self.touch(job["id"])
        return {"tags": [self._tag_out(n) for n in job["tags"]]}

    def _tag_out(self, name: str) -> dict[str, Any]:
        tag = self.tag_named(name)
        return {"id": tag["id"], "name": tag["name"]}

    def list_lead_sources(self, q: Query) -> dict[str, Any]:
        rows = [dict(s) for s in self.lead_sources.values()]
        if term := (q.get("q") or "").lower():
            rows = [s for s in rows if term in s["name"].lower()]
        return q.page(q.sorted(rows, ("id",), "id"), "lead_sources")

    def list_job_types(self, q: Query) -> dict[str, Any]:
        rows = [dict(t) for t in self.job_types.values()]
        if name := q.get("name"):
            rows = [t for t in rows if name.lower() in t["name"].lower()]
        return q.page(rows, "job_types")

    # ----- pipeline statuses: an organisation's own stages, off unless it set them up -----
    def set_pipeline(self, resource_type: str, names: tuple[str, ...]) -> list[str]:
        """The stages (in order) the organisation set up for `resource_type` (lead, job or estimate)."""
        self.pipeline[resource_type] = [{"id": self.new_id("kcs"), "name": n, "status_type": resource_type, "order": i}
                                        for i, n in enumerate(names)]
        return [s["id"] for s in self.pipeline[resource_type]]

    def pipeline_statuses(self, q: Query) -> dict[str, Any]:
        kind = q.get("resource_type")
        if kind not in PIPELINE_TYPES:
            raise invalid("resource_type", f"is required: one of {', '.join(PIPELINE_TYPES)}")
        rows = [{k: v for k, v in s.items() if k != "order"} for s in self.pipeline.get(kind, [])]
        return q.page(rows, "statuses")

    def move_pipeline(self, body: dict[str, Any]) -> dict[str, Any]:
        for field in ("resource_type", "resource_id", "status_id"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise invalid(field, "is required")
        kind, rid = body["resource_type"], body["resource_id"]
        if kind not in PIPELINE_TYPES:
            raise invalid("resource_type", f"must be one of {', '.join(PIPELINE_TYPES)}")
        if kind != "job" or rid not in self.jobs:
            raise Refused(404, {"error": f"{kind} not found"})
        target = next((s for s in self.pipeline.get(kind, []) if s["id"] == body["status_id"]), None)
        if target is None:
            raise Refused(404, {"error": "status not found"})
        current = self.pipeline_of.get(rid)
        if current is not None and target["order"] < current["order"]:
            raise unprocessable(f"A pipeline only moves forward: {current['name']} cannot go back to {target['name']}")
        self.pipeline_of[rid] = target
        self.touch(rid)
        return {"status_id": target["id"], "resource_id": rid, "resource_type": kind, "name": target["name"]}
