"""The fake vendors behind one face, so each vendor benchmark runs over any of them:
`--vendor servicetitan` (the default), `--vendor fieldpulse` or `--vendor housecallpro`."""

from __future__ import annotations

import collections
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fsm_mcp.settings import Business, Settings
from tests.fakes import fieldpulse, housecallpro, servicetitan
from tests.fakes.chaos import Chaos

NAMES = ("servicetitan", "fieldpulse", "housecallpro")
TITLES = {"servicetitan": "ServiceTitan", "fieldpulse": "FieldPulse", "housecallpro": "Housecall Pro"}


@dataclass
class Vendor:
    name: str
    fake: Any

    @classmethod
    def make(cls, name: str, chaos: Chaos, token_ttl: int = 3600) -> Vendor:
        if name == "servicetitan":
            return cls(name, servicetitan.FakeServiceTitan(chaos, token_ttl=token_ttl))
        if name == "housecallpro":
            hcp = housecallpro.FakeHousecallPro(chaos)
            hcp.add_job_type("Furnace repair")  # a Housecall Pro booking names one of the company's job types
            return cls(name, hcp)
        return cls(name, fieldpulse.FakeFieldPulse(chaos))

    @property
    def title(self) -> str:
        return TITLES[self.name]

    def technician(self, name: str) -> str:
        """A technician who does hvac."""
        if self.name == "servicetitan":
            return str(self.fake.add_technician(name, "hvac"))
        if self.name == "housecallpro":
            first, _, last = name.partition(" ")
            return str(self.fake.add_employee(first, last, tags=("hvac",)))
        return str(self.fake.add_technician(name))

    def customer(self, name: str, street: str, zip_code: str, phone: str, email: str | None = None) -> None:
        emails = [email] if email else []
        if self.name == "servicetitan":
            self.fake.add_customer(name, street, "Springfield", zip_code, phones=[phone], emails=emails)
        elif self.name == "housecallpro":
            self.fake.add_customer(name, street, "Springfield", zip_code, mobile=phone, email=email)
        else:
            self.fake.add_customer(name, street, "Springfield", zip_code, phones=(phone,), emails=tuple(emails))

    def settings(self, url: str, db: Path, business: Business, techs: list[str] = (), **changes: Any) -> Settings:  # type: ignore[assignment]
        if self.name == "servicetitan":
            return Settings(db_path=db, business=business, backend="servicetitan",
                            servicetitan=servicetitan.connector_settings(url, **changes))
        if self.name == "housecallpro":
            return Settings(db_path=db, business=business, backend="housecallpro",
                            housecallpro=housecallpro.connector_settings(url, **changes))
        skills = {t: ["hvac"] for t in techs}
        return Settings(db_path=db, business=business, backend="fieldpulse",
                        fieldpulse=fieldpulse.connector_settings(url, skills=skills, **changes))

    def env(self, url: str, rate: float, page_size: int) -> dict[str, str]:
        if self.name == "servicetitan":
            return {**servicetitan.connector_env(url), "FSM_MCP_SERVICETITAN_RATE": str(rate),
                    "FSM_MCP_SERVICETITAN_SYNC_PAGE_SIZE": str(page_size)}
        if self.name == "housecallpro":
            return {**housecallpro.connector_env(url), "FSM_MCP_HOUSECALLPRO_RATE": str(rate),
                    "FSM_MCP_HOUSECALLPRO_SYNC_PAGE_SIZE": str(min(page_size, 100))}
        return {**fieldpulse.connector_env(url), "FSM_MCP_FIELDPULSE_RATE": str(rate)}

    def audit(self) -> str:
        """How often a booking, a customer, an invoice or a line exists more than once at the vendor."""
        fake = self.fake
        if self.name == "servicetitan":
            bookings = collections.Counter(e["value"] for ext in fake.external.values() for d in ext.values() for e in d)
            names = collections.Counter(c["name"] for c in fake.customers.values())
            invoices = collections.Counter(i["job"]["id"] for i in fake.invoices.values() if i.get("items"))
            lines = [len(i["items"]) for i in fake.invoices.values()]
        elif self.name == "housecallpro":  # an invoice there is the job's lines: each job must hold its lines once
            company = fake.company
            bookings = collections.Counter((j["customer_id"], str(min((a["start"] for a in company.appointments[jid]),
                                                                          default="")), str(j["job_type"]))
                                           for jid, j in company.jobs.items())
            names = collections.Counter(f"{c['first_name']} {c['last_name']}" for c in company.customers.values())
            invoices = collections.Counter(jid for jid, items in company.line_items.items() if items)
            lines = [len(items) for items in company.line_items.values()]
        else:
            bookings = collections.Counter((j["customer_id"], j["start_time"], j["job_type"]) for j in fake.jobs.values())
            names = collections.Counter(c["display_name"] for c in fake.customers.values())
            invoices = collections.Counter(i["job_id"] for i in fake.invoices.values())
            lines = [len(i["line_items"]) for i in fake.invoices.values()]
        return (f"jobs per booking: max {max(bookings.values(), default=0)} over {len(bookings)}; customers per name: max "
                f"{max(names.values(), default=0)} over {len(names)}; invoices per job: max {max(invoices.values(), default=0)} "
                f"over {len(invoices)}; lines per invoice: max {max(lines, default=0)}")

    def inside_hold(self) -> int:
        """Requests that arrived at the fake inside a hold it had given the tenant (any request, not only a repeat)."""
        return int(self.fake.inside_hold) if self.name == "housecallpro" else len(self.fake.door.too_early)

    def app_completes(self, job_id: str) -> None:
        """What the technician's app does where the vendor's API cannot: Housecall Pro's finishes the job."""
        if self.name == "housecallpro":
            self.fake.complete(job_id)

    def tokens(self) -> str:
        return f"{len(self.fake.tokens)} tokens issued" if self.name == "servicetitan" else "a fixed API key (no tokens)"
