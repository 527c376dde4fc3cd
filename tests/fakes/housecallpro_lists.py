"""How the fake Housecall Pro reads a request and pages an answer: `page`/`page_size` (from 1; 10 a page
unless asked), `sort_by`/`sort_direction` (newest first unless asked), arrays in the query sent either
Rails' way (`work_status[]=scheduled`) or repeated (`work_status=scheduled`), and times with or without
an offset (without one, they are the company's local time). Refusals carry the spec's bodies:
400 `{"message": <the errors in a sentence>, <field>: <its error>}` for a field that is wrong,
404 and 422 `{"error": {"message": ...}}` (ErrorResponse) for what is missing or not allowed."""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from typing import Any

from starlette.datastructures import QueryParams

MOST_PER_PAGE = 100  # the spec names no ceiling; above it a page is cut to this (the answer's page_size says so)


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


def invalid(field: str, error: str) -> Refused:
    """400: `field` is wrong; `error` reads after the field's name ("is required")."""
    name = field.replace("_", " ").capitalize()
    return Refused(400, {"message": f"{name} {error}", field: error})


def not_found(kind: str) -> Refused:
    return Refused(404, {"error": {"message": f"{kind} not found"}})


def unprocessable(message: str) -> Refused:
    return Refused(422, {"error": {"message": message}})


def stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, field: str, zone: tzinfo) -> datetime:
    if not isinstance(value, str) or not value:
        raise invalid(field, "must be an ISO 8601 date-time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(field, "must be an ISO 8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


class Query:
    def __init__(self, params: QueryParams, path: dict[str, Any], zone: tzinfo) -> None:
        self.params, self.path, self.zone = params, path, zone

    def get(self, name: str) -> str | None:
        return self.params.get(name)

    def many(self, name: str) -> list[str]:
        values = self.params.getlist(name) + self.params.getlist(f"{name}[]")
        return [v for value in values for v in value.split(",") if v]

    def time(self, name: str) -> datetime | None:
        raw = self.get(name)
        return None if raw is None else parse_time(raw, name, self.zone)

    def number(self, name: str) -> float | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError:
            raise invalid(name, "must be a number") from None

    def sorted(self, rows: list[dict[str, Any]], allowed: tuple[str, ...] | None = None,
               default: str = "created_at") -> list[dict[str, Any]]:
        by = self.get("sort_by") or default
        if (allowed is not None and by not in allowed) or (rows and by not in rows[0]):
            raise invalid("sort_by", f"must be one of {', '.join(allowed or sorted(rows[0]))}")
        direction = self.get("sort_direction") or "desc"
        if direction not in ("asc", "desc"):
            raise invalid("sort_direction", "must be asc or desc")
        def key(row: dict[str, Any]) -> tuple[Any, ...]:  # numbers as numbers; the id breaks ties, so paging is stable
            value = row.get(by)
            if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
                return (0, float(value), "", row["id"])
            return (1, 0.0, str(value or ""), row["id"])

        return sorted(rows, key=key, reverse=direction == "desc")

    def page(self, rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
        page, size = self._whole("page", 1), min(self._whole("page_size", 10), MOST_PER_PAGE)
        return {"page": page, "page_size": size, "total_pages": math.ceil(len(rows) / size), "total_items": len(rows),
                name: rows[(page - 1) * size: page * size]}

    def _whole(self, name: str, default: int) -> int:
        raw = self.get(name)
        try:
            value = int(raw) if raw is not None else default
        except ValueError:
            raise invalid(name, "must be a whole number from 1") from None
        if value < 1:
            raise invalid(name, "must be a whole number from 1")
        return value
