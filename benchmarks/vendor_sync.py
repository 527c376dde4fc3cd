"""A first directory sync from a vendor at its rate limit, and its resumption after a kill.

    python benchmarks/vendor_sync.py [--vendor servicetitan|fieldpulse] [--customers 20000] [--rate 50]
                                     [--page-size 100]

The fake vendor (tests/fakes) serves over real HTTP on loopback, allows `--rate`
requests a second (429 beyond), and holds `--customers` customers, each with a location and
a phone (every third an e-mail too). `fsm-mcp sync` runs as its own process,
configured to the same rate. Printed:

  run 1, a full sync (`--repeat` times, median quoted): requests, 429s, wall time from the
  first request to the last, the rate reached as a share of the limit (goal >= 90 %, zero
  429s), customers stored;
  run 2, killed with SIGKILL part-way through the customer list, then run again: which
  page the second process started the customer list at (1 would be starting over), the
  requests both processes sent against run 1's, and the customers stored.

The page size is small (100; ServiceTitan serves up to 5000, FieldPulse at most 100) so
that the sync is many requests and the rate, not the page count, decides its length.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.vendors import NAMES, Vendor  # noqa: E402
from tests.fakes.chaos import Chaos  # noqa: E402
from tests.fakes.serve import serving  # noqa: E402
from tests.fakes.servicetitan import seed_person  # noqa: E402


def stored(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vendor", choices=NAMES, default="servicetitan")
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="full syncs to time (the median is quoted)")
    args = ap.parse_args()

    vendor = Vendor.make(args.vendor, Chaos(rate=args.rate))
    fake = vendor.fake
    for n in range(args.customers):
        name, street = seed_person(n)
        vendor.customer(name, street, f"627{n % 100:02d}", f"2{n:09d}"[-10:], f"c{n}@example.com" if n % 3 == 0 else None)

    def env(url: str, db: Path, rate: float, page_size: int) -> dict[str, str]:
        return {**os.environ, **vendor.env(url, rate, page_size), "FSM_MCP_DB": str(db), "FSM_MCP_LOG_LEVEL": "WARNING"}

    gc.freeze()  # the seeded records are permanent: the fake's own collector pauses are not the vendor's
    door = fake.door
    door.keep_bodies = False
    with serving(fake.app) as url, tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "fsm_mcp", "sync"]
        shares = []
        for n in range(args.repeat):
            first = len(door.log)
            throttled = door.count_429
            db = Path(tmp) / f"a{n}.db"
            done = subprocess.run(cmd, env=env(url, db, args.rate, args.page_size), capture_output=True, text=True,
                                  timeout=3600)
            if done.returncode:
                sys.exit(done.stderr[-2000:])
            run1 = door.log[first:]
            wall = run1[-1].at - run1[0].at
            rps = (len(run1) - 1) / wall
            shares.append(100 * rps / args.rate)
            print(f"run 1.{n + 1}: {len(run1)} requests, {door.count_429 - throttled} answered 429, {wall:.1f} s from first "
                  f"to last: {rps:.1f} requests/s = {shares[-1]:.1f} % of the {args.rate:g}/s limit; "
                  f"{stored(db)} customers stored")
            gaps = sorted(((b.at - a.at, b) for a, b in itertools.pairwise(run1)), key=lambda g: -g[0])[:3]
            print("  longest gaps between two requests: " + ", ".join(
                f"{gap * 1000:.0f} ms before {x.path}?page={x.query.get('page')}" for gap, x in gaps))
        print(f"run 1, median of {args.repeat}: {statistics.median(shares):.1f} % of the limit")

        db = Path(tmp) / "b.db"
        start = len(door.log)
        proc = subprocess.Popen(cmd, env=env(url, db, args.rate, args.page_size), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        customer_pages = len({x.query["page"] for x in run1 if x.path.endswith("/customers")})
        while sum(1 for x in door.log[start:] if x.path.endswith("/customers")) < customer_pages // 2:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = len(door.log)
        kept = stored(db)
        again = subprocess.run(cmd, env=env(url, db, args.rate, args.page_size), capture_output=True, text=True,
                               timeout=3600)
        if again.returncode:
            sys.exit(again.stderr[-2000:])
        resumed = [int(x.query["page"]) for x in door.log[killed_at:] if x.path.endswith("/customers")]
        print(f"run 2: killed after {killed_at - start} requests with {kept} customers stored; the second process "
              f"began the customer list at page {min(resumed)} of {customer_pages} and sent "
              f"{len(door.log) - killed_at} requests ({len(door.log) - start} in all, against {len(run1)} for run 1); "
              f"{stored(db)} customers stored")


if __name__ == "__main__":
    main()
