"""Duplicate finding over the stored identity index (match_keys), without a pairwise scan."""

from __future__ import annotations

from typing import Any

from fsm_mcp.directory import identity_model
from fsm_mcp.directory.profiles import load_profiles
from fsm_mcp.identity import duplicates
from fsm_mcp.results import DuplicateGroup, DuplicateMember, DuplicateReport, Progress
from fsm_mcp.store import contacts
from fsm_mcp.store import directory as store
from fsm_mcp.store.directory import shared_keys as _blocks  # noqa: F401 -- benchmarks/identity_misses.py reads it

_PROGRESS_EVERY = 2000  # pairs between progress reports


def find(
    conn: Any, tenant: str, min_confidence: str, limit: int, progress: Progress | None = None
) -> DuplicateReport:
    blocks = list(store.shared_keys(conn, tenant))
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
    info = store.summaries(conn, tenant, linked)
    found = duplicates.group(links, order=lambda cid: (info[cid]["created_at"], cid))
    groups = found[:limit]
    if progress:
        progress(len(pairs), len(pairs))
    total = store.count_customers(conn, tenant)
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
