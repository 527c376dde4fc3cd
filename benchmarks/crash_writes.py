"""Crash safety of idempotent writes under SIGKILL: the long run of tests/test_crash_safety.py.

    python benchmarks/crash_writes.py [--kills 200] [--in-flight 12] [--max-alive 1.0] [--patience 150]
                                      [--db postgresql://postgres@127.0.0.1:5432/postgres] [--replicas 3]

Streams create_job calls over stdio (12 in flight, a fifth of them retries of earlier keys,
allow_duplicate=true so that only the key guards against a second booking), kills the
server with SIGKILL at a random moment each round and restarts it; then resends every
key to a fresh server and counts the jobs each key left. `--patience` is how long the last
pass keeps resending a key that answers "still running" (set it past a stale-claim timer
to see what a timer does). Prints kills, keys, acknowledged writes, duplicates, lost
writes, integrity_check and acknowledged writes per second while streaming.

`--db postgresql://...`: the store is a scratch database made on that server and dropped after
(integrity is then amcheck's check of every B-tree index). `--replicas N`: N servers share the
store, each call goes to a random live one, a call cut off by a kill is sent again at once to
another, and each round kills one replica at random (see tests/crashkit.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.scratch import postgres_database
from tests.crashkit import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--in-flight", type=int, default=12)
    ap.add_argument("--max-alive", type=float, default=1.0, help="longest a server lives before its kill, seconds")
    ap.add_argument("--patience", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default="sqlite", metavar="sqlite|postgresql://...",
                    help="sqlite (a file), or a PostgreSQL server to make a scratch database on")
    ap.add_argument("--replicas", type=int, default=1)
    a = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="crash-writes-"))
    started = time.perf_counter()
    with ExitStack() as stack:
        db = folder / "crash.db" if a.db == "sqlite" else stack.enter_context(postgres_database(a.db, "crash"))
        out = anyio.run(lambda: run(db, kills=a.kills, in_flight=a.in_flight, max_alive=a.max_alive,
                                    patience=a.patience, seed=a.seed, replicas=a.replicas, log=folder / "server.log"))
    print(f"store: {'SQLite' if a.db == 'sqlite' else 'PostgreSQL'}, {a.replicas} replica(s)"
          + (f"; calls cut off by a kill and sent again to another replica: {out.moved_retries}" if a.replicas > 1 else ""))
    print(f"kills {out.kills}, keys {out.keys}, calls sent {out.sent}, acknowledged {len(out.acknowledged)}")
    print(f"keys with more than one job: {len(out.duplicated)} {out.duplicated[:10]}")
    print(f"acknowledged writes missing: {len(out.missing)}; replies that changed on retry: {len(out.replay_mismatches)}")
    print(f"'still running' answers: {out.busy} while streaming, {out.final_busy} in the last pass; "
          f"other failures: {len(out.other_errors)} {out.other_errors[:3]}")
    print(f"integrity_check: {out.integrity}; acknowledged writes/s while streaming: {out.writes_per_second():.0f}; "
          f"wall {time.perf_counter() - started:.0f} s; base and server logs in {folder}")


if __name__ == "__main__":
    main()
