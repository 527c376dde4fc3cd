"""Duplicate finding over the stored identity index (match_keys), without a pairwise scan."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator

from fsm_mcp.connectors.base import DuplicateGroup, DuplicateMember, DuplicateReport, Progress
from fsm_mcp.directory import identity_model
from fsm_mcp.directory.customers import load_profiles
from fsm_mcp.identity import duplicates
from fsm_mcp.store import contacts
from fsm_mcp.store.db import placeholders

_PROGRESS_EVERY = 2000  # pairs between progress reports


def _blocks(conn: sqlite3.Connection, tenant: str) -> Iterator[tuple[str, list[str]]]:
    """Keys shared by two or more records, streamed in key order (the primary key's order: no sort)."""
    rows = conn.execute("SELECT key, customer_id FROM match_keys WHERE tenant_id=? ORDER BY key", (tenant,))
    for key, members in itertools.groupby(rows, key=lambda r: r[0]):
        ids = [m[1] for m in members]
        if len(ids) > 1:
            yield key, ids


def find(
    conn: sqlite3.Connection, tenant: str, min_confidence: str, limit: int, progress: Progress | None = None
) -> DuplicateReport:
    blocks = list(_blocks(conn, tenant))
    pairs = sorted(duplicates.candidate_pairs(blocks))
    profiles = load_profiles(conn, tenant, sorted({cid for pair in pairs for cid in pair}))
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress and done % _PROGRESS_EVERY == 0:
            progress(done, len(pairs))

    model = identity_model.load(conn, tenant)
    people = contacts.contact_names(conn, tenant, sorted(profiles))  # each account as each of its people
    links = duplicates.link(pairs, profiles, duplicates.phone_owners(blocks), min_confidence, tick, model, people)
    linked = sorted({cid for edge in links for cid in (edge.a, edge.b)})
    info = {
        row["id"]: row
        for start in range(0, len(linked), 500)
        for row in conn.execute(
            f"SELECT id, name, external_id, created_at FROM customers WHERE tenant_id=? AND id IN "
            f"({placeholders(len(linked[start:start + 500]))})",
            (tenant, *linked[start : start + 500]),
        )
    }
    found = duplicates.group(links, order=lambda cid: (info[cid]["created_at"], cid))
    groups = found[:limit]
    if progress:
        progress(len(pairs), len(pairs))
    total = conn.execute("SELECT count(*) FROM customers WHERE tenant_id=? AND merged_into IS NULL", (tenant,)).fetchone()[0]
    return DuplicateReport(
        groups=[
            DuplicateGroup(
                members=[DuplicateMember(customer_id=c, name=info[c]["name"], external_id=info[c]["external_id"], person=n)
                         for c, n in zip(g.customer_ids, g.persons, strict=True)],
                confidence=g.confidence, score=g.score, reasons=g.reasons,  # type: ignore[arg-type]
            )
            for g in groups
        ],
        more_groups=len(found) - len(groups),
        customers=total,
        pairs_compared=len(pairs),
    )
