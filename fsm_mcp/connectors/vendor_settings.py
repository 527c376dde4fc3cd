"""A vendor's settings: `FSM_MCP_<VENDOR>_*` in the environment, or a `[<vendor>]` table in
the TOML file (the environment wins). A missing or wrong one stops start-up with one
message naming each setting as the user would set it, never its value."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

S = TypeVar("S", bound=BaseModel)


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names it as the user would set it."""


def load(model: type[S], label: str, table_name: str, table: dict[str, Any], env: dict[str, str]) -> S:
    prefix = f"FSM_MCP_{table_name.upper()}_"
    values = dict(table)
    for name in model.model_fields:
        if (value := env.get(prefix + name.upper())) is not None:
            values[name] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if not error["loc"]:  # a rule across settings; its message names them
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            name = str(error["loc"][0])
            what = "is missing" if error["type"] == "missing" else f"is wrong: {error['msg']}"
            problems.append(f"{prefix}{name.upper()} (or {name} in the [{table_name}] table) {what}")
        raise SettingsError(f"{label}: " + "; ".join(problems)) from None
