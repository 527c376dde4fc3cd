"""Crash safety over a vendor: SIGKILL random stateless replicas while bookings are in flight at the fake
ServiceTitan, and audit the vendor's own records.

    python benchmarks/crash_vendor.py [--kills 80] [--replicas 3] [--in-flight 12] [--max-alive 1.5]
        [--patience 120] [--technicians 40] [--latency 0.02] [--seed 1]
        [--db postgresql://postgres@127.0.0.1:5432/postgres] [--redis redis://127.0.0.1:6379/0]

The fake ServiceTitan runs as a process of its own on loopback (`python -m tests.fakes.servicetitan`), so
killing a replica never kills it. `--replicas` real `fsm-mcp serve --transport http --stateless` processes
share a scratch PostgreSQL database (`fsm_crashvendor_*` on the server `--db` names, dropped after) and a Redis
database of the run's own (emptied after). The stream is tests/crashkit.py's: `--in-flight` create_job calls at
once, a fifth of them retries of earlier keys, each to a random live replica; each round one replica is
SIGKILLed at random and started again, and a call it cut off is sent again at once, with its key, to another.
Every key stands for one booking, the same on every send: even keys book a new caller (the customer, its
location and contacts, then the job: the booking path's recovery points), odd keys one existing customer
(allow_duplicate=true, so only the key stops a second job); every third key also dispatches a technician
(the step after the job's recovery point). After the last kill a fresh replica sends every key again
(waiting out "still running" for up to `--patience` seconds: a killed holder's lease lapses after 30 s).

Then the audit, from the fake's records (read through its API) and from the store: jobs per key at the
vendor (by the key each job carries), customers per new caller, every acknowledged job at the vendor under
its key and for the customer the answer named, each dispatched job assigned exactly its technician, every
acknowledged key done in the store with the same job, one job.created event per job, and every answer to
a key (while streaming and in the last pass) identical to its first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
from anyio.abc import Process

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.generate import FAMILY, STREETS, SUFFIX, phone_of
from benchmarks.scratch import postgres_database, redis_database
from fsm_mcp.access.callers import SCOPES
from fsm_mcp.store.db import from_db
from tests import stores
from tests.crashkit import Outcome, ServerGone, integrity, stream
from tests.fakes import servicetitan as st
from tests.http_rig import ENV, free_port, new_key
from tests.when import MONDAY, local, window

ROOT = Path(__file__).resolve().parents[1]
TAKEN_OVER = timedelta(seconds=20)  # a booking takes a second or two; a killed holder's lease lasts 30 s
SETUP = {"name": "Crash Tester", "phone": "(312) 555-0101"}


class HttpReplica:
    """One `fsm-mcp serve --transport http --stateless` process; each call is one POST of a JSON-RPC request
    (stateless: no session to open), and a kill while it is in flight ends it with ServerGone."""

    def __init__(self, process: Process, base: str, http: httpx.AsyncClient) -> None:
        self.process, self.base, self.http = process, base, http
        self._next = 0

    @classmethod
    async def start(cls, db: str, env: dict[str, str], log: Path, http: httpx.AsyncClient) -> HttpReplica:
        port = free_port()
        with log.open("ab") as err:
            process = await anyio.open_process(
                [sys.executable, "-m", "fsm_mcp", "serve", "--transport", "http", "--port", str(port), "--db", db,
                 "--stateless"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        base = f"http://127.0.0.1:{port}"
        with anyio.fail_after(90):
            while True:
                try:
                    await http.get(base + "/", timeout=1)
                    return cls(process, base, http)
                except httpx.TransportError:
                    if process.returncode is not None:
                        raise RuntimeError(f"a replica exited at start: see {log}") from None
                    await anyio.sleep(0.05)

    async def pump(self) -> None:
        await self.process.wait()

    async def handshake(self) -> None:
        pass

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self._next += 1
        message = {"jsonrpc": "2.0", "id": self._next, "method": "tools/call",
                   "params": {"name": name, "arguments": arguments}}
        try:
            answer = await self.http.post(self.base + "/mcp", json=message,
                                          headers={"Accept": "application/json, text/event-stream"})
        except httpx.TransportError as exc:
            raise ServerGone from exc
        if answer.status_code != 200:
            return {"isError": True, "content": [{"type": "text", "text": f"HTTP {answer.status_code}: {answer.text[:200]}"}]}
        for reply in _messages(answer):
            if reply.get("id") == self._next or reply.get("id") == message["id"]:
                if "error" in reply:
                    raise AssertionError(f"protocol error from {name}: {reply['error']}")
                return dict(reply["result"])
        raise ServerGone  # the stream ended before the answer: the replica went

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    async def close(self) -> None:
        self.kill()
        await self.process.wait()
        await self.process.aclose()


def _messages(answer: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an answer: one JSON body, or the data lines of an event stream."""
    if answer.headers.get("content-type", "").startswith("application/json"):
        return [answer.json()]
    return [json.loads(line[5:]) for line in answer.text.splitlines() if line.startswith("data:") and line[5:].strip()]


