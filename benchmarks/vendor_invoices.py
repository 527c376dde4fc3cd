"""Invoices and payments made in a fake vendor's own app, heard back by fsm-mcp's poll over real loopback HTTP.

    python benchmarks/vendor_invoices.py [--vendor servicetitan|fieldpulse|housecallpro] [--jobs 300]
        [--over 30] [--interval 3] [--p429 0.05] [--p503 0.02] [--store sqlite|postgresql]

`--jobs` jobs are booked in the fake and seen by one poll (so fsm-mcp knows them). Then, at random over
`--over` seconds, each job is invoiced in the app (two lines) and paid there in one or two payments (on
ServiceTitan one payment in five is split over two jobs' invoices). The poll runs every `--interval` seconds
through it all, with `--p429` of the fake's answers 429 and `--p503` 503 (a poll that fails is tried again next
interval), and is cut off once midway, at a random moment of a poll, and restarted (a new backend over the same
store: the cursors are read back). After
the last change, polls run until nothing new comes for three intervals.

Printed: invoice.created per job (exactly one each, of the invoice's total), payment.received per payment
applied to an invoice (exactly one each, of its amount), missing and doubled counts, the latency from the
change in the fake to its event in the store (p50, p95, max), and the requests a poll sent (jobs, invoices and payments; 429s and 503s included).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fsm_mcp.errors import FsmError
from fsm_mcp.events import outbox
from fsm_mcp.store import open_store
from tests.fakes.chaos import Chaos
from tests.fakes.serve import serving
from tests.st_rig import BUSINESS

TENANT = BUSINESS.tenant_id


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


class Vendor:
    """The fake, its jobs, and the work done in its app: an invoice, a payment."""

    def __init__(self, name: str, jobs: int, chaos: Chaos) -> None:
        from tests.vendor_rig import fp_job, st_job

        self.name = name
        if name == "servicetitan":
            from tests.fakes.servicetitan import FakeServiceTitan

            self.fake: Any = FakeServiceTitan(chaos)
            tech = str(self.fake.add_technician("Dana Reyes", "HVAC; plumbing"))
            self.fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=["(217) 555-0143"])
            self.ids = [st_job(self.fake, tech, hour=8 + n % 8) for n in range(jobs)]
        elif name == "fieldpulse":
            from tests.fakes.fieldpulse import FakeFieldPulse

            self.fake = FakeFieldPulse(chaos)
            tech = str(self.fake.add_technician("Dana Reyes"))
            self.fake.add_customer("William Carter", "12 Oak St", "Springfield", "62701", phones=("(217) 555-0143",))
            self.ids = [fp_job(self.fake, tech, hour=8 + n % 8) for n in range(jobs)]
        else:
            from tests.hcp_rig import seeded

            self.fake, tech = seeded(chaos=chaos)
            company = self.fake.company
            customer = next(iter(company.customers))
            address = next(a for a, row in company.addresses.items() if row["customer_id"] == customer)
            self.ids = [str(company.create_job({
                "customer_id": customer, "address_id": address, "assigned_employee_ids": [tech],
                "line_items": [{"name": "Repair", "unit_price": 20000, "quantity": 1},
                               {"name": "Part", "unit_price": 4050, "quantity": 2}]})["id"]) for _ in range(jobs)]
        self.invoice_of: dict[str, str] = {}  # job -> invoice id, as fsm-mcp names it

    def backend(self, db: Any, url: str) -> Any:
        if self.name == "servicetitan":
            from fsm_mcp.connectors.servicetitan.backend import ServiceTitanBackend
            from tests.st_rig import st_settings

            return ServiceTitanBackend.open(db, BUSINESS, st_settings(api_url=url, auth_url=url))
        if self.name == "fieldpulse":
            from fsm_mcp.connectors.fieldpulse.backend import FieldPulseBackend
            from tests.fakes.fieldpulse import connector_settings

            return FieldPulseBackend.open(db, BUSINESS, connector_settings(url))
        from fsm_mcp.connectors.housecallpro.backend import HousecallProBackend
        from tests.fakes.housecallpro import connector_settings as hcp_settings

        return HousecallProBackend.open(db, BUSINESS, hcp_settings(url))

    def invoice(self, job_id: str) -> Decimal:
        """Bill the job in the app (two lines); its total."""
        if self.name == "servicetitan":
            self.invoice_of[job_id] = str(self.fake.bill_in_app(job_id, ("Repair", "1", "200.00"), ("Part", "2", "40.50")))
        elif self.name == "fieldpulse":
            self.invoice_of[job_id] = str(self.fake.invoice_in_app(job_id, ("Repair", "1", "200.00"), ("Part", "2", "40.50")))
        else:
            self.fake.complete(job_id)
            uuid = self.fake.issue_invoice(job_id)
            self.invoice_of[job_id] = str(self.fake.company.invoices[uuid]["invoice_number"])
            self._uuid = getattr(self, "_uuid", {}) | {job_id: uuid}
        return Decimal("281.00")

    def pay(self, splits: list[tuple[str, Decimal]]) -> list[tuple[str, str, Decimal]]:
        """One payment over these (job, amount) splits: [(payment id, invoice id, amount)]."""
        if self.name == "servicetitan":
            pid = str(self.fake.receive_payment(*[(int(self.invoice_of[j]), f"{a:.2f}") for j, a in splits]))
            return [(pid, self.invoice_of[j], a) for j, a in splits]
        (job, amount), = splits
        if self.name == "fieldpulse":
            return [(str(self.fake.pay(int(self.invoice_of[job]), f"{amount:.2f}")), self.invoice_of[job], amount)]
        uuid = self._uuid[job]
        self.fake.pay_invoice(uuid, int(amount * 100))
        return [(str(self.fake.company.invoices[uuid]["payments"][-1]["id"]), self.invoice_of[job], amount)]


async def run(vendor_name: str, jobs: int, over: float, interval: float, p429: float, p503: float,
              store: str, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    vendor = Vendor(vendor_name, jobs, Chaos(p429=p429, p503=p503, seed=seed))
    made_at: dict[tuple[str, str], float] = {}  # ("invoice", id) / ("payment", "pid>invoice") -> when made
    expected_invoice: dict[str, Decimal] = {}
    expected_payment: dict[str, Decimal] = {}
    polls: list[int] = []
    failures = Counter[str]()
    with tempfile.TemporaryDirectory() as tmp, serving(vendor.fake.app) as url, ExitStack() as stack:
        if store == "postgresql":
            from benchmarks.scratch_pg import scratch_postgres

            target: Any = stack.enter_context(scratch_postgres())
        else:
            target = Path(tmp) / "bench.db"
        db = open_store(target)
        backends = [vendor.backend(db, url)]
        state: dict[str, Any] = {"done": False, "restart": False, "last_new": time.monotonic()}
        await backends[0].changes.run()  # the jobs become known

        async def poll_loop() -> None:
            while True:
                if state["restart"]:  # a crash in the middle of a poll, then a new process over the same store
                    state["restart"] = False
                    with anyio.move_on_after(rng.uniform(0.0, 0.3)):
                        await backends[-1].changes.run()
                    await backends[-1].aclose()
                    backends.append(vendor.backend(db, url))
                before = len(vendor.fake.door.log)
                try:
                    await backends[-1].changes.run()
                except FsmError as exc:
                    failures[type(exc).__name__] += 1
                polls.append(len(vendor.fake.door.log) - before)
                await anyio.sleep(interval)

        async def work() -> None:
            plan: list[tuple[float, str, Any]] = []
            for job in vendor.ids:
                t = rng.uniform(0, over * 0.6)
                plan.append((t, "invoice", job))
                parts = [Decimal("281.00")] if rng.random() < 0.5 else [Decimal("100.00"), Decimal("181.00")]
                for n, part in enumerate(parts):
                    plan.append((t + rng.uniform(0.5, over * 0.4) + n, "pay", (job, part)))
            plan.sort(key=lambda p: p[0])
            start = time.monotonic()
            restarted = False
            pending_split: tuple[str, Decimal] | None = None
            for at, kind, what in plan:
                await anyio.sleep(max(0.0, start + at - time.monotonic()))
                if not restarted and at > over / 2:
                    restarted = state["restart"] = True
                now = time.monotonic()
                if kind == "invoice":
                    total = vendor.invoice(what)
                    expected_invoice[vendor.invoice_of[what]] = total
                    made_at[("invoice", vendor.invoice_of[what])] = now
                    continue
                if vendor_name == "servicetitan" and pending_split is None and rng.random() < 0.2:
                    pending_split = what  # paid together with the next job's
                    continue
                splits = [what] if pending_split is None else [pending_split, what]
                pending_split = None
                for pid, invoice_id, amount in vendor.pay(splits):
                    expected_payment[f"{pid}>{invoice_id}"] = amount
                    made_at[("payment", f"{pid}>{invoice_id}")] = now
            if pending_split is not None:
                for pid, invoice_id, amount in vendor.pay([pending_split]):
                    expected_payment[f"{pid}>{invoice_id}"] = amount
                    made_at[("payment", f"{pid}>{invoice_id}")] = time.monotonic()
            state["done"] = True

        seen_at: dict[tuple[str, str], float] = {}
        got_invoices: Counter[str] = Counter()
        got_payments: Counter[str] = Counter()
        totals: dict[str, str] = {}
        amounts: dict[str, str] = {}

        async def watch() -> None:
            cursor = None
            while True:
                page = await outbox.read(db, TENANT, cursor, limit=500)
                now = time.monotonic()
                for e in page.events:
                    if e.type == "invoice.created":
                        got_invoices[e.subject_id] += 1
                        totals[e.subject_id] = e.data["total"]
                        seen_at.setdefault(("invoice", e.subject_id), now)
                        state["last_new"] = now
                    elif e.type == "payment.received":
                        key = f"{e.data['payment_id']}>{e.data['invoice_id']}"
                        got_payments[key] += 1
                        amounts[key] = e.data["amount"]
                        seen_at.setdefault(("payment", key), now)
                        state["last_new"] = now
                cursor = page.cursor
                if not page.more:
                    await anyio.sleep(0.05)

        async with anyio.create_task_group() as tg:
            tg.start_soon(poll_loop)
            tg.start_soon(watch)
            await work()
            while time.monotonic() - state["last_new"] < 3 * interval + 1:
                await anyio.sleep(0.2)
            tg.cancel_scope.cancel()
        await backends[-1].aclose()
        db.close()
    late = [seen_at[k] - made_at[k] for k in made_at if k in seen_at]
    return {
        "vendor": vendor_name, "store": store, "jobs": jobs,
        "invoices": len(expected_invoice), "invoice_events": sum(got_invoices.values()),
        "invoices_missing": len(set(expected_invoice) - set(got_invoices)),
        "invoices_twice": sum(1 for n in got_invoices.values() if n > 1),
        "invoice_totals_wrong": sum(1 for i, t in expected_invoice.items() if i in totals and Decimal(totals[i]) != t),
        "payments": len(expected_payment), "payment_events": sum(got_payments.values()),
        "payments_missing": len(set(expected_payment) - set(got_payments)),
        "payments_twice": sum(1 for n in got_payments.values() if n > 1),
        "payment_amounts_wrong": sum(1 for k, a in expected_payment.items() if k in amounts and Decimal(amounts[k]) != a),
        "latency_p50_s": round(percentile(late, 50), 2), "latency_p95_s": round(percentile(late, 95), 2),
        "latency_max_s": round(max(late, default=float("nan")), 2),
        "polls": len(polls), "requests_per_poll_median": percentile([float(p) for p in polls], 50),
        "failed_polls": dict(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vendor", choices=("servicetitan", "fieldpulse", "housecallpro"), default="servicetitan")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--over", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--p429", type=float, default=0.05)
    parser.add_argument("--p503", type=float, default=0.02)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    result = anyio.run(run, args.vendor, args.jobs, args.over, args.interval, args.p429, args.p503, args.store, args.seed)
    for key, value in result.items():
        print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
