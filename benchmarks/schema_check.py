"""What a client pays to check one lookup_customer result against the published output schema.

Clients check every structured result (the `mcp` client does, with `jsonschema`). Prints the
median time of a check against pydantic's derived schema (the baseline) and against the plain
form the server publishes (refs inlined, no titles), interleaved so that load on the machine
falls on both alike.

    python benchmarks/schema_check.py
"""

from __future__ import annotations

import statistics
import time

from jsonschema import Draft202012Validator
from pydantic import TypeAdapter

from fsm_mcp.tools._schema import plain_schema
from fsm_mcp.tools.customers import LookupResult

ROUNDS, CHECKS = 21, 100


def main() -> None:
    derived = TypeAdapter(LookupResult).json_schema()
    forms = {"pydantic's form (baseline)": derived, "published plain form": plain_schema(derived)}
    card = {"customer_id": "cus_1", "name": "A Customer", "phones": ["+12175550143"], "emails": ["a@example.com"],
            "notes": "gate code", "recent_jobs": [], "open_balance": "12.50",
            "locations": [{"location_id": f"loc_{i}", "address": "1 Any St", "access_notes": "dog",
                           "equipment": ["Carrier furnace"]} for i in range(3)]}
    match = {"customer_id": "cus_1", "name": "A Customer", "score": 97, "confidence": "exact", "reasons": ["phone"]}
    result = {"matches": [match] * 3, "customer": card, "next_step": "Greet them by name."}
    validators = {name: Draft202012Validator(schema) for name, schema in forms.items()}
    runs: dict[str, list[float]] = {name: [] for name in forms}
    for _ in range(ROUNDS):
        for name, validator in validators.items():
            start = time.perf_counter()
            for _ in range(CHECKS):
                validator.validate(result)
            runs[name].append((time.perf_counter() - start) / CHECKS * 1000)
    for name, times in runs.items():
        print(f"{name:28} {statistics.median(times):.3f} ms a check (median of {ROUNDS} x {CHECKS})")


if __name__ == "__main__":
    main()
