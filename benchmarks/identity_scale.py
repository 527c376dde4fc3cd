"""Customer identity at scale: import, index rebuild, restart and lookup latency on a large base.

    python benchmarks/identity_scale.py [--customers 1000000] [--lookups 2000] [--keep DIR]
                                        [--db postgresql://postgres@127.0.0.1:5432/postgres]

Prints: the import's wall time, a full index rebuild's, the time to reopen the database
(what a restart costs: the index lives in the file and is not rebuilt), and lookup_customer's
backend latency in-process (p50/p95 per kind of query and overall) on this machine.

With --db naming a PostgreSQL server, the store is a scratch database made on that server for the run and
dropped at its end (--keep then keeps only the CSV).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import FAMILY, GIVEN, STREETS, phone_of, write_customers
from scratch_pg import scratch_postgres

from fsm_mcp.connectors.local import LocalBackend
from fsm_mcp.identity.query import caller_profile
from fsm_mcp.importer import import_customers, reindex_customers
from fsm_mcp.inputs import parse_address
from fsm_mcp.server import build_server
from fsm_mcp.settings import Business, Settings
from fsm_mcp.store import Store, is_postgres, open_store


def queries(n_customers: int, count: int, emails: list[str]) -> list[tuple[str, dict[str, object]]]:
    """A call-centre mix: mostly caller ID, then caller ID with a name, name with address, e-mail, name alone."""
    rng = random.Random(11)
    out: list[tuple[str, dict[str, object]]] = []
    for k in range(count):
        i = rng.randrange(n_customers)
        digits = phone_of(i)
        phone = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
        name = f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
        kind = ["phone", "phone", "phone", "phone+name", "name+address", "email", "name"][k % 7]
        if kind == "phone":
            out.append((kind, {"phone": phone}))
        elif kind == "phone+name":
            out.append((kind, {"phone": phone, "name": name}))
        elif kind == "name+address":
            street = f"{rng.randint(1, 9999)} {rng.choice(STREETS)} St"
            out.append((kind, {"name": name, "address": f"{street}, Springfield, IL 62{rng.randint(700, 799)}"}))
        elif kind == "email":
            out.append((kind, {"email": emails[k % len(emails)].upper()}))
        else:
            out.append((kind, {"name": name}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="keep the CSV and database in this folder (reused when present)")
    parser.add_argument("--db", help="a postgresql:// URL of a server to make a scratch database on (default: SQLite)")
    parser.add_argument("--lookups-on", metavar="STORE", help="only the lookups, on this existing store (a file or a "
                        "postgresql:// URL of a base of --customers imported here), left as it is")
    args = parser.parse_args()
    if args.lookups_on:
        lookups(args, open_store(args.lookups_on), args.lookups_on)
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="fsm-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"customers-{args.customers}.csv"
    if not csv_path.exists():
        start = time.perf_counter()
        write_customers(csv_path, args.customers)
        print(f"generated {csv_path} in {time.perf_counter() - start:.1f} s", flush=True)
    if args.db:
        if not is_postgres(args.db):
            parser.error("--db must be a postgresql:// URL")
        with scratch_postgres(args.db) as url:
            measure(args, csv_path, url, fresh=True)
    else:
        db_path = folder / f"identity-{args.customers}.db"
        measure(args, csv_path, db_path, fresh=not db_path.exists())


def measure(args: argparse.Namespace, csv_path: Path, db_path: Path | str, fresh: bool) -> None:
    business = Business()
    print(f"store: {'PostgreSQL' if is_postgres(db_path) else 'SQLite'}", flush=True)
    if fresh:
        db = open_store(db_path)
        start, cpu = time.perf_counter(), time.process_time()
        report = import_customers(db, business, csv_path)
        print(f"import: {report.imported} customers in {time.perf_counter() - start:.1f} s (goal <= 300 s; "
              f"{time.process_time() - cpu:.1f} s CPU in this process: the figure a shared machine moves least)", flush=True)
        db.close()
    db = open_store(db_path)
    start, cpu = time.perf_counter(), time.process_time()
    indexed = reindex_customers(db, business.tenant_id)
    print(f"index rebuild: {indexed} customers in {time.perf_counter() - start:.1f} s (goal <= 60 s; "
          f"{time.process_time() - cpu:.1f} s CPU)", flush=True)
    db.close()
    start = time.perf_counter()
    db = open_store(db_path)
    print(f"reopen (a restart; the index is kept in the file): {time.perf_counter() - start:.2f} s", flush=True)
    lookups(args, db, db_path)


def lookups(args: argparse.Namespace, db: Store, db_path: Path | str) -> None:
    business = Business()
    backend = LocalBackend(db, business)
    rng = random.Random(5)  # e-mails of customers picked at random, through their import ids
    emails = [row[0] for _ in range(200) for row in db.read(lambda c: c.execute(
        "SELECT e.email FROM customers c JOIN customer_emails e ON e.tenant_id=c.tenant_id AND e.customer_id=c.id "
        "WHERE c.tenant_id=? AND c.external_id=?", (business.tenant_id, f"ext{rng.randrange(args.customers)}")).fetchall())]
    mix = queries(args.customers, args.lookups, emails)
    timings: dict[str, list[float]] = {}
    through_client: list[float] = []

    async def run() -> None:
        for kind, q in mix:
            start = time.perf_counter()
            where = parse_address(q["address"]) if "address" in q else None  # type: ignore[arg-type]
            profile = caller_profile(region="US", address=where, **{k: v for k, v in q.items() if k != "address"})  # type: ignore[arg-type]
            await backend.lookup_customers(profile, 5)
            timings.setdefault(kind, []).append((time.perf_counter() - start) * 1000)
        async with Client(build_server(Settings(db_path=db_path, business=business))) as client:
            for _, q in mix:
                start = time.perf_counter()
                result = await client.call_tool("lookup_customer", q)
                through_client.append((time.perf_counter() - start) * 1000)
                assert not result.is_error, result.content

    anyio.run(run)
    db.close()

    def line(label: str, values: list[float]) -> str:
        values = sorted(values)
        p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
        return f"{label:>13}: p50 {statistics.median(values):6.2f} ms  p95 {p95:6.2f} ms  (n={len(values)})"

    print(f"lookup_customer, in-process backend, {args.customers} customers:")
    for kind, values in timings.items():
        print(line(kind, values))
    print(line("all", [v for vs in timings.values() for v in vs]) + "  (goal p50 <= 10 ms, p95 <= 50 ms)")
    print("the same calls as MCP tool calls through the in-process mcp.Client (schema checks included):")
    print(line("all", through_client) + "  (goal p50 <= 10 ms, p95 <= 50 ms)")


if __name__ == "__main__":
    main()
