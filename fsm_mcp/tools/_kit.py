"""What every tool shares: reaching the caller's business, naming the caller, turning domain errors and
argument mistakes into tool errors, and the annotation presets."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, ParamSpec, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from fsm_mcp.access import callers
from fsm_mcp.access.pii import masked
from fsm_mcp.businesses import ServedBusiness, ServedBusinesses
from fsm_mcp.errors import FsmError
from fsm_mcp.models import readable, untrusted
from fsm_mcp.services.confirmation import Pending
from fsm_mcp.tools._schema import omit_empty

P = ParamSpec("P")
R = TypeVar("R")

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# Destroys or folds away records: the tool previews first and acts only on a confirmation token (see `confirmed`).
DESTROY = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1, max_length=255,
        description="A key unique to this request, e.g. a UUID. Resend the same key when retrying: "
        "the first result comes back and nothing is written twice.",
    ),
]


ConfirmationToken = Annotated[
    str | None,
    Field(min_length=1, max_length=100, description="Leave out for a preview. To act: the token the preview returned, "
          "with the same arguments"),
]


class Preview(BaseModel):
    """The answer of a two-step tool: a preview with a confirmation token, or what was done."""

    applied: bool = Field(description="false: only a preview, nothing changed; true: done")
    will_change: str = untrusted(..., about="What the confirmed call does (in a preview) or did; it quotes records' "
                                 "names and addresses")
    confirmation_token: str | None = omit_empty(
        description="Confirm with a person, then call again with the same arguments and this token")
    expires_at: datetime | None = omit_empty(description="The token is refused after this")
    next_step: str


PREVIEW_NEXT = ("Nothing changed yet. Tell the person exactly what will change; if they agree, call again with the "
                "same arguments and confirmation_token.")


def previewed(pending: Pending, what: str) -> dict[str, Any]:
    """A preview's fields, from the confirmation a service issued."""
    return {"applied": False, "will_change": readable(what), "confirmation_token": pending.token,
            "expires_at": pending.expires_at, "next_step": PREVIEW_NEXT}


def business(ctx: Context[Any, Any]) -> ServedBusiness:
    """The calling caller's business."""
    served: ServedBusinesses = ctx.request_context.lifespan_context
    return served.of(callers.current())


def actor(ctx: Context[Any, Any]) -> str:
    """Who is calling, for the audit log: the identity its credential proved (never a name the client chose)."""
    return callers.current().identity


def agent_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Failures the agent can act on become tool errors; anything else stays a bug. A caller without
    `pii:read` gets the answer with contacts masked and access notes left out."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = await fn(*args, **kwargs)
        except FsmError as exc:
            raise ToolError(str(exc)) from exc
        if isinstance(result, BaseModel) and not callers.current().may("pii:read"):
            return masked(result)
        return result

    wrapper.__doc__ = " ".join(inspect.cleandoc(fn.__doc__ or "").split("\n"))  # the model reads one paragraph
    return wrapper


_PLAIN = {
    "missing": "is required",
    "string_type": "must be text",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number", "float_parsing": "must be a number",
    "decimal_type": "must be a number, e.g. \"129.00\"", "decimal_parsing": "must be a number, e.g. \"129.00\"",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "list_type": "must be a list", "dict_type": "must be an object with named fields",
    "model_type": "must be an object with named fields", "model_attributes_type": "must be an object with named fields",
    "datetime_type": "must be a date and time in ISO 8601, e.g. 2030-11-25T09:00:00",
    "datetime_parsing": "must be a date and time in ISO 8601, e.g. 2030-11-25T09:00:00",
    "datetime_from_date_parsing": "must be a date and time in ISO 8601, e.g. 2030-11-25T09:00:00",
    "date_type": "must be a date, e.g. 2030-11-25", "date_parsing": "must be a date, e.g. 2030-11-25",
    "date_from_datetime_parsing": "must be a date, e.g. 2030-11-25",
    "extra_forbidden": "is not an argument of this tool; leave it out",
}
_PLAIN_WITH_LIMIT = {  # filled from the error's context
    "enum": "must be one of {expected}", "literal_error": "must be one of {expected}",
    "string_too_short": "must be at least {min_length} characters",
    "string_too_long": "is too long: at most {max_length} characters",
    "too_short": "needs at least {min_length} item(s)", "too_long": "has too many items: at most {max_length}",
    "greater_than_equal": "must be at least {ge}", "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}", "less_than": "must be less than {lt}",
}


_WRONG_TYPE = frozenset({"string_type", "model_type", "model_attributes_type", "dict_type", "list_type", "int_type",
                         "float_type", "decimal_type", "bool_type", "datetime_type", "date_type"})


def _where(loc: tuple[int | str, ...], arguments: Any, kind: str) -> str:
    """The field as the schema reads it (`address.street`). Pydantic puts the name of a union's branch into the path
    (`address.AddressIn.street`, `address.function-after[...]`); walking the path through what the caller sent tells the
    two apart: a part that is not a key (or index) of the value there is a branch's name, unless it is the last part
    of a missing field."""
    parts, node = [], arguments
    for i, part in enumerate(loc):
        if isinstance(node, str) and node.lstrip()[:1] in ("{", "["):  # the SDK parses an object sent as JSON text
            with contextlib.suppress(ValueError):
                node = json.loads(node)
        sent = isinstance(node, dict) and part in node
        sent = sent or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if sent:
            node = node[part]
        elif not (i == len(loc) - 1 and kind == "missing" and isinstance(node, dict)):
            continue
        parts.append(str(part))
    return ".".join(parts) or "arguments"


def plain_words(error: ValidationError, arguments: dict[str, Any]) -> str:
    """The caller's argument mistakes, field by field, in words a model acts on: no library names,
    model names or links (a wrong type used to come back as pydantic's report). `arguments`: what the caller sent."""
    said_at: dict[str, list[tuple[str, str]]] = {}
    for err in error.errors(include_url=False):
        kind, ctx = err["type"], err.get("ctx") or {}
        where = _where(err["loc"], arguments, kind)
        if kind in ("too_short", "too_long") and isinstance(err.get("input"), str):  # a length checked after a text check
            kind = f"string_{kind}"
        if kind == "extra_forbidden" and "." in where:
            said = "is not a field of this object; leave it out"
        elif kind in _PLAIN:
            said = _PLAIN[kind]
        elif kind == "string_too_short" and ctx.get("min_length") == 1:
            said = "must not be empty"
        elif kind in _PLAIN_WITH_LIMIT:
            said = _PLAIN_WITH_LIMIT[kind].format_map(defaultdict(str, ctx))
        elif kind == "value_error":
            said = str(ctx.get("error", err["msg"]))
        else:
            said = str(err["msg"]).removeprefix("Value error, ")
        said_at.setdefault(where, []).append((kind, said))
    out = []
    for where, found in said_at.items():
        # A union (text or an object) answers once per branch; the branch the value was meant for says what is wrong.
        meant = [words for kind, words in found if kind not in _WRONG_TYPE]
        if not meant and not any(other.startswith(f"{where}.") for other in said_at):
            kinds = list(dict.fromkeys(words.removeprefix("must be ") for _, words in found))  # "text or an object"
            meant = ["must be " + " or ".join(kinds)]
        out += [f"{where}: {words}" for words in meant]
    return "; ".join(dict.fromkeys(out))  # a union type repeats one mistake per branch
