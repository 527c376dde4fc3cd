"""The books under SIGKILL: `fsm-mcp serve` (the process that runs the accounting worker) killed at random
moments while invoices flow to a fake QuickBooks or Xero, and started again each time.

    python -m benchmarks.accounting_crash --kills 30 --invoices 300 [--provider xero] [--lease 4]

Invoices are created in our store (with their `invoice.created` events) in bursts while the server lives and
dies; the fake loses 5 % of write answers after doing the write and answers 5 % 503s, so kills land in
every phase: between a write and its answer, between the books' answer and our link, mid-refresh of the
OAuth grant (access tokens live `--access-ttl` 20 s at the fake, refresh tokens rotate). A kill after the
vendor rotated the refresh token and before the store kept the new one leaves only the old one: Xero takes
it again for 30 minutes (its documented grace), Intuit documents no grace, so there the grant is lost and
the administrator must connect again (`dead_refresh_tokens_used` > 0). After the last kill one server
runs until every invoice is linked; then the books are audited: every invoice of ours there exactly once
with our total, no customer twice, no dead refresh token used. `--lease` is the accounting lease (seconds):
how long a killed server's hold on the work outlives it.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fsm_mcp.connectors.local import invoices
from fsm_mcp.events import outbox
from fsm_mcp.store import Store, open_store
from fsm_mcp.store import accounting as sql
from tests.accounting_rig import TENANT, books, invoiced_job, serve_env
from tests.fakes.chaos import Chaos
from tests.http_rig import ENV, free_port


def start(db: Path, env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "fsm_mcp", "serve", "--transport", "http", "--no-auth", "--port",
                             str(free_port()), "--db", str(db)], env=env, stdout=subprocess.DEVNULL, stderr=log)


async def crash(provider: str, kills: int, total: int, lease: int, seed: int, access_ttl: int) -> dict[str, Any]:
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="fsm-acct-crash-"))
    path = folder / "fsm.db"
    db: Store = open_store(path)
    chaos = Chaos(p503=0.05, p_lost=0.05, seed=seed)
    made: list[str] = []
    names = [(f"Crash Tester{n}", f"(217) 4{n // 100:02d}-{n % 100:02d}00") for n in range(max(1, total // 2))]
    customer_of: dict[str, str] = {}

    def add(count: int) -> None:
        for _ in range(count):
            if len(made) >= total:
                return
            name, phone = names[len(made) % len(names)]
            invoice_id = invoiced_job(db, name, phone, customer_id=customer_of.get(name),
                                      lines=(("Labour", str(rng.randint(1, 3)), "95.00"),
                                             ("Parts", "1", f"{rng.randint(5, 300)}.{rng.randint(0, 99):02d}")))
            customer_of[name] = db.read(invoices.load, TENANT, invoice_id).customer_id
            made.append(invoice_id)

    async def add_async(count: int) -> None:
        before = len(made)
        add(count)
        for invoice_id in made[before:]:
            await outbox.record(db, TENANT, "invoice.created", "invoice", invoice_id, {"invoice_id": invoice_id})

    with books(provider, db, chaos) as rig, open(folder / "servers.log", "wb") as log:
        rig.fake.auth.access_ttl = access_ttl
        await rig.connect()
        env = serve_env(provider, rig.base, {**ENV, "FSM_MCP_LOG_LEVEL": "WARNING"}, lease_seconds=str(lease))
        burst = max(1, total // (kills + 1))
        lives: list[float] = []
        linked_at_kill: list[int] = []
        started = time.monotonic()
        for _ in range(kills):
            await add_async(burst)
            server = start(path, env, log)
            life = rng.uniform(1.0, lease * 6.0)  # from startup (a leased restart waits `lease`) to deep into posting
            await anyio.sleep(life)
            server.send_signal(signal.SIGKILL)
            server.wait()
            lives.append(life)
            linked_at_kill.append(db.read(sql.count_links, TENANT, provider, "invoice"))
        await add_async(total - len(made))
        server = start(path, env, log)
        deadline = time.monotonic() + 900
        while db.read(sql.count_links, TENANT, provider, "invoice") < len(made) and time.monotonic() < deadline:
            await anyio.sleep(0.5)
        server.terminate()
        server.wait(timeout=30)
        elapsed = time.monotonic() - started

        rows = rig.invoices()
        numbers = Counter(rig.their_number(r) for r in rows)
        by_number = {rig.their_number(r): r for r in rows}
        lost, wrong = [], []
        for invoice_id in made:
            key = invoice_id.removeprefix("inv_") if provider == "quickbooks" else invoice_id
            row = by_number.get(key)
            if row is None:
                lost.append(invoice_id)
            elif rig.total(row) != db.read(invoices.load, TENANT, invoice_id).total:
                wrong.append(invoice_id)
        customers = Counter(c.get("DisplayName") or c.get("Name") for c in rig.customers())
        result = {
            "provider": provider, "kills": len(lives), "lease_s": lease,
            "median_life_s": round(sorted(lives)[len(lives) // 2], 1) if lives else None,
            "kills_with_posting_under_way": sum(1 for a, b in zip([0, *linked_at_kill], linked_at_kill, strict=False)
                                                if b > a),
            "invoices_ours": len(made), "invoices_in_books": len(rows),
            "created_twice": sum(1 for n in numbers.values() if n > 1), "lost": len(lost), "wrong_total": len(wrong),
            "linked": db.read(sql.count_links, TENANT, provider, "invoice"),
            "customers_in_books": len(customers), "customers_ours": len(customer_of),
            "customers_twice": sum(1 for n in customers.values() if n > 1),
            "replays": rig.fake.replays.replayed, "refreshes": rig.fake.auth.refreshes,
            "dead_refresh_tokens_used": rig.fake.auth.dead_refresh_uses, "grace_uses": rig.fake.auth.grace_uses,
            "elapsed_s": round(elapsed, 1),
        }
    db.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--invoices", type=int, default=300)
    ap.add_argument("--provider", choices=["quickbooks", "xero"], default="quickbooks")
    ap.add_argument("--lease", type=int, default=4, help="seconds (FSM_MCP_ACCOUNTING_LEASE_SECONDS)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--access-ttl", type=int, default=20, help="seconds an access token lives at the fake (so that "
                    "refresh tokens rotate often, and some kills land inside a rotation)")
    a = ap.parse_args()
    os.environ.setdefault("FSM_MCP_LOG_LEVEL", "WARNING")
    result = anyio.run(crash, a.provider, a.kills, a.invoices, a.lease, a.seed, a.access_ttl)
    print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
