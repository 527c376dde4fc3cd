"""Errors fsm-mcp raises on purpose.

    FsmError                   a failure the calling agent can act on
    ├── InvalidInput           a field's value is wrong (names the field, says what to send)
    ├── NotFound               an id that does not exist in this business
    ├── Conflict               the request clashes with stored state
    │   ├── SchedulingConflict the technician is already booked in that window
    │   ├── InvalidTransition  the job cannot move to that status from where it is
    │   ├── AmbiguousCustomer  several customers fit; the agent must ask the caller
    │   └── IdempotencyMismatch the key was used before with different arguments
    ├── Busy                   another process holds the store's write lock too long; retry
    └── VendorError            the business's platform (ServiceTitan, FieldPulse, Housecall Pro) failed us
        ├── VendorUnavailable  it is down, slow or rate limiting, and retries ran out; try later
        ├── VendorRejected     it refused the request as invalid; says what it objected to
        └── WriteUncertain     a write was sent and its answer lost, and no read-back could
                               tell whether it was done; says what a retry does

Every message is written for the model: what was wrong and what to do next. The tool
layer turns these into MCP tool errors (`isError: true`); anything else that escapes is
a bug, which the SDK logs and hides from the model.
"""

from __future__ import annotations


class FsmError(Exception):
    """A failure the calling agent can act on."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidInput(FsmError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class NotFound(FsmError):
    def __init__(self, kind: str, ident: str, field: str, hint: str) -> None:
        super().__init__(f"{field}: no {kind} with id {ident!r} in this business. {hint}", field=field)


class Conflict(FsmError):
    pass


class SchedulingConflict(Conflict):
    pass


class InvalidTransition(Conflict):
    pass


class AmbiguousCustomer(Conflict):
    pass


class IdempotencyMismatch(Conflict):
    pass


class Busy(FsmError):
    pass


class VendorError(FsmError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class VendorUnavailable(VendorError):
    pass


class VendorRejected(VendorError):
    pass


class WriteUncertain(VendorError):
    """`happened`: what is known, without the advice (a caller that knows what a retry does adds its own)."""

    def __init__(self, message: str, *, happened: str = "") -> None:
        super().__init__(message)
        self.happened = happened or message
