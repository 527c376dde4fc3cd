"""A labelled, deterministic evaluation set for customer identity, and its scoring.

People ("entities") are generated with unique phones and e-mails. Duplicate records of a
person differ only by the variants callers and CRMs produce: nickname, typo or OCR slip,
swapped name order, address abbreviation, reformatted phone, a missing field, case. Hard
negatives are different people who look alike: a neighbour with the same surname, and a
namesake across town.

Every person belongs to an account (a household or a business, the customer a field-service
business serves). A spouse at the same address on the family line is another person of the
same account: one account with two contacts; so are colleagues behind one office switchboard
(the business is the account). So the set is scored twice: at the account level
(a lookup must attach the caller's account and never another; duplicates are records of one
account) and at the person level (a lookup's `contact`-level match must be the caller
themselves; duplicates are records of one person, as the report's `person` numbers them).

    python -m tests.evalset [--people 3000]     prints precision, recall and F1
"""

from __future__ import annotations

import csv
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

NICK = {"William": "Bill", "Robert": "Bob", "Elizabeth": "Liz", "Margaret": "Peggy", "James": "Jim",
        "Richard": "Dick", "Katherine": "Kate", "Joseph": "Joe", "Thomas": "Tom", "Michael": "Mike",
        "Patricia": "Patty", "Charles": "Chuck", "Edward": "Ted", "Anthony": "Tony", "Christopher": "Chris",
        "Daniel": "Dan", "Susan": "Sue", "Deborah": "Debbie", "Andrew": "Andy", "Jennifer": "Jenny"}
PLAIN = ["Maria", "Aisha", "Wei", "Priya", "Carlos", "Fatima", "Olga", "Kwame", "Yuki", "Ahmed", "Sofia", "Linda",
         "Karen", "Nancy", "Sandra", "Mark", "Paul", "Kevin", "Brian", "Laura", "Emily", "Grace", "Omar", "Ines"]
HEADS = ["Ander", "Bel", "Car", "Dun", "Ell", "Fair", "Gold", "Hart", "Ives", "Jar", "Kel", "Lang", "Mor", "North",
         "Oak", "Pem", "Quin", "Ros", "Stan", "Thorn", "Upton", "Vance", "Wel", "Yar", "Brad", "Cole", "Dray", "Fen"]
TAILS = ["son", "ley", "ford", "field", "man", "ton", "wood", "by", "well", "more", "dale", "ham", "stein", "berg"]
STREETS = ["Oak", "Maple", "Elm", "Pine", "Cedar", "Washington", "Lake", "Hill", "Park", "Main", "Walnut", "Spring",
           "Lincoln", "Jefferson", "Madison", "Chestnut", "Willow", "Birch", "Sunset", "River"]
SUFFIX = {"Street": "St", "Avenue": "Ave", "Road": "Rd", "Drive": "Dr", "Lane": "Ln", "Court": "Ct", "Boulevard": "Blvd"}
AREAS = ["217", "312", "773", "630", "847", "309", "618", "815"]
COLUMNS = ["external_id", "name", "phone", "email", "street", "unit", "city", "state", "postal_code", "notes"]
VARIANTS = ["nickname", "typo", "swapped", "abbreviation", "phone_format", "missing", "case"]


@dataclass
class Person:
    entity: int
    given: str
    family: str
    phone: str  # ten digits
    email: str | None
    house: int
    street: str  # "Oak Street"
    unit: str | None
    postal: str
    account: int = -1  # the household or business; -1: an account of their own (set to entity)

    def __post_init__(self) -> None:
        if self.account == -1:
            self.account = self.entity


@dataclass
class Record:
    external_id: str
    entity: int
    row: dict[str, str]
    variants: list[str] = field(default_factory=list)


@dataclass
class Query:
    args: dict[str, str]
    entity: int | None  # who it must find confidently, or None: nobody may be attached
    kind: str
    account: int | None = -1  # whose account it must find; -1: the entity's own, None: nobody's

    def __post_init__(self) -> None:
        if self.account == -1:
            self.account = self.entity


def _phone_text(digits: str, style: int) -> str:
    a, b, c = digits[:3], digits[3:6], digits[6:]
    return [f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"+1 {a} {b} {c}", f"1{a}{b}{c}", f"{a}-{b}-{c}", f"{a}{b}{c}"][style % 6]


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:  # transposition
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:  # substitution
        return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :]
    if kind == 2 and "m" in word[1:]:  # OCR: m read as rn
        j = word.index("m", 1)
        return word[:j] + "rn" + word[j + 1 :]
    return word[:i] + word[i + 1 :]  # a dropped letter


