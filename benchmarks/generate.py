"""Deterministic synthetic customer bases for the benchmarks."""

from __future__ import annotations

import csv
import random
from pathlib import Path

GIVEN = ["William", "Robert", "Elizabeth", "Margaret", "James", "Maria", "John", "Linda", "Michael", "Susan",
         "David", "Karen", "Joseph", "Nancy", "Thomas", "Lisa", "Charles", "Betty", "Daniel", "Sandra", "Aisha",
         "Wei", "Priya", "Carlos", "Fatima", "Olga", "Kwame", "Yuki", "Ahmed", "Sofia"]
FAMILY = ["Jenkins", "Smith", "Johnson", "Garcia", "Nguyen", "Patel", "Okafor", "Kim", "Lopez", "Brown", "Miller",
          "Davis", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Martin", "Lee", "Clark", "Lewis", "Walker",
          "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell"]
STREETS = ["Oak", "Maple", "Elm", "Pine", "Cedar", "Washington", "Lake", "Hill", "Park", "Main", "Walnut", "Spring"]
SUFFIX = ["Street", "Avenue", "Road", "Drive", "Lane", "Court"]
AREA = ["217", "312", "773", "630", "847", "309", "618", "815"]


def phone_of(i: int) -> str:
    return f"{AREA[i % len(AREA)]}555{i // len(AREA) % 10000:04d}" if i < 80_000 else f"{AREA[i % 8]}{200 + i // 80_000 % 700}{i % 10000:04d}"


def write_customers(path: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["external_id", "name", "phone", "email", "street", "unit", "city", "state", "postal_code", "notes"])
        for i in range(n):
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            out.writerow([f"ext{i}", f"{given} {family}", phone_of(i), f"{given}.{family}{i}@example.com".lower(),
                          f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(SUFFIX)}", "", "Springfield", "IL",
                          f"62{rng.randint(700, 799)}", ""])


def imported_base(folder: Path, n: int) -> Path:
    """A generated base of n customers imported into a new database in folder; its path."""
    from fsm_mcp.importer import import_customers
    from fsm_mcp.settings import Business
    from fsm_mcp.store.db import Database

    csv_path, db_path = folder / "customers.csv", folder / "base.db"
    write_customers(csv_path, n)
    db = Database(db_path)
    import_customers(db, Business(), csv_path)
    db.close()
    return db_path
