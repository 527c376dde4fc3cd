"""API keys: each has a name, a business and scopes, and is stored only as its SHA-256 digest.

A key is 32 random bytes, so its digest cannot be reversed or guessed, and a slow password
hash would only slow every request. The key is shown once, when made. Every request looks
its digest up, so a revoked key stops working at once, in every process sharing the store.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass

from fsm_mcp.access.callers import Caller, check_scopes
from fsm_mcp.store import Store
from fsm_mcp.store import keys as stored
from fsm_mcp.store.db import to_db

PREFIX = "fsmk_"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    name: str
    business: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(db: Store, name: str, business: str, scopes: list[str]) -> str:
    """A new key; the only time it exists in clear is this return value."""
    if not re.match(NAME, name):
        raise ValueError(f"NAME {name!r}: letters, digits, '.', '_' and '-', at most 64")
    chosen = sorted(check_scopes(scopes))
    if not chosen:
        raise ValueError("give at least one --scope")
    key = PREFIX + secrets.token_urlsafe(32)
    if not db.write(stored.insert, name, business, json.dumps(chosen), digest(key), to_db(db.clock.now())):
        raise ValueError(f"a key named {name!r} exists already; revoke it or choose another name")
    return key


def revoke(db: Store, name: str) -> bool:
    """True when a live key of that name was revoked."""
    return db.write(stored.revoke, name, to_db(db.clock.now()))


def listing(db: Store) -> list[KeyInfo]:
    return [KeyInfo(name, business, tuple(json.loads(scopes)), created, revoked)
            for name, business, scopes, created, revoked in db.read(stored.every)]


async def caller(db: Store, key: str) -> Caller | None:
    """The caller a key stands for, or None for an unknown or revoked one."""
    if not key.startswith(PREFIX):
        return None
    row = await db.apeek(stored.LIVE_BY_DIGEST, (digest(key),))
    if row is None:
        return None
    name, business, scopes = (str(v) for v in row)
    return Caller(identity=f"key:{name}", business=business, scopes=frozenset(json.loads(scopes)))
