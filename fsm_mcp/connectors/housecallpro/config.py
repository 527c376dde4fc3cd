"""Housecall Pro settings: `FSM_MCP_HOUSECALLPRO_*` in the environment, or a `[housecallpro]`
table in the TOML file (the environment wins)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, SecretStr

from fsm_mcp.connectors import vendor_settings

PRODUCTION = "https://api.housecallpro.com"  # the spec's only server


class HousecallProSettings(BaseModel):
    api_key: SecretStr = Field(description="The company's API key (Housecall Pro: App Store, API), sent as "
                                           "Authorization: Token <key>")
    api_url: str = PRODUCTION
    skills: dict[str, list[str]] = Field(
        default_factory=dict, description="employee name or id -> skills, added to the skills in the employee's tags")
    rate: float = Field(default=10.0, gt=0, description="Requests per second; the spec publishes no limit, and a 429's "
                                                         "Retry-After holds the whole company")
    sync_interval: float = Field(default=300.0, ge=0, description="Seconds between background directory syncs; 0 turns them off")
    sync_page_size: int = Field(default=100, ge=1, le=100, description="Customers per page when syncing")


def load(table: dict[str, Any], env: dict[str, str]) -> HousecallProSettings:
    return vendor_settings.load(HousecallProSettings, "Housecall Pro backend", "housecallpro", table, env)
