"""Kill a real server at random moments during a stream of idempotent writes, then audit the store.

Shared by `tests/test_crash_safety.py` (tens of kills) and `benchmarks/crash_writes.py`
(hundreds). The server is the real `fsm-mcp serve` process over stdio, driven with raw
JSON-RPC lines so that a SIGKILL can land anywhere, including between a write and its
answer. Every call books a job with `allow_duplicate=true`, so only the idempotency key
stands between a retry and a second booking; each job's summary names its key, which is
how the audit counts jobs per key.

The store is a SQLite file or a PostgreSQL URL. With `replicas` > 1, that many servers share the store
(PostgreSQL, or one SQLite file); each call goes to a random live one, a call cut off by a kill is
retried at once with the same key on another live one, and each round kills one replica at random and
starts it again.

What is served and how it is audited is a `Target`: `Bookings` (the local backend, audited from the store)
is the one `run` uses; `benchmarks/crash_vendor.py` streams over a vendor with the same `stream`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from tests import stores
from tests.when import MONDAY, day, window

WINDOW = window(MONDAY, 9)
CALLER = {"name": "Crash Tester", "phone": "(312) 555-0101", "address": "1 Test Way, Springfield, IL 62704"}


class ServerGone(Exception):
    """The server process ended (we killed it) before answering."""


class Server(Protocol):
    """One server (a process the stream may kill) and a conversation with it."""

    async def pump(self) -> None:
        """Until the server has gone: whatever keeps its answers coming."""
        ...

    async def handshake(self) -> None: ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The call's result; ServerGone if the server went before answering."""
        ...

    def kill(self) -> None: ...

    async def close(self) -> None: ...


class Wire:
    """One server process and a JSON-RPC conversation with it over its stdin and stdout."""

    def __init__(self, process: Process) -> None:
        assert process.stdout is not None and process.stdin is not None
        self.process = process
        self._out = BufferedByteReceiveStream(process.stdout)
        self._next = 0
        self._waiting: dict[int, anyio.Event] = {}
        self._answers: dict[int, dict[str, Any]] = {}
        self._closed = False

    @classmethod
    async def start(cls, db: Path | str, log_path: Path | None = None) -> Wire:
        env = {**os.environ, "FSM_MCP_LOG_LEVEL": "WARNING",
               # a stream of writes as fast as the server takes them: past any agent's rate limit on purpose
               "FSM_MCP_SERVE_CALLS_PER_MINUTE": "1000000", "FSM_MCP_SERVE_WRITES_PER_MINUTE": "1000000", "FSM_MCP_TIMEZONE": "America/Chicago"}
        log_path = log_path or Path(db).with_suffix(".log")
        with log_path.open("ab") as log:  # the server's stderr, kept beside the base for a post-mortem
            process = await anyio.open_process([sys.executable, "-m", "fsm_mcp", "serve", "--db", str(db)],
                                               env=env, stderr=log)
        return cls(process)

    async def pump(self) -> None:
        """Route answers to their requests until the process's stdout ends."""
        try:
            while True:
                line = await self._out.receive_until(b"\n", 16 * 1024 * 1024)
                message = json.loads(line)
                if "id" in message and message["id"] in self._waiting:
                    self._answers[message["id"]] = message
                    self._waiting.pop(message["id"]).set()
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            self._closed = True
            for event in self._waiting.values():
                event.set()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            await self.process.stdin.send((json.dumps(message) + "\n").encode())
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError) as exc:
            raise ServerGone from exc

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if self._closed:
            raise ServerGone
        self._next += 1
        ident = self._next
        done = self._waiting[ident] = anyio.Event()
        await self._send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        await done.wait()
        if ident not in self._answers:
            raise ServerGone
        return self._answers.pop(ident)

    async def handshake(self) -> None:
        await self.request("initialize", {"protocolVersion": day(-1986).isoformat(), "capabilities": {},
                                          "clientInfo": {"name": "crashkit", "version": "1"}})
        await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        answer = await self.request("tools/call", {"name": name, "arguments": arguments})
        if "error" in answer:
            raise AssertionError(f"protocol error from {name}: {answer['error']}")
        return dict(answer["result"])

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def close(self) -> None:
        self.kill()
        await self.process.wait()
        await self.process.aclose()


