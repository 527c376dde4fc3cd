"""Configuration: environment variables, optionally a TOML file named by FSM_MCP_CONFIG.

The environment wins over the file, so a deployment can override one value without
editing the file. Secrets never come from tool arguments.

One process may serve several businesses: a `[businesses.<id>]` table each, holding what
`[business]` holds plus its `backend` and that backend's table. Their settings from the
environment are `FSM_MCP_<ID>_<NAME>` (e.g. `FSM_MCP_ACME_SERVICETITAN_CLIENT_SECRET`). Without
such tables there is one business, configured as before.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import platformdirs
from pydantic import BaseModel, Field, ValidationError, field_validator

from fsm_mcp.access.config import AccessSettings
from fsm_mcp.connectors.fieldpulse import config as fieldpulse_config
from fsm_mcp.connectors.housecallpro import config as housecallpro_config
from fsm_mcp.connectors.servicetitan import config as servicetitan_config
from fsm_mcp.connectors.vendor_settings import SettingsError
from fsm_mcp.identity.text import fold
from fsm_mcp.inputs import LineItemIn
from fsm_mcp.store import is_postgres

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS = {day: (time(8), time(17)) for day in WEEKDAYS[:5]}


class Business(BaseModel):
    """One business's own rules: its clock, its hours, its job types."""

    tenant_id: str = "default"
    name: str = "My Field Service Co"
    timezone: str = "UTC"
    country: str = Field(default="US", description="ISO 3166 code; sets the default phone region")
    working_hours: dict[str, tuple[time, time]] = Field(default_factory=lambda: dict(DEFAULT_HOURS))
    job_types: dict[str, str] = Field(default_factory=dict, description="job type -> skill it needs")
    event_retention_days: int = Field(default=30, ge=1, le=3650, description="how long the change feed "
                                      "(list_changes, webhooks out) keeps an event")
    price_list: dict[str, list[LineItemIn]] = Field(default_factory=dict, description="job type -> the lines a "
                                                    "completed job of that type is invoiced with, when its completion "
                                                    "carries none")
    follow_up_days: float = Field(default=3, ge=0, le=365, description="a follow_up.due event this long after a "
                                  "job's completion; 0: none")
    invoice_delay_minutes: float = Field(default=0, ge=0, le=1440, description="minutes after a job's completion "
                                         "before the automation invoices it: time for a technician who invoices in "
                                         "the vendor's own app to do so (that invoice is then the job's one); 0: at once")
    tax_rate: Decimal = Field(default=Decimal("0"), ge=0, le=Decimal("0.30"), description="the sales tax, a fraction "
                              "(0.0825 for 8.25 %), of the invoices the automation makes")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like America/Chicago") from exc
        return value

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        value = value.upper()
        if phonenumbers.country_code_for_region(value) == 0:
            raise ValueError(f"unknown country {value!r}; use an ISO 3166 code like US, CA, GB, AU")
        return value

    @field_validator("working_hours")
    @classmethod
    def _weekdays(cls, value: dict[str, tuple[time, time]]) -> dict[str, tuple[time, time]]:
        for day, (start, end) in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"working_hours: {day!r} is not one of {', '.join(WEEKDAYS)}")
            if end <= start:
                raise ValueError(f"working_hours.{day}: the end must be after the start")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def skill_for(self, job_type: str) -> str:
        """The skill a job type needs: the configured mapping, else the job type itself."""
        wanted = fold(job_type)
        for name, skill in self.job_types.items():
            if fold(name) == wanted:
                return fold(skill)
        return wanted

    def priced(self, job_type: str) -> list[LineItemIn]:
        """The price list's lines for a job type (matched as `skill_for` matches), or none."""
        wanted = fold(job_type)
        return next((list(lines) for name, lines in self.price_list.items() if fold(name) == wanted), [])


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("fsm-mcp", appauthor=False)) / "fsm.db"


Backend = Literal["local", "servicetitan", "fieldpulse", "housecallpro"]
VENDORS = {"servicetitan": servicetitan_config.load, "fieldpulse": fieldpulse_config.load,
           "housecallpro": housecallpro_config.load}


GLOBAL_ENV = frozenset({"FSM_MCP_CONFIG", "FSM_MCP_DB", "FSM_MCP_LOG_LEVEL", "FSM_MCP_TENANT", "FSM_MCP_REDIS_URL",
                        "FSM_MCP_REPLICAS"})
BUSINESS_KEYS = ("name", "timezone", "country", "working_hours", "job_types", "event_retention_days", "price_list",
                 "follow_up_days", "invoice_delay_minutes", "tax_rate")
