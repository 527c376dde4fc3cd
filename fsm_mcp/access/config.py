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
    # One caller is one deployment (a voice agent's backend) holding a session per live conversation, and a
    # session it never ends stays open for session_idle_timeout: 50 covers a busy office's phone lines with room
    # for lingering ones. A business's share is a tenth of the default pool, so one business's callers cannot
    # crowd out the others.
    max_sessions_per_caller: int = Field(default=50, ge=1, description="Open HTTP sessions at most for one caller "
                                         "(API key or OAuth subject); more are refused with 429")
    max_sessions_per_business: int = Field(default=100, ge=1, description="Open HTTP sessions at most for the "
                                           "callers of one business together; more are refused with 429")
    header_timeout: float = Field(default=5, gt=0, le=300, description="Seconds a connection may take to send a "
                                  "request's headers (from its opening, or its first byte after a response) before "
                                  "it is closed")
    stateless: bool = Field(default=False, description="Keep no session between requests (for several processes "
                            "behind one load balancer)")
    calls_per_minute: int = Field(default=240, ge=1, description="Tool calls a minute, per caller")
    writes_per_minute: int = Field(default=60, ge=1, description="Tool calls that write, a minute, per caller")
    # The local user (stdio, or a server built in process) is the person at this machine: a script of theirs
    # replaying a day's jobs is not a runaway remote agent, so no limit unless one is asked for.
    local_calls_per_minute: int | None = Field(default=None, ge=1, description="Tool calls a minute for the local "
                                               "user over stdio (default: no limit)")
    local_writes_per_minute: int | None = Field(default=None, ge=1, description="Tool calls that write, a minute, "
                                                "for the local user over stdio (default: no limit)")
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

    def crowding(self, businesses: int) -> str | None:
        """A warning when one of several businesses could hold every session of the pool."""
        if businesses < 2 or self.stateless or self.max_sessions_per_business < self.max_sessions:
            return None
        return (f"one business's callers may hold all {self.max_sessions} sessions (max_sessions_per_business is "
                f"{self.max_sessions_per_business}): lower it, or raise max_sessions, so that the other businesses "
                "keep room")

    @property
    def oauth(self) -> bool:
        return self.oauth_issuer is not None

    @classmethod
    def load(cls, table: dict[str, Any], env: dict[str, str]) -> AccessSettings:
        return vendor_settings.load(cls, "serve settings", "serve", table, env)
