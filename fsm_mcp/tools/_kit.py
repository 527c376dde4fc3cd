"""What every tool shares: reaching the app, naming the caller, turning domain errors
into tool errors, and the annotation presets."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, ParamSpec, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from fsm_mcp.app import App
from fsm_mcp.errors import FsmError

P = ParamSpec("P")
R = TypeVar("R")

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1, max_length=255,
        description="A key unique to this request, e.g. a UUID. Resend the same key when retrying: "
        "the first result comes back and nothing is written twice.",
    ),
]


def app(ctx: Context[Any, Any]) -> App:
    return ctx.request_context.lifespan_context  # type: ignore[no-any-return]


def actor(ctx: Context[Any, Any]) -> str:
    """Who is calling, for the audit log (authenticated identities arrive in a later change)."""
    params = getattr(ctx.request_context.session, "client_params", None)
    info = getattr(params, "client_info", None)
    return f"client:{info.name}" if info and getattr(info, "name", None) else "client:unknown"


def agent_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Failures the agent can act on become tool errors; anything else stays a bug."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except FsmError as exc:
            raise ToolError(str(exc)) from exc

    wrapper.__doc__ = " ".join(inspect.cleandoc(fn.__doc__ or "").split("\n"))  # the model reads one paragraph
    return wrapper