@dataclass
class Outcome:
    kills: int = 0
    keys: int = 0
    sent: int = 0
    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> job id the server answered with
    replies: dict[str, str] = field(default_factory=dict)  # key -> the first answer's structured content, as JSON
    busy: int = 0
    other_errors: list[str] = field(default_factory=list)
    streaming_seconds: float = 0.0
    final_busy: int = 0
    replay_mismatches: list[str] = field(default_factory=list)  # a later answer to a key differs from its first
    moved_retries: int = 0  # calls cut off by a kill and sent again at once to another replica
    jobs_per_key: Counter[str] = field(default_factory=Counter)
    integrity: str = ""
    checks: dict[str, list[str]] = field(default_factory=dict)  # a target's own audit: what failed -> the keys

    @property
    def duplicated(self) -> list[str]:
        return sorted(k for k, n in self.jobs_per_key.items() if n > 1)

    @property
    def missing(self) -> list[str]:
        return sorted(k for k in self.acknowledged if self.jobs_per_key[k] == 0)

    def writes_per_second(self) -> float:
        return len(self.acknowledged) / self.streaming_seconds if self.streaming_seconds else 0.0


def _booking(customer_id: str | None, key: str) -> dict[str, Any]:
    return {"customer_id": customer_id, "job_type": "hvac", "summary": f"crash {key}", "idempotency_key": key,
            "allow_duplicate": True, **WINDOW}


def _job_id(result: dict[str, Any]) -> str | None:
    return None if result.get("isError") else str(result["structuredContent"]["job_id"])


class Target(Protocol):
    """What a stream runs against: how a server is started, the one call each key stands for (the same
    tool and arguments on every send), and the audit once the last pass is over."""

    async def start(self) -> Server: ...

    async def setup(self, server: Server) -> None:
        """Once, on the first server, before any key is sent."""
        ...

    def call(self, key: str) -> tuple[str, dict[str, Any]]: ...

    async def audit(self, out: Outcome, keys: list[str]) -> None:
        """Fill `jobs_per_key` (every key, 0 for none), `integrity` and any `checks` of the target's own."""
        ...


class Bookings:
    """The local backend: every call books a job for one customer (made by `setup`), `allow_duplicate=true`;
    the audit counts each key's jobs in the store by the summary naming it."""

    def __init__(self, db: Path | str, log: Path | None = None) -> None:
        self.db, self.log = db, log
        self.customer_id: str | None = None

    async def start(self) -> Server:
        return await Wire.start(self.db, self.log)

    async def setup(self, server: Server) -> None:
        first = await server.call_tool("create_job", {**_booking(None, "setup"), "customer": CALLER})
        self.customer_id = first["structuredContent"]["customer_id"]

    def call(self, key: str) -> tuple[str, dict[str, Any]]:
        return "create_job", _booking(self.customer_id, key)

    async def audit(self, out: Outcome, keys: list[str]) -> None:
        conn = stores.connect(self.db)
        try:
            out.integrity = integrity(conn)
            for (summary,) in conn.execute("SELECT summary FROM jobs WHERE summary LIKE ?", ("crash k%",)):
                out.jobs_per_key[summary.removeprefix("crash ")] += 1
        finally:
            conn.close()
        for key in keys:
            out.jobs_per_key.setdefault(key, 0)


async def run(db: Path | str, *, kills: int, in_flight: int = 12, retry_share: float = 0.2, max_alive: float = 1.0,
              patience: float = 30.0, seed: int = 1, replicas: int = 1, log: Path | None = None) -> Outcome:
    """`stream` over the local backend (`Bookings`). `db`: a SQLite file or a postgresql:// URL; `log`: where
    the servers' stderr goes (default: beside a SQLite file)."""
    return await stream(Bookings(db, log), kills=kills, in_flight=in_flight, retry_share=retry_share,
                        max_alive=max_alive, patience=patience, seed=seed, replicas=replicas)


