"""FieldPulse settings: `FSM_MCP_FIELDPULSE_*` in the environment, or a `[fieldpulse]` table
in the TOML file (the environment wins)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, SecretStr

from fsm_mcp.connectors import vendor_settings

PRODUCTION = "https://ywe3crmpll.execute-api.us-east-2.amazonaws.com/stage"  # the spec's only server


class FieldPulseSettings(BaseModel):
    api_key: SecretStr = Field(description="The company's API key, sent as x-api-key (FieldPulse support issues it)")
    api_url: str = PRODUCTION
    skills: dict[str, list[str]] = Field(
        default_factory=dict, description="technician (user) name or id -> skills; FieldPulse users carry none")
    rate: float = Field(default=50.0, gt=0, description="Requests per second: the published limit per API key")
    sync_interval: float = Field(default=300.0, ge=0, description="Seconds between background directory syncs; 0 turns them off")
    webhook_secret: SecretStr | None = Field(default=None, min_length=16, description=(
        "The secret ending the webhook's URL (/webhooks/fieldpulse/<business>/<secret>); FieldPulse signs nothing. "
        "Unset: webhooks are refused, and job changes are polled only"))


def load(table: dict[str, Any], env: dict[str, str]) -> FieldPulseSettings:
    return vendor_settings.load(FieldPulseSettings, "FieldPulse backend", "fieldpulse", table, env)