class Generator:
    def __init__(self, seed: int = 20261121) -> None:
        self.rng = random.Random(seed)
        self.phones: set[str] = set()
        self.people: list[Person] = []
        self.records: list[Record] = []

    def _new_phone(self) -> str:
        while True:
            digits = f"{self.rng.choice(AREAS)}{self.rng.randint(201, 989)}{self.rng.randint(0, 9999):04d}"
            if digits not in self.phones:
                self.phones.add(digits)
                return digits

    def person(self, **fixed: object) -> Person:
        rng, n = self.rng, len(self.people)
        given = rng.choice(list(NICK) + PLAIN)
        family = rng.choice(HEADS) + rng.choice(TAILS)
        values: dict[str, object] = {
            "entity": n, "given": given, "family": family, "phone": self._new_phone(), "email": f"{given}.{family}.{n}@example.com".lower(),
            "house": rng.randint(1, 9999), "street": f"{rng.choice(STREETS)} {rng.choice(list(SUFFIX))}",
            "unit": f"Apt {rng.randint(1, 40)}" if rng.random() < 0.15 else None, "postal": f"62{rng.randint(701, 799)}",
        }
        values.update(fixed)
        p = Person(**values)  # type: ignore[arg-type]
        self.people.append(p)
        return p

    def row(self, p: Person, variants: list[str]) -> dict[str, str]:
        rng = self.rng
        given, family = p.given, p.family
        if "nickname" in variants and given in NICK:
            given = NICK[given]
        if "typo" in variants:
            if rng.random() < 0.5:
                family = _typo(rng, family.lower()).title()
            else:
                given = _typo(rng, given.lower()).title()
        name = f"{family}, {given}" if "swapped" in variants else f"{given} {family}"
        if "case" in variants:
            name = name.upper() if rng.random() < 0.5 else name.lower()
        street, unit = f"{p.house} {p.street}", p.unit
        if "abbreviation" in variants:
            head, suffix = p.street.rsplit(" ", 1)
            street = f"{p.house} {head} {SUFFIX[suffix]}"
            unit = unit.replace("Apt ", "#") if unit else None
        row = {"name": name, "phone": _phone_text(p.phone, rng.randrange(6) if "phone_format" in variants else 0),
               "email": p.email or "", "street": street, "unit": unit or "", "city": "Springfield", "state": "IL",
               "postal_code": p.postal, "notes": ""}
        if "missing" in variants:  # one field left out, or both contacts (a walk-in noted by name and address)
            for gone in rng.choice([["phone"], ["email"], ["postal_code"], ["phone", "email"]]):
                row[gone] = ""
        if "case" in variants and row["email"]:
            row["email"] = row["email"].upper()
        return row

    def add(self, p: Person, variants: list[str]) -> Record:
        record = Record(f"x{len(self.records)}", p.entity, {}, variants)
        record.row = {"external_id": record.external_id, **self.row(p, variants)}
        self.records.append(record)
        return record