# No one of these is a nickname or a slip of another (Lisa and Elizabeth, Yuri and Yuki would rightly be asked about).
GIVEN = ("Aisha", "Wei", "Priya", "Carlos", "Fatima", "Olga", "Kwame", "Yuki", "Ahmed", "Sofia", "Quinn", "Rosa",
         "Theo", "Uma", "Vera", "Wade", "Xena", "Bruno", "Zoe", "Karen", "Nancy", "Sandra", "Omar", "Ingrid", "Hugo",
         "Nadia", "Felix", "Greta", "Ivan", "Leila")


def caller(n: int) -> dict[str, str]:
    """Key n's new caller, unlike every other key's and the setup customer: name, phone, e-mail, address."""
    given, family = GIVEN[n % len(GIVEN)], FAMILY[n // len(GIVEN) % len(FAMILY)]
    if (rest := n // (len(GIVEN) * len(FAMILY))) > 0:  # past the plain names, double-barrelled ones
        family = f"{family}-{FAMILY[(rest - 1) % len(FAMILY)]}"
    street = f"{100 + n} {STREETS[n % len(STREETS)]} {SUFFIX[n // len(STREETS) % len(SUFFIX)]}"
    return {"name": f"{given} {family}", "phone": phone_of(10_000 + n), "email": f"crash.caller{n}@example.com",
            "address": f"{street}, Springfield, IL 62704"}


class VendorBookings:
    """The stream's target over the fake ServiceTitan (tests/crashkit.py `Target`)."""

    def __init__(self, db: str, env: dict[str, str], log: Path, http: httpx.AsyncClient, fake: str,
                 technicians: list[str]) -> None:
        self.db, self.env, self.log, self.http, self.fake, self.technicians = db, env, log, http, fake, technicians
        self.customer_id = ""
        self.started: list[HttpReplica] = []  # every replica started, to end any a failed run leaves
        self.totals: tuple[int, int] = (0, 0)  # customers and jobs at the vendor, once audited
        self.takeovers: Counter[str] = Counter()

    async def start(self) -> HttpReplica:
        replica = await HttpReplica.start(self.db, self.env, self.log, self.http)
        self.started.append(replica)
        return replica

    def end(self) -> None:
        for replica in self.started:
            replica.kill()

    async def setup(self, server: Any) -> None:
        first = await server.call_tool("create_job", {
            "job_type": "hvac", "summary": "crash setup", "idempotency_key": "setup", "customer": SETUP,
            "address": "1 Test Way, Springfield, IL 62704", **window(MONDAY, 9)})
        assert not first.get("isError"), first
        self.customer_id = first["structuredContent"]["customer_id"]

    def technician(self, key: str) -> str | None:
        n = int(key[1:])
        return self.technicians[n // 3 % len(self.technicians)] if n % 3 == 0 else None

    def call(self, key: str) -> tuple[str, dict[str, Any]]:
        n = int(key[1:])
        args: dict[str, Any] = {"job_type": "hvac", "summary": f"crash {key}", "idempotency_key": key}
        if n % 2 == 0:
            args["customer"] = caller(n // 2)
        else:
            args |= {"customer_id": self.customer_id, "allow_duplicate": True}
        if tech := self.technician(key):
            # a window of its own for each of the technician's jobs, so no dispatch meets a conflict
            start = local(MONDAY, 0) + timedelta(hours=2 * (n // 3 // len(self.technicians)))
            args |= {"technician_id": tech, "window_start": start.isoformat(),
                     "window_end": (start + timedelta(hours=1)).isoformat()}
        else:
            args |= window(MONDAY, 9)
        return "create_job", args

    async def audit(self, out: Outcome, keys: list[str]) -> None:
        jobs, customers, assignments = await vendor_records(self.http, self.fake)
        by_key: dict[str, list[dict[str, Any]]] = {}
        for job in jobs:
            carried = [e["value"] for e in job.get("externalData") or [] if e.get("key") == "fsm-mcp-idempotency-key"]
            for key in carried:
                by_key.setdefault(key, []).append(job)
            summary = str(job.get("summary") or "")
            if summary.startswith("crash k") and carried != [summary.removeprefix("crash ")]:
                out.checks.setdefault("vendor jobs not carrying the key their summary names", []).append(summary)
        names = Counter(c["name"] for c in customers)
        assigned: dict[int, list[int]] = {}
        for a in assignments:
            assigned.setdefault(a["jobId"], []).append(a["technicianId"])
        found = stored(self.db)
        for key in keys:
            mine = by_key.get(key, [])
            out.jobs_per_key[key] = len(mine)
            n = int(key[1:])
            if n % 2 == 0 and names[caller(n // 2)["name"]] != 1:
                out.checks.setdefault("new callers not exactly once among the vendor's customers", []).append(key)
            if (tech := self.technician(key)) and mine and [str(t) for t in assigned.get(mine[0]["id"], [])] != [tech]:
                out.checks.setdefault("dispatched jobs not assigned exactly their technician", []).append(key)
            if key not in out.acknowledged:
                continue
            reply = json.loads(out.replies[key])
            if [str(j["id"]) for j in mine] != [out.acknowledged[key]] or \
                    str(mine[0]["customerId"]) != reply["customer_id"]:
                out.checks.setdefault("acknowledged jobs not at the vendor under their key and customer", []).append(key)
            if found.results.get(key) != out.acknowledged[key]:
                out.checks.setdefault("acknowledged keys not done in the store with their job", []).append(key)
            if found.created.get(out.acknowledged[key], 0) != 1:
                out.checks.setdefault("acknowledged jobs without exactly one job.created event", []).append(key)
        out.integrity = found.integrity
        self.totals = (len(customers), len(jobs))
        self.takeovers = takeovers(found, {str(j["id"]): j for j in jobs}, {str(c["id"]): c for c in customers})


async def vendor_records(http: httpx.AsyncClient, fake: str) -> tuple[list[Any], list[Any], list[Any]]:
    """The fake's jobs (with our external data), customers and appointment assignments, through its API."""
    token = (await http.post(fake + "/connect/token", data={
        "grant_type": "client_credentials", "client_id": st.CLIENT_ID, "client_secret": st.CLIENT_SECRET})).json()
    headers = {"Authorization": f"Bearer {token['access_token']}", "ST-App-Key": st.APP_KEY}

    async def every(path: str, **params: str) -> list[Any]:
        rows: list[Any] = []
        for page in itertools.count(1):
            answer = await http.get(f"{fake}/{path}", params={"page": str(page), "pageSize": "5000", **params},
                                    headers=headers)
            answer.raise_for_status()
            body = answer.json()
            rows.extend(body["data"])
            if not body["hasMore"]:
                return rows
        raise AssertionError("unreachable")

    return (await every(f"jpm/v2/tenant/{st.TENANT}/jobs", externalDataApplicationGuid=st.APP_GUID),
            await every(f"crm/v2/tenant/{st.TENANT}/customers"),
            await every(f"dispatch/v2/tenant/{st.TENANT}/appointment-assignments"))


def takeovers(found: Stored, jobs: dict[str, Any], customers: dict[str, Any]) -> Counter[str]:
    """Bookings a later call finished after the one holding the key was killed (or cut off) and its lease
    lapsed: recorded TAKEN_OVER or more after the key's claim. Of those, whether the job (and a new caller's
    customer) dates from before the lapse, made by the call that was cut off and read back by the one that
    finished, or was made by the finishing call."""
    seen: Counter[str] = Counter()
    for key, job_id in found.results.items():
        done = found.finished.get(job_id)
        if done is None or done - found.claimed[key] < TAKEN_OVER or job_id not in jobs:
            continue
        seen["taken over"] += 1
        job = jobs[job_id]
        seen["job made before the lapse, read back by its key" if done - when(job["createdOn"]) >= TAKEN_OVER
             else "job made by the call that took over"] += 1
        customer = customers.get(str(job["customerId"]))
        if int(key[1:]) % 2 == 0 and customer is not None and done - when(customer["createdOn"]) >= TAKEN_OVER:
            seen["new caller made before the lapse, not made again"] += 1
    return seen


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def stamped(value: Any) -> datetime:
    """A time the store holds: its text, or a timestamp where the store keeps one."""
    return value if isinstance(value, datetime) else from_db(str(value))


class Stored:
    def __init__(self) -> None:
        self.results: dict[str, str] = {}  # key -> the job id its done row holds
        self.claimed: dict[str, datetime] = {}  # key -> when its row was first claimed
        self.finished: dict[str, datetime] = {}  # job id -> when its booking's result was recorded (the audit entry)
        self.created: Counter[str] = Counter()  # job id -> job.created events
        self.integrity = ""


def stored(db: str) -> Stored:
    found = Stored()
    conn = stores.connect(db)
    try:
        found.integrity = integrity(conn)
        for key, state, result, claimed in conn.execute(
                "SELECT key, state, result, created_at FROM idempotency WHERE tool = ?", ("create_job",)):
            if state == "done":
                found.results[key] = str(json.loads(result)["job"]["job_id"])
                found.claimed[key] = stamped(claimed)
        for at, job in conn.execute("SELECT at, result_id FROM audit_log WHERE tool = ? AND replayed = 0",
                                    ("create_job",)):
            found.finished[str(job)] = stamped(at)
        for (subject,) in conn.execute("SELECT subject_id FROM events WHERE type = ?", ("job.created",)):
            found.created[subject] += 1
    finally:
        conn.close()
    return found


@contextmanager
def fake_servicetitan(technicians: int, latency: float, log: Path) -> Iterator[str]:
    """The fake in a process of its own on a loopback port; its URL while it runs."""
    port = free_port()
    with log.open("ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.servicetitan", "--port", str(port), "--customers", "0",
                                 "--technicians", str(technicians), "--latency", str(latency)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(url + "/connect/token", timeout=0.5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the fake did not start: see {log}") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def technician_ids(http: httpx.AsyncClient, fake: str) -> list[str]:
    token = (await http.post(fake + "/connect/token", data={
        "grant_type": "client_credentials", "client_id": st.CLIENT_ID, "client_secret": st.CLIENT_SECRET})).json()
    answer = await http.get(f"{fake}/settings/v2/tenant/{st.TENANT}/technicians", params={"pageSize": "1000"},
                            headers={"Authorization": f"Bearer {token['access_token']}", "ST-App-Key": st.APP_KEY})
    return [str(t["id"]) for t in answer.json()["data"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=80)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--in-flight", type=int, default=12)
    ap.add_argument("--max-alive", type=float, default=1.5, help="longest a round lasts before its kill, seconds")
    ap.add_argument("--patience", type=float, default=120.0)
    ap.add_argument("--technicians", type=int, default=40)
    ap.add_argument("--latency", type=float, default=0.02, help="seconds the fake adds to every answer")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped (SIGTERM)"))  # so the scratch stores are cleaned up
    folder = Path(tempfile.mkdtemp(prefix="crash-vendor-"))
    started = time.perf_counter()
    with ExitStack() as stack:
        fake = stack.enter_context(fake_servicetitan(a.technicians, a.latency, folder / "fake.log"))
        db = stack.enter_context(postgres_database(a.db, "crashvendor", "fsm_"))
        redis_url = stack.enter_context(redis_database(a.redis))
        env = {**ENV, **st.connector_env(fake), "FSM_MCP_REDIS_URL": redis_url,
               "FSM_MCP_SERVE_CALLS_PER_MINUTE": "1000000", "FSM_MCP_SERVE_WRITES_PER_MINUTE": "1000000"}
        key = new_key(db, "crash", *SCOPES, env=env)  # type: ignore[arg-type]

        async def go() -> tuple[Outcome, VendorBookings]:
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120,
                                         limits=httpx.Limits(max_connections=200)) as http:
                target = VendorBookings(db, env, folder / "servers.log", http, fake, await technician_ids(http, fake))
                try:
                    out = await stream(target, kills=a.kills, in_flight=a.in_flight, max_alive=a.max_alive,
                                       patience=a.patience, seed=a.seed, replicas=a.replicas)
                finally:
                    target.end()
                return out, target

        out, target = anyio.run(go)
    report(out, target, a, time.perf_counter() - started, folder)


def report(out: Outcome, target: VendorBookings, a: argparse.Namespace, wall: float, folder: Path) -> None:
    totals = target.totals
    acked = set(out.acknowledged)
    print(f"ServiceTitan fake in its own process; {a.replicas} stateless replicas on PostgreSQL and Redis; "
          f"calls cut off by a kill and sent again to another replica: {out.moved_retries}")
    print(f"kills {out.kills}, keys {out.keys} ({sum(1 for k in out.jobs_per_key if int(k[1:]) % 2 == 0)} new callers, "
          f"{sum(1 for k in out.jobs_per_key if int(k[1:]) % 3 == 0)} dispatching), calls sent {out.sent}, "
          f"acknowledged while streaming or after {len(acked)}")
    print(f"keys with more than one job at the vendor: {len(out.duplicated)} {out.duplicated[:10]}")
    print(f"keys with no job at the vendor: {sum(1 for n in out.jobs_per_key.values() if n == 0)}; acknowledged "
          f"writes missing there: {len(out.missing)}; answers that changed on retry: {len(out.replay_mismatches)} "
          f"{out.replay_mismatches[:5]}")
    print(f"at the vendor: {totals[0]} customers (1 set up, {sum(1 for k in out.jobs_per_key if int(k[1:]) % 2 == 0)} "
          f"new callers), {totals[1]} jobs (1 set up, {out.keys} keys)")
    checks = ["vendor jobs not carrying the key their summary names",
              "new callers not exactly once among the vendor's customers",
              "dispatched jobs not assigned exactly their technician",
              "acknowledged jobs not at the vendor under their key and customer",
              "acknowledged keys not done in the store with their job",
              "acknowledged jobs without exactly one job.created event"]
    for check in checks + sorted(set(out.checks) - set(checks)):
        print(f"  {check}: {len(out.checks.get(check, []))} {out.checks.get(check, [])[:5]}")
    print(f"bookings finished by a later call after the key's holder was cut off: {dict(target.takeovers)}")
    print(f"'still running' answers: {out.busy} while streaming, {out.final_busy} in the last pass; "
          f"other failures: {len(out.other_errors)} {out.other_errors[:3]}")
    print(f"integrity: {out.integrity}; acknowledged writes/s while streaming: {out.writes_per_second():.1f}; "
          f"wall {wall:.0f} s; logs in {folder}")


if __name__ == "__main__":
    main()
