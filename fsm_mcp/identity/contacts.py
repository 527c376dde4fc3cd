"""Which person of an account is calling: one of its contacts, or a probable new one to confirm.

An account (a household, a business) is recognised first; this says who of it the caller is. A name
decides when the caller gave one (a household shares its line, so a number says less than a name);
without a name, the contact whose number or e-mail the caller used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field

from pydantic.dataclasses import dataclass

from fsm_mcp.identity.compare import Comparison, compare_names
from fsm_mcp.identity.keys import Profile
from fsm_mcp.identity.names import PersonName, parse_name
from fsm_mcp.models import Contact

_GIVEN_AGREES = frozenset({"exact", "nickname", "initial", "close"})


@dataclass(slots=True)
class CallerPerson:
    status: str  # "known": one of the account's contacts; "new": a person the account has no contact for yet
    name: str
    contact_id: str | None = None
    role: str | None = None
    reasons: list[str] = field(default_factory=list)


def same_person(a: PersonName, b: PersonName) -> bool:
    """The given names agree (a nickname or an initial will do) and the surnames do, where both have one."""
    out = Comparison()
    compare_names(a, b, out)
    return out.levels.get("given") in _GIVEN_AGREES and out.levels.get("family") in (None, "exact", "close")


def which_contact(query: Profile, contacts: Sequence[Contact]) -> CallerPerson | None:
    """The caller among the account's contacts; None when the query says nothing about a person."""
    by_line = next((c for c in contacts if query.phones & set(c.phones)), None) or \
        next((c for c in contacts if query.emails & set(c.emails)), None)
    if query.name is not None and query.name.parts:
        if named := next((c for c in contacts if same_person(query.name, parse_name(c.name))), None):
            return CallerPerson("known", named.name, named.contact_id, named.role, [f"{named.name} is a contact of this account"])
        reasons = ["no contact of this account has this name: probably a new contact (a household member, a tenant, "
                   "a new owner, someone at the office); confirm who they are and that they call for this account"]
        if by_line:
            reasons.append(f"calling from a number of {by_line.name}")
        return CallerPerson("new", query.name_raw, reasons=reasons)
    if by_line:
        via = "number" if query.phones & set(by_line.phones) else "e-mail"
        return CallerPerson("known", by_line.name, by_line.contact_id, by_line.role, [f"the {via} of {by_line.name}"])
    return None
