"""Who acts: the value a door hands every write service, and the audit log records."""

from __future__ import annotations

SYSTEM = "system:"


def system_actor(name: str) -> str:
    """The actor an automation or a command acts as, e.g. `system:automation-reminders`. A caller's identity is
    `key:<name>`, `oauth:<subject>` or `local`, so a system actor can never be mistaken for one."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"a system actor's name is letters, digits, '-' and '_', not {name!r}")
    return SYSTEM + name
