"""ServiceTitan settings: `FSM_MCP_SERVICETITAN_*` in the environment, or a `[servicetitan]`
table in the TOML file (the environment wins)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr

from fsm_mcp.connectors import vendor_settings
from fsm_mcp.connectors.vendor_settings import SettingsError

__all__ = ["ServiceTitanSettings", "SettingsError", "load"]


class ServiceTitanSettings(BaseModel):
    tenant_id: str = Field(pattern=r"^\d+$", description="The ServiceTitan tenant (a number)")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    app_key: SecretStr
    app_guid: str = Field(min_length=1, description="The application's GUID, under which jobs carry externalData")
    campaign_id: int = Field(gt=0, description="Campaign every booked job is filed under (the API lists none)")
    business_unit_id: int = Field(gt=0, description="Business unit of a job whose type has no entry in business_units")
    business_units: dict[str, int] = Field(default_factory=dict, description="job type name -> business unit id")
    skills_field: str = Field(default="Skills", description="Technician custom field holding skills, ';' or ',' separated")
    skills: dict[str, list[str]] = Field(default_factory=dict, description="technician name or id -> skills, added to the field's")
    cancel_reason: str | None = Field(default=None, description="Cancel reason used by update_job_status; else the first active")
    hold_reason: str | None = Field(default=None, description="Hold reason used by update_job_status; else the first active")
    api_url: str = "https://api.servicetitan.io"
    auth_url: str = "https://auth.servicetitan.io"
    rate: float = Field(default=60.0, gt=0, description="Requests per second: the published limit per app and tenant")
    sync_interval: float = Field(default=60.0, ge=0, description="Seconds between background directory syncs; 0 turns them off")
    sync_page_size: int = Field(default=5000, ge=1, le=5000, description="Records per page when syncing (the API's most is 5000)")
    # Webhooks in (/webhooks/servicetitan/<business>): ServiceTitan's optional HMAC-SHA256 signature of the raw
    # body, under the key given when the webhook was registered. The published spec names neither the header nor
    # the encoding: both are settings, with these defaults.
    webhook_key: SecretStr | None = Field(default=None, min_length=32, max_length=64,
                                          description="The webhook's HMAC key (32-64 characters); unset: deliveries are unsigned")
    webhook_signature_header: str = Field(default="X-ServiceTitan-Signature", min_length=1,
                                          description="Header carrying the signature")
    webhook_signature_encoding: Literal["base64", "hex"] = Field(default="base64", description="How the HMAC digest is written")
    webhook_secret: SecretStr | None = Field(default=None, min_length=16, description=(
        "Without a webhook_key: the secret ending the webhook's URL (/webhooks/servicetitan/<business>/<secret>)"))


def load(table: dict[str, Any], env: dict[str, str]) -> ServiceTitanSettings:
    return vendor_settings.load(ServiceTitanSettings, "ServiceTitan backend", "servicetitan", table, env)
