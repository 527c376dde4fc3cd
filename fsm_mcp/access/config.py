"""Settings of `fsm-mcp serve` (access, limits, the HTTP server): `FSM_MCP_SERVE_*` in the environment, or a `[serve]`
table in the TOML file (the environment wins)."""

from __future__ import annotations

from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from fsm_mcp.connectors import vendor_settings


class AccessSettings(BaseModel):
    # An issuer is compared as an exact string (RFC 8414): https://login.example.com must not gain a "/".
    model_config = ConfigDict(url_preserve_empty_path=True)

    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host headers accepted besides this machine's own names (e.g. mcp.example.com, "
        "or mcp.example.com:* for any port); needed behind a proxy or on a non-loopback address")
    allowed_origins: list[str] = Field(
        default_factory=list, description="Origin headers accepted besides http://localhost and 127.0.0.1 (browser clients)")
    max_request_bytes: int = Field(default=1_000_000, ge=10_000, le=50_000_000, description="Largest request body")
    session_idle_timeout: float = Field(default=600, gt=0, description="Seconds before an idle HTTP session is closed")
    max_sessions: int = Field(default=1000, ge=1, description="Open HTTP sessions at most; more are refused with 503")
    stateless: bool = Field(default=False, description="Keep no session between requests (for several processes "
                            "behind one load balancer)")
    calls_per_minute: int = Field(default=240, ge=1, description="Tool calls a minute, per caller")
    writes_per_minute: int = Field(default=60, ge=1, description="Tool calls that write, a minute, per caller")
    oauth_issuer: AnyHttpUrl | None = Field(default=None, description="The authorization server whose tokens are accepted")
    oauth_jwks_url: AnyHttpUrl | None = Field(default=None, description="Where the issuer publishes its signing keys")
    resource_url: AnyHttpUrl | None = Field(
        default=None, description="This server's public URL, e.g. https://mcp.example.com/mcp: tokens must name it as "
        "their audience")
    business_claim: str = Field(default="fsm_business", description="The token claim naming the caller's business")

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _oauth_whole(self) -> AccessSettings:
        given = [self.oauth_issuer, self.oauth_jwks_url, self.resource_url]
        if any(given) and not all(given):
            raise ValueError("OAuth needs oauth_issuer, oauth_jwks_url and resource_url together")
        return self

    @property
    def oauth(self) -> bool:
        return self.oauth_issuer is not None

    @classmethod
    def load(cls, table: dict[str, Any], env: dict[str, str]) -> AccessSettings:
        return vendor_settings.load(cls, "serve settings", "serve", table, env)
