"""Configuration: environment variables, optionally a TOML file named by FSM_MCP_CONFIG.

The environment wins over the file, so a deployment can override one value without
editing the file. Secrets never come from tool arguments.
"""

from __future__ import annotations

import os
import tomllib
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import platformdirs
from pydantic import BaseModel, Field, field_validator

from fsm_mcp.connectors.fieldpulse import config as fieldpulse_config
from fsm_mcp.connectors.servicetitan import config as servicetitan_config
from fsm_mcp.identity.text import fold

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


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("fsm-mcp", appauthor=False)) / "fsm.db"


Backend = Literal["local", "servicetitan", "fieldpulse"]
VENDORS = {"servicetitan": servicetitan_config.load, "fieldpulse": fieldpulse_config.load}


class Settings(BaseModel):
    db_path: Path = Field(default_factory=default_db_path)
    business: Business = Field(default_factory=Business)
    log_level: str = "INFO"
    backend: Backend = "local"
    servicetitan: servicetitan_config.ServiceTitanSettings | None = None
    fieldpulse: fieldpulse_config.FieldPulseSettings | None = None

    @classmethod
    def load(cls, db: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        data: dict[str, Any] = {}
        if config := env.get("FSM_MCP_CONFIG"):
            with open(config, "rb") as fh:
                data = tomllib.load(fh)
        business: dict[str, Any] = dict(data.get("business", {}))
        for key in ("tenant_id", "name", "timezone", "country"):
            if value := env.get(f"FSM_MCP_{key.upper()}"):
                business[key] = value
        if tenant := env.get("FSM_MCP_TENANT"):
            business["tenant_id"] = tenant
        settings: dict[str, Any] = {"business": business}
        if path := db or env.get("FSM_MCP_DB") or data.get("db"):
            settings["db_path"] = Path(path).expanduser()
        if level := env.get("FSM_MCP_LOG_LEVEL") or data.get("log_level"):
            settings["log_level"] = str(level).upper()
        backend = env.get("FSM_MCP_BACKEND") or data.get("backend") or "local"
        if backend not in ("local", *VENDORS):
            raise ValueError(f"FSM_MCP_BACKEND (or backend in the file) is {backend!r}; use local, {', '.join(VENDORS)}")
        settings["backend"] = backend
        if backend in VENDORS:  # read only when chosen: a local business needs none of these
            settings[backend] = VENDORS[backend](data.get(backend, {}), env)
        return cls.model_validate(settings)
