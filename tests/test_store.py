"""The SQLite store: planner statistics that follow the base while a server keeps running."""

import sqlite3
import subprocess
import sys
from pathlib import Path

from fsm_mcp.directory.customers import insert_customer, insert_location, load_locations
from fsm_mcp.inputs import AddressIn
from fsm_mcp.store.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import write_customers


def work(conn: sqlite3.Connection, customer_id: str) -> int:
    """Virtual-machine steps (in hundreds) that reading one customer's service addresses takes:
    a few with the customer index, hundreds when the planner scans the business's locations."""
    steps = [0]
    conn.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 100)
    try:
        load_locations(conn, "default", customer_id)
    finally:
        conn.set_progress_handler(None, 100)
    return steps[0]


def test_a_server_left_running_through_an_import_plans_for_the_imported_base(tmp_path: Path) -> None:
    """Connections keep the statistics they read with the schema; an import must make a running
    server's connections read the new ones (lookups ran 12-23x slower until a restart)."""
    served = Database(tmp_path / "b.db")  # the running server's, opened on an empty base
    served.snapshot(work, "cus_none")  # it has planned this read for an empty base
    write_customers(tmp_path / "c.csv", 3000)
    subprocess.run([sys.executable, "-m", "fsm_mcp", "import", "customers", str(tmp_path / "c.csv"),
                    "--db", str(tmp_path / "b.db")], check=True, capture_output=True, timeout=120)
    customer_id = served.snapshot(lambda conn: conn.execute("SELECT customer_id FROM locations LIMIT 1").fetchone()[0])
    steps = served.snapshot(work, customer_id)
    fresh = Database(tmp_path / "b.db")
    assert steps <= fresh.snapshot(work, customer_id) + 1
    served.close()
    fresh.close()


def test_a_base_grown_by_the_tools_gets_statistics_without_a_restart(tmp_path: Path) -> None:
    """A server started on an empty base that books its customers one by one never imports,
    so nothing else would analyse it until a restart."""
    served = Database(tmp_path / "b.db")
    served.snapshot(work, "cus_none")
    now = served.clock.now()
    for i in range(Database.ANALYZE_AFTER_WRITES):
        served.write(lambda conn, i=i: insert_location(
            conn, "default", insert_customer(conn, "default", now, name=f"Customer {i}"), AddressIn(street=f"{i} Oak St"), now))
    customer_id = served.snapshot(lambda conn: conn.execute("SELECT customer_id FROM locations LIMIT 1").fetchone()[0])
    steps = served.snapshot(work, customer_id)  # before anything else opens the base: opening analyses it
    fresh = Database(tmp_path / "b.db")
    assert steps <= fresh.snapshot(work, customer_id) + 1
    served.close()
    fresh.close()


def test_reindexing_one_customer_reads_its_own_keys_not_the_whole_index(tmp_path: Path) -> None:
    """Every booking re-indexes its customer; its old keys were found by a scan of the business's whole index
    (1 s at 100,000 customers), now through the index on (tenant_id, customer_id)."""
    from fsm_mcp.directory.customers import reindex
    from fsm_mcp.importer import import_customers
    from fsm_mcp.settings import Business

    csv = tmp_path / "customers.csv"
    write_customers(csv, 2000)
    db = Database(tmp_path / "store.db")
    import_customers(db, Business(), csv)
    customer_id = db.read(lambda c: c.execute("SELECT id FROM customers ORDER BY id LIMIT 1 OFFSET 1000").fetchone()[0])
    steps = [0]

    def counted(conn: sqlite3.Connection) -> None:
        conn.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 100)
        try:
            reindex(conn, "default", [customer_id])
        finally:
            conn.set_progress_handler(None, 100)

    db.write(counted)
    keys = db.read(lambda c: c.execute("SELECT count(*) FROM match_keys").fetchone()[0])
    db.close()
    assert keys > 20_000
    assert steps[0] < 60, f"{steps[0]} hundred steps to re-index one customer of 2,000"
