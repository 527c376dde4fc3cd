"""What every write service's request model is: frozen, closed to unknown fields, and hashed whole
for its idempotency key (`store.idempotency.request_hash`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
