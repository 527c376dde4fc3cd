"""The fake ServiceTitan in a process of its own, for benchmarks whose clients, balancer or servers would
otherwise share its event loop (and, on a busy machine, its CPU): its count of the rate then sees requests
when they reach it, not when a loop the clients also use gets round to them.

    python -m benchmarks.vendor_process --rate 20 --customers 6000 --technicians 20

It seeds the customers and technicians, serves the fake on a loopback port, prints `url: http://...` once
listening, and answers a few benchmark questions under /_bench/ (outside the API: the door never sees
them): the technicians' ids, the exchanges and the requests inside a hold since a given index, a change to
the chaos, and the audit of what exists at the vendor. `FakeProcess` starts it and asks them.
"""

from __future__ import annotations

import argparse
import collections
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.vendors import Vendor
from tests.fakes.chaos import Chaos
from tests.fakes.servicetitan import new_caller, seed_person

CHAOS = ("p429", "retry_after", "p503", "p_lost", "latency")


@dataclass(frozen=True)
class Seen:
    """One exchange as the benchmark reads it."""

    arrived: float  # when the door saw it (the fake's monotonic clock): what its rate is counted by
    at: float  # when it was answered
    method: str
    path: str
    status: int


def app(vendor: Vendor, techs: list[str]) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    fake, door = vendor.fake, vendor.fake.door

    async def technicians(_: Request) -> JSONResponse:
        return JSONResponse(techs)

    async def exchanges(request: Request) -> JSONResponse:
        since = int(request.query_params.get("since", 0))
        return JSONResponse([[x.arrived, x.at, x.method, x.path, x.status] for x in door.log[since:]])

    async def count(_: Request) -> JSONResponse:
        return JSONResponse({"log": len(door.log), "too_early": len(door.too_early)})

    async def too_early(request: Request) -> JSONResponse:
        return JSONResponse(door.too_early[int(request.query_params.get("since", 0)):])

    async def chaos(request: Request) -> JSONResponse:
        for name, value in (await request.json()).items():
            if name not in CHAOS:
                return JSONResponse({"error": f"no chaos setting {name}"}, status_code=400)
            setattr(fake.chaos, name, value)
        return JSONResponse({name: getattr(fake.chaos, name) for name in CHAOS})

    async def audit(request: Request) -> JSONResponse:
        callers = {new_caller(i)[0] for i in range(int(request.query_params["callers"]))}
        names = {cid: c["name"] for cid, c in fake.customers.items()}
        per_caller = collections.Counter(n for n in names.values() if n in callers)
        bookings = collections.Counter(e["value"] for ext in fake.external.values() for d in ext.values() for e in d)
        jobs = collections.Counter(names[j["customerId"]] for j in fake.jobs.values() if names[j["customerId"]] in callers)
        return JSONResponse({
            "jobs per booking key": dict(collections.Counter(bookings.values())),
            "customers per new caller": dict(collections.Counter(per_caller.values())),
            "jobs per new caller": dict(collections.Counter(jobs.values())),
            "vendor": vendor.audit(),
        })

    bench = [Route("/_bench/technicians", technicians), Route("/_bench/log", exchanges), Route("/_bench/count", count),
             Route("/_bench/too-early", too_early), Route("/_bench/chaos", chaos, methods=["POST"]),
             Route("/_bench/audit", audit)]
    return Starlette(routes=[*bench, Mount("/", app=fake.app)])


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--customers", type=int, default=6000)
    ap.add_argument("--technicians", type=int, default=20)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    vendor = Vendor.make("servicetitan", Chaos(rate=args.rate, seed=args.seed))
    vendor.fake.door.keep_bodies = False  # nobody reads them here; the fake's CPU goes to answering
    techs = [vendor.technician(f"Tech {n}") for n in range(args.technicians)]
    for n in range(args.customers):
        person, street = seed_person(n)
        # every third with an e-mail, as in vendor_sync: on PostgreSQL a directory with no e-mail at all fails
        # the sync's index rebuild (DuplicateCursor, see the report of #22)
        vendor.customer(person, street, f"627{n % 100:02d}", f"2{n:09d}"[-10:], f"c{n}@example.com" if n % 3 == 0 else None)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    print(f"url: http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app(vendor, techs), log_level="warning", access_log=False)).run(sockets=[sock])


class FakeProcess:
    """The fake's process as its benchmark sees it: its URL, and its answers under /_bench/."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=60)

    def technicians(self) -> list[str]:
        return [str(t) for t in self._get("technicians")]

    def count(self) -> tuple[int, int]:
        """Exchanges logged, requests counted inside a hold."""
        counts = self._get("count")
        return counts["log"], counts["too_early"]

    def log(self, since: int = 0) -> list[Seen]:
        return [Seen(*row) for row in self._get("log", since=since)]

    def too_early(self, since: int = 0) -> list[tuple[float, str, str]]:
        return [tuple(row) for row in self._get("too-early", since=since)]  # type: ignore[misc]

    def chaos(self, **settings: Any) -> dict[str, Any]:
        answer = self._http.post("/_bench/chaos", content=json.dumps(settings))
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    def audit(self, callers: int) -> dict[str, Any]:
        return self._get("audit", callers=callers)  # type: ignore[no-any-return]

    def _get(self, what: str, **params: Any) -> Any:
        answer = self._http.get(f"/_bench/{what}", params=params)
        answer.raise_for_status()
        return answer.json()


@contextmanager
def fake_process(rate: float, customers: int, technicians: int, log: Path) -> Iterator[FakeProcess]:
    """The fake ServiceTitan in its own process (its stderr in `log`) while the block runs."""
    with log.open("ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.vendor_process", "--rate", str(rate),
                                 "--customers", str(customers), "--technicians", str(technicians)],
                                cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("url: "):
            raise RuntimeError(f"the fake vendor did not start: see {log}")
        fake = FakeProcess(line.removeprefix("url: ").strip())
        yield fake
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