def build(people: int = 3000, duplicate_share: float = 0.3, seed: int = 20261121) -> tuple[Generator, list[Query]]:
    """A base of `people` (plus look-alikes), a share of them recorded twice or three times, and lookup queries."""
    g = Generator(seed)
    rng = g.rng
    queries: list[Query] = []
    for _ in range(people):
        p = g.person()
        g.add(p, [])
        if rng.random() < duplicate_share:
            for _ in range(1 if rng.random() < 0.85 else 2):
                g.add(p, rng.sample(VARIANTS, rng.choice([1, 1, 2])))
        shape = rng.random()
        if shape < 0.06:  # a spouse on the family line at the same address
            spouse = g.person(family=p.family, phone=p.phone, house=p.house, street=p.street, unit=p.unit, postal=p.postal,
                              given=rng.choice([x for x in list(NICK) + PLAIN if x != p.given]), account=p.account)
            g.add(spouse, [])
            queries.append(Query({"phone": _phone_text(p.phone, 2)}, None, "shared line, caller ID only", p.account))
            queries.append(Query({"phone": _phone_text(p.phone, 1), "name": f"{spouse.given} {spouse.family}"},
                                 spouse.entity, "shared line with the name", p.account))
        elif shape < 0.10:  # a neighbour with the same surname
            neighbour = g.person(family=p.family, street=p.street, postal=p.postal, house=p.house + rng.choice([2, 4, 10]),
                                 given=rng.choice([x for x in list(NICK) + PLAIN if x != p.given]))
            g.add(neighbour, [])
            queries.append(Query({"name": f"{neighbour.given} {neighbour.family}",
                                  "address": f"{neighbour.house} {neighbour.street}"}, neighbour.entity, "neighbour by name and address"))
        elif shape < 0.12:  # colleagues behind one switchboard
            for _ in range(rng.randint(2, 4)):
                g.add(g.person(phone=p.phone, house=p.house, street=p.street, postal=p.postal, unit=None, account=p.account), [])
            queries.append(Query({"phone": _phone_text(p.phone, 0)}, None, "switchboard, caller ID only", p.account))
        elif shape < 0.15:  # a namesake across town
            g.add(g.person(given=p.given, family=p.family), [])
            queries.append(Query({"name": f"{p.given} {p.family}"}, None, "namesake, name only"))
        else:
            kind = rng.randrange(8)
            if kind == 0:
                queries.append(Query({"phone": _phone_text(p.phone, rng.randrange(6))}, p.entity, "caller ID"))
            elif kind == 1:
                name = NICK.get(p.given, p.given)
                queries.append(Query({"phone": _phone_text(p.phone, rng.randrange(6)), "name": f"{name} {p.family}"},
                                     p.entity, "caller ID with a nickname"))
            elif kind == 2:
                queries.append(Query({"name": f"{p.family}, {p.given}", "address": f"{p.house} {p.street}"},
                                     p.entity, "swapped name with address"))
            elif kind == 3:
                queries.append(Query({"email": (p.email or "").upper()}, p.entity, "e-mail"))
            elif kind == 4:
                queries.append(Query({"name": f"{_typo(rng, p.given.lower()).title()} {p.family}",
                                      "address": f"{p.house} {p.street}", "phone": _phone_text(p.phone, 3)},
                                     p.entity, "typo with address and phone"))
            elif kind == 5:
                head, suffix = p.street.rsplit(" ", 1)
                queries.append(Query({"name": f"{NICK.get(p.given, p.given)} {p.family}",
                                      "address": f"{p.house} {head} {SUFFIX[suffix]}"}, p.entity, "nickname with abbreviated address"))
            elif kind == 6:
                queries.append(Query({"name": f"{p.given} {_typo(rng, p.family.lower()).title()}",
                                      "address": f"{p.house} {p.street}, Springfield IL {p.postal}"}, p.entity, "surname typo with address"))
            else:
                queries.append(Query({"name": f"{p.given[0]}. {p.family}", "phone": _phone_text(p.phone, 4)},
                                     p.entity, "initial with caller ID"))
    for _ in range(max(20, people // 20)):  # new callers nobody knows
        stranger = Person(-1, rng.choice(PLAIN), rng.choice(HEADS) + rng.choice(TAILS), g._new_phone(), None,
                          rng.randint(1, 9999), f"{rng.choice(STREETS)} Street", None, "62700")
        queries.append(Query({"phone": _phone_text(stranger.phone, 0), "name": f"{stranger.given} {stranger.family}"},
                             None, "new caller"))
    return g, queries


def write_csv(records: list[Record], path: Path) -> None:
    with path.open("w", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=COLUMNS)
        out.writeheader()
        for r in records:
            out.writerow(r.row)


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __str__(self) -> str:
        return f"precision {self.precision:.4f}  recall {self.recall:.4f}  F1 {self.f1:.4f}  (tp {self.tp}, fp {self.fp}, fn {self.fn})"


def _load(records: list[Record], folder: Path, label: str):  # type: ignore[no-untyped-def]
    from fsm_mcp.importer import import_customers
    from fsm_mcp.settings import Business
    from fsm_mcp.store.db import Database

    path = folder / f"{label}.csv"
    write_csv(records, path)
    db = Database(folder / f"{label}.db")
    business = Business()
    import_customers(db, business, path)
    ids = dict(db.read(lambda conn: conn.execute("SELECT id, external_id FROM customers").fetchall()))
    entity_of_external = {r.external_id: r.entity for r in records}
    return db, business, {cid: entity_of_external[ext] for cid, ext in ids.items()}


def _accounts(g: Generator) -> dict[int, int]:
    return {p.entity: p.account for p in g.people}


def evaluate_lookup(people: int, folder: Path) -> dict[str, Scores]:
    """Does the top confident match point at the right person, or correctly at nobody? Keyed by the
    kind of query, at the person level (a match at the `contact` level must be the caller's own
    record), and "account: ..." at the account level (any confident match must be the caller's
    account: a false one is a wrong attach)."""
    import anyio

    from fsm_mcp.connectors.local import LocalBackend
    from fsm_mcp.identity.query import caller_profile
    from fsm_mcp.inputs import parse_address

    g, queries = build(people, duplicate_share=0.0)
    db, business, entity = _load(g.records, folder, "lookup")
    account = _accounts(g)
    backend = LocalBackend(db, business)
    scores: dict[str, Scores] = {"all": Scores(), "account: all": Scores()}

    async def run() -> None:
        for q in queries:
            args = dict(q.args)
            address = parse_address(args.pop("address")) if "address" in args else None
            found = await backend.lookup_customers(caller_profile(address=address, region="US", **args), 5)
            top = found.matches[0] if found.matches and found.matches[0].confidence in ("exact", "likely") else None
            got = entity[top.customer_id] if top and top.level == "contact" else None
            for s in (scores["all"], scores.setdefault(q.kind, Scores())):
                if got is not None and got == q.entity:
                    s.tp += 1
                else:
                    s.fp += got is not None
                    s.fn += q.entity is not None
            got = account[entity[top.customer_id]] if top else None
            for s in (scores["account: all"], scores.setdefault(f"account: {q.kind}", Scores())):
                if got is not None and got == q.account:
                    s.tp += 1
                else:
                    s.fp += got is not None
                    s.fn += q.account is not None

    anyio.run(run)
    db.close()
    return scores


def evaluate_duplicates(people: int, folder: Path) -> dict[str, Scores]:
    """Pairs of records put in one group (at `likely` or better) against the pairs that are one
    person ("all", "sharing ...": a pair counts when the report numbers both records as one person)
    and one account ("account: ...": any two records of a group)."""
    from fsm_mcp.directory.duplicates import find

    g, _ = build(people)
    db, business, _ = _load(g.records, folder, "duplicates")
    report = db.read(find, business.tenant_id, "likely", 10**9)
    db.close()
    by_external = {r.external_id: r for r in g.records}
    account = _accounts(g)
    one_person, one_account = set(), set()
    for group in report.groups:
        found = sorted((m.external_id, m.person) for m in group.members if m.external_id)
        for i, (a, person_a) in enumerate(found):
            for b, person_b in found[i + 1 :]:
                one_account.add((a, b))
                if person_a == person_b:
                    one_person.add((a, b))

    def pairs(label: Callable[[Record], int]) -> set[tuple[str, str]]:
        members: dict[int, list[str]] = {}
        for r in g.records:
            members.setdefault(label(r), []).append(r.external_id)
        return {(a, b) for ids in members.values() for i, a in enumerate(sorted(ids)) for b in sorted(ids)[i + 1 :]}

    def digits(text: str) -> str:
        return "".join(ch for ch in text if ch.isdigit())[-10:]

    def shares_contact(pair: tuple[str, str]) -> bool:
        a, b = (by_external[x].row for x in pair)
        return bool((a["phone"] and digits(a["phone"]) == digits(b["phone"])) or (a["email"] and a["email"].lower() == b["email"].lower()))

    scores: dict[str, Scores] = {}
    for prefix, truth, predicted in (("", pairs(lambda r: r.entity), one_person),
                                     ("account: ", pairs(lambda r: account[r.entity]), one_account)):
        for pair in truth | predicted:
            subset = "sharing a phone or e-mail" if shares_contact(pair) else "sharing neither"
            for s in (scores.setdefault(f"{prefix}all", Scores()), scores.setdefault(prefix + subset, Scores())):
                s.tp += pair in truth and pair in predicted
                s.fp += pair in predicted and pair not in truth
                s.fn += pair in truth and pair not in predicted
    return scores


def main() -> None:
    import argparse
    import tempfile
    import time

    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        print(f"lookup ({args.people} people and their look-alikes):")
        for kind, s in sorted(evaluate_lookup(args.people, Path(tmp)).items(), key=lambda kv: kv[0].startswith("account")):
            print(f"  {kind:>41}: {s}")
        print("duplicate finding (min_confidence=likely):")
        for kind, s in evaluate_duplicates(args.people, Path(tmp)).items():
            print(f"  {kind:>41}: {s}")
        print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