BUSINESS_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class Settings(BaseModel):
    """One business's settings, and the server-wide ones (the store, logging, access)."""

    db_path: Path | str = Field(default_factory=default_db_path)  # a file (SQLite), or a postgresql:// URL
    business: Business = Field(default_factory=Business)
    log_level: str = "INFO"
    backend: Backend = "local"
    servicetitan: servicetitan_config.ServiceTitanSettings | None = None
    fieldpulse: fieldpulse_config.FieldPulseSettings | None = None
    housecallpro: housecallpro_config.HousecallProSettings | None = None
    access: AccessSettings = Field(default_factory=AccessSettings)
    # Several replicas: Redis shares the vendors' pace and 429 holds and the per-caller limits between them;
    # without it each replica paces its vendors at 1/replicas of the published rate.
    redis_url: str | None = Field(default=None, pattern=r"^rediss?://", description="FSM_MCP_REDIS_URL: "
                                  "redis://host:port/db, shared by every replica")
    replicas: int = Field(default=1, ge=1, le=1000, description="FSM_MCP_REPLICAS: how many processes serve these "
                          "businesses without Redis")

    @field_validator("db_path", mode="before")
    @classmethod
    def _store(cls, value: object) -> object:
        return value if is_postgres(value) else Path(str(value)).expanduser()

    @classmethod
    def load(cls, db: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
             business: str | None = None) -> Settings:
        """One business's settings: `business`, else FSM_MCP_TENANT, else the only one configured."""
        env = dict(os.environ) if env is None else env
        every = load_businesses(db, env)
        wanted = business or env.get("FSM_MCP_TENANT")
        if wanted is None:
            if len(every) > 1:
                raise ValueError(f"several businesses are configured ({', '.join(every)}); name one with --business "
                                 "(or FSM_MCP_TENANT)")
            return next(iter(every.values()))
        if wanted not in every:
            raise ValueError(f"no business {wanted!r} is configured; the configured ones are {', '.join(every)}")
        return every[wanted]


def load_businesses(db: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> dict[str, Settings]:
    """Every configured business's settings, by business id (the first is the default)."""
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    if config := env.get("FSM_MCP_CONFIG"):
        with open(config, "rb") as fh:
            data = tomllib.load(fh)
    shared: dict[str, Any] = {"access": AccessSettings.load(data.get("serve", {}), env)}
    if path := db or env.get("FSM_MCP_DB") or data.get("db"):
        shared["db_path"] = str(path) if is_postgres(path) else Path(path).expanduser()
    if level := env.get("FSM_MCP_LOG_LEVEL") or data.get("log_level"):
        shared["log_level"] = str(level).upper()
    if redis := env.get("FSM_MCP_REDIS_URL") or data.get("redis_url"):
        shared["redis_url"] = redis
    if replicas := env.get("FSM_MCP_REPLICAS") or data.get("replicas"):
        shared["replicas"] = replicas
    tables = data.get("businesses")
    if not tables:
        business: dict[str, Any] = dict(data.get("business", {}))
        for key in ("tenant_id", "name", "timezone", "country", "event_retention_days", "follow_up_days",
                    "invoice_delay_minutes", "tax_rate"):
            if value := env.get(f"FSM_MCP_{key.upper()}"):
                business[key] = value
        if tenant := env.get("FSM_MCP_TENANT"):
            business["tenant_id"] = tenant
        one = _business(shared, business, data, env)
        return {one.business.tenant_id: one}
    if "business" in data:
        raise ValueError("the file has both [business] and [businesses.<id>] tables; move [business] under "
                         "[businesses.<id>]")
    out = {}
    for ident, table in tables.items():
        if not isinstance(table, dict) or not re.match(BUSINESS_ID, ident):
            raise ValueError(f"[businesses.{ident}]: a business id is lower-case letters, digits, '-' and '_'")
        prefix = f"FSM_MCP_{re.sub(r'[^A-Z0-9]', '_', ident.upper())}_"
        own = {k: v for k, v in env.items() if k in GLOBAL_ENV or not k.startswith("FSM_MCP_")}
        own |= {"FSM_MCP_" + k.removeprefix(prefix): v for k, v in env.items() if k.startswith(prefix)}
        business = {k: v for k, v in table.items() if k in BUSINESS_KEYS}
        for key in ("name", "timezone", "country", "event_retention_days", "follow_up_days", "invoice_delay_minutes",
                    "tax_rate"):
            if value := own.get(f"FSM_MCP_{key.upper()}"):
                business[key] = value
        business["tenant_id"] = ident
        try:
            out[ident] = _business(shared, business, table, own)
        except ValueError as exc:  # name each setting as it is set for this business
            said = re.sub(r"\[(servicetitan|fieldpulse|housecallpro)\]", rf"[businesses.{ident}.\1]", str(exc))
            said = said.replace("[business] table", f"[businesses.{ident}] table")
            raise ValueError(f"[businesses.{ident}]: {said.replace('FSM_MCP_', prefix)}") from None
    return out


def _business(shared: dict[str, Any], business: dict[str, Any], data: dict[str, Any], env: dict[str, str]) -> Settings:
    settings: dict[str, Any] = {**shared, "business": business}
    backend = env.get("FSM_MCP_BACKEND") or data.get("backend") or "local"
    if backend not in ("local", *VENDORS):
        raise ValueError(f"FSM_MCP_BACKEND (or backend in the file) is {backend!r}; use local, {', '.join(VENDORS)}")
    settings["backend"] = backend
    if backend in VENDORS:  # read only when chosen: a local business needs none of these
        settings[backend] = VENDORS[backend](data.get(backend, {}), env)
    try:
        return Settings.model_validate(settings)
    except ValidationError as exc:  # name each setting as it is set, not pydantic's dump
        problems = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            said = str(error["msg"]).removeprefix("Value error, ")
            if loc[:1] == ["business"] and len(loc) > 1:
                problems.append(f"FSM_MCP_{loc[1].upper()} (or {loc[1]} in the [business] table): {said}")
            else:
                name = loc[0] if loc else "configuration"
                problems.append(f"FSM_MCP_{name.upper()} (or {name} in the file): {said}")
        raise SettingsError("; ".join(problems)) from None