async def stream(target: Target, *, kills: int, in_flight: int = 12, retry_share: float = 0.2, max_alive: float = 1.0,
                 patience: float = 30.0, seed: int = 1, replicas: int = 1) -> Outcome:
    """Stream the target's calls, SIGKILL the server `kills` times at random moments, restart it each time;
    then on a fresh server resend every key (waiting out "still running" answers for up to `patience`
    seconds), compare every answer with the key's first, and let the target audit what each key left."""
    rng = random.Random(seed)
    out = Outcome()
    sent_keys: list[str] = []

    server = await target.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.pump)
        await server.handshake()
        await target.setup(server)
        await server.close()

    def next_key() -> str:
        if sent_keys and rng.random() < retry_share:
            return rng.choice(sent_keys)
        key = f"k{len(sent_keys):06d}"
        sent_keys.append(key)
        return key

    def replayed(key: str, result: dict[str, Any], streaming: bool = True) -> bool:
        """Whether an answer is the one the key got first; the first, while streaming, is kept (acknowledged)."""
        reply = json.dumps(result["structuredContent"], sort_keys=True)
        if streaming:
            out.acknowledged.setdefault(key, str(_job_id(result)))
            out.replies.setdefault(key, reply)
        return out.replies.get(key, reply) == reply

    def answered(key: str, result: dict[str, Any]) -> None:
        if _job_id(result) is not None:
            if not replayed(key, result):
                out.replay_mismatches.append(key)
        elif "still running" in json.dumps(result):
            out.busy += 1
        else:
            out.other_errors.append(json.dumps(result)[:300])

    async def send(w: Server, key: str) -> dict[str, Any]:
        out.sent += 1
        return await w.call_tool(*target.call(key))

    async def worker(w: Server) -> None:
        while True:
            key = next_key()
            try:
                result = await send(w, key)
            except ServerGone:
                return
            answered(key, result)

    if replicas == 1:
        for _ in range(kills):
            w = await target.start()
            async with anyio.create_task_group() as tg:
                tg.start_soon(w.pump)
                await w.handshake()
                started = time.perf_counter()
                for _ in range(in_flight):
                    tg.start_soon(worker, w)
                await anyio.sleep(rng.uniform(0.02, max_alive))
                w.kill()
            out.streaming_seconds += time.perf_counter() - started
            await w.close()
            out.kills += 1
    else:
        await _replicated(target.start, rng, out, kills, in_flight, max_alive, replicas, next_key, send, answered)

    out.keys = len(sent_keys)
    w = await target.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(w.pump)
        await w.handshake()
        deadline = time.monotonic() + patience
        for key in sent_keys:
            while True:
                result = await send(w, key)
                if _job_id(result) is not None:
                    if not replayed(key, result, streaming=False):
                        out.replay_mismatches.append(key)
                    break
                if "still running" not in json.dumps(result) or time.monotonic() > deadline:
                    out.other_errors.append(f"final {key}: " + json.dumps(result)[:300])
                    break
                out.final_busy += 1
                await anyio.sleep(1)
        await w.close()
        tg.cancel_scope.cancel()
    await target.audit(out, sent_keys)
    return out


async def _replicated(start: Any, rng: random.Random, out: Outcome, kills: int, in_flight: int, max_alive: float,
                      replicas: int, next_key: Any, send: Any, answered: Any) -> None:
    """`replicas` servers on one store; each round one of them, at random, is killed and started again. A call
    cut off by the kill is sent again at once, with its key, to another live replica."""
    live: list[Server] = []
    async with anyio.create_task_group() as pumps:

        async def up() -> None:
            w = await start()
            pumps.start_soon(w.pump)
            await w.handshake()
            live.append(w)

        for _ in range(replicas):
            await up()

        async def worker() -> None:
            key = next_key()
            while True:
                w = rng.choice(live)
                try:
                    result = await send(w, key)
                except ServerGone:
                    out.moved_retries += 1  # the same key again, on whichever replica is live now
                    await anyio.sleep(0)
                    continue
                answered(key, result)
                key = next_key()

        for _ in range(kills):
            started = time.perf_counter()
            with anyio.CancelScope() as round_:
                async with anyio.create_task_group() as tg:
                    for _ in range(in_flight):
                        tg.start_soon(worker)
                    await anyio.sleep(rng.uniform(0.02, max_alive))
                    victim = rng.choice(live)
                    live.remove(victim)
                    victim.kill()
                    await anyio.sleep(rng.uniform(0.05, 0.3))  # the cut-off calls land on the others meanwhile
                    round_.cancel()
            out.streaming_seconds += time.perf_counter() - started
            await victim.close()
            out.kills += 1
            await up()
        for w in live:
            await w.close()
        pumps.cancel_scope.cancel()


def integrity(conn: Any) -> str:
    """SQLite's integrity_check; on PostgreSQL, amcheck's check of every B-tree index of the store's tables
    ('ok' when none is corrupt), where the extension can be had."""
    if not getattr(conn, "postgres", False):
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
    except Exception as exc:  # not installed on that server: say so rather than claim a check
        return f"not checked (amcheck: {type(exc).__name__})"
    indexes = [row[0] for row in conn.execute(
        "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.amname = 'btree' AND n.nspname = current_schema()")]
    for index in indexes:
        conn.execute("SELECT bt_index_check(?::regclass, true)", (index,))
    return f"ok ({len(indexes)} B-tree indexes checked by amcheck)"
