"""Who is calling: an identity, the business it is bound to, and what its scopes allow.

A tool names the scope it needs where it is registered (`needs`), and the gate compares it
with the caller's. Over HTTP the caller is the one its credential authenticated; over stdio
(or in process) it is the local user, trusted with every scope unless the server was started
read-only."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.provider import AccessToken

SCOPES = {
    "customers:read": "look up and read customers, jobs, technicians and free slots",
    "pii:read": "see phone numbers, e-mails and access notes unmasked",
    "jobs:write": "book jobs and move them through their states (canceling needs confirmation)",
    "dispatch:write": "assign technicians to jobs",
    "billing:write": "create invoices",
    "customers:merge": "merge customer records (needs confirmation)",
}
READ_ONLY = frozenset({"customers:read", "pii:read"})
SCOPE_META = "fsm-mcp/scope"


def needs(scope: str) -> dict[str, Any]:
    """The `meta` of a tool that needs `scope`; it is published in tools/list as `_meta`."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return {SCOPE_META: scope}


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    scopes = frozenset(scopes)
    if unknown := sorted(scopes - SCOPES.keys()):
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; the scopes are {', '.join(SCOPES)}")
    return scopes


@dataclass(frozen=True, slots=True)
class Caller:
    identity: str  # "key:<name>", "oauth:<subject>", "local" — what the audit log records
    business: str | None  # None: the server's default business
    scopes: frozenset[str]

    def may(self, scope: str | None) -> bool:
        return scope is None or scope in self.scopes

    def read_only(self) -> Caller:
        return Caller(self.identity, self.business, self.scopes & READ_ONLY)

    @classmethod
    def of_token(cls, token: AccessToken) -> Caller:
        claims = token.claims or {}
        return cls(identity=str(claims.get("identity") or f"client:{token.client_id}"),
                   business=claims.get("business"), scopes=frozenset(token.scopes))


LOCAL = Caller("local", None, frozenset(SCOPES))
NOBODY = Caller("unauthenticated", None, frozenset())  # never reaches a tool over HTTP: the app answers 401 first

_current: ContextVar[Caller] = ContextVar("fsm_mcp_caller")


def current() -> Caller:
    """The caller of the tool call being served (set by the gate for every call)."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("no caller: a tool ran outside the access gate") from None


def acting_as(caller: Caller) -> Any:
    return _current.set(caller)


def done_acting(token: Any) -> None:
    _current.reset(token)
