"""A business's books: `[businesses.<id>.accounting]` in the TOML file (or `[accounting]` for a file of one
business), `FSM_MCP_<ID>_ACCOUNTING_*` (or `FSM_MCP_ACCOUNTING_*`) in the environment, which wins.

Books are kept only over the local backend: ServiceTitan, FieldPulse and Housecall Pro keep the invoices
and send them to the books through their own accounting integrations, so a business on one of them with an
accounting table is refused at load (posting from here too would bill each invoice twice).

Secrets (the client secret, the webhook key, the key that encrypts the stored tokens) come from the
environment or from a file the setting `<name>_file` points to, never from the table itself, and a
message names the setting, never its value.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from fsm_mcp.connectors import vendor_settings
from fsm_mcp.connectors.vendor_settings import SettingsError

SECRETS = ("client_secret", "webhook_key", "token_key")
DEFAULTS = {
    "quickbooks": {"api_url": "https://quickbooks.api.intuit.com", "token_url":
                   "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
                   "authorize_url": "https://appcenter.intuit.com/connect/oauth2", "per_minute": 500, "at_once": 10},
    "xero": {"api_url": "https://api.xero.com", "token_url": "https://identity.xero.com/connect/token",
             "authorize_url": "https://login.xero.com/identity/connect/authorize", "per_minute": 60, "at_once": 5},
}


class AccountingSettings(BaseModel):
    provider: Literal["quickbooks", "xero"]
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    token_key: SecretStr = Field(description="Fernet key (urlsafe base64 of 32 bytes) that encrypts stored tokens")
    webhook_key: SecretStr | None = Field(default=None, description="QuickBooks' verifier token or Xero's webhook key")
    company: str = Field(min_length=1, description="QuickBooks realm id, or Xero tenant id")
    api_url: str = ""
    token_url: str = ""
    authorize_url: str = ""
    redirect_uri: str = "http://localhost:8765/callback"
    email_invoices: bool = Field(default=False, description="The books e-mail each invoice to the customer")
    item: str = Field(default="1", description="QuickBooks: the Item every line is sold as")
    account: str = Field(default="200", description="Xero: the revenue account code of every line")
    tax_type: str = Field(default="OUTPUT", description="Xero: the tax type of taxed lines")
    due_days: int = Field(default=30, ge=0, le=365)
    per_minute: int = Field(default=0, ge=0, description="Requests a minute per company; 0: the published limit")
    at_once: int = Field(default=0, ge=0, description="Requests at once per company; 0: the published limit")
    per_day: int = Field(default=5000, ge=1, description="Xero: requests a day per organisation")
    lease_seconds: int = Field(default=30, ge=3, le=600, description="How long a replica that died holds the books' "
                               "work before another takes it over (renewed a third of this at a time while alive)")

    @model_validator(mode="after")
    def _defaults(self) -> AccountingSettings:
        for name, value in DEFAULTS[self.provider].items():
            if not getattr(self, name):
                setattr(self, name, value)
        return self

    @property
    def rate(self) -> float:
        """Requests a second, for the lanes."""
        return self.per_minute / 60


VENDOR_NAMES = {"servicetitan": "ServiceTitan", "fieldpulse": "FieldPulse", "housecallpro": "Housecall Pro"}


def load(table: dict[str, Any], env: dict[str, str], business: str | None = None,
         backend: str = "local") -> AccountingSettings | None:
    """The books of one business (whose `backend` is given); None when it keeps none (no table, no provider, or
    provider 'none')."""
    values = dict(table)
    for name in SECRETS:
        if name in values:
            raise SettingsError(f"accounting: {name} may not be written in the file; set FSM_MCP_ACCOUNTING_"
                                f"{name.upper()} or {name}_file (a file holding it)")
        path = env.get(f"FSM_MCP_ACCOUNTING_{name.upper()}_FILE") or values.pop(f"{name}_file", None)
        if path and f"FSM_MCP_ACCOUNTING_{name.upper()}" not in env:
            try:
                values[name] = Path(path).expanduser().read_text().strip()
            except OSError as exc:
                raise SettingsError(f"accounting: {name}_file {path!r} cannot be read ({exc.strerror})") from None
    provider = env.get("FSM_MCP_ACCOUNTING_PROVIDER", values.get("provider"))
    if not provider or provider == "none":
        return None
    if backend != "local":
        where = f"[businesses.{business}.accounting]" if business else "[accounting]"
        env_name = f"FSM_MCP_{re.sub(r'[^A-Z0-9]', '_', business.upper())}_" if business else "FSM_MCP_"
        vendor = VENDOR_NAMES.get(backend, backend)
        raise SettingsError(
            f"{where}: provider = {provider!r} cannot be used with backend = {backend!r}: {vendor} keeps the "
            f"invoices and sends them to the books through its own accounting integration, and posting them "
            f"from here as well would bill each one twice. Connect the books in {vendor}, and remove {where} (or set "
            f"provider = \"none\" there, or {env_name}ACCOUNTING_PROVIDER=none)")
    try:
        return vendor_settings.load(AccountingSettings, "accounting", "accounting", values, env)
    except SettingsError as exc:
        if business is None:
            raise
        prefix = f"FSM_MCP_{re.sub(r'[^A-Z0-9]', '_', business.upper())}_"
        said = str(exc).replace("[accounting]", f"[businesses.{business}.accounting]").replace("FSM_MCP_", prefix)
        raise SettingsError(f"[businesses.{business}]: {said}") from None


def load_for(business: str | None = None, env: dict[str, str] | None = None) -> AccountingSettings | None:
    """Read FSM_MCP_CONFIG's table for `business` (or the file's one business) and the environment."""
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    if config := env.get("FSM_MCP_CONFIG"):
        with open(config, "rb") as fh:
            data = tomllib.load(fh)
    tables = data.get("businesses") or {}
    if not tables:
        return load(data.get("accounting", {}), env, backend=env.get("FSM_MCP_BACKEND") or data.get("backend") or "local")
    ident = business or env.get("FSM_MCP_TENANT") or next(iter(tables))
    prefix = f"FSM_MCP_{re.sub(r'[^A-Z0-9]', '_', ident.upper())}_"
    own = {"FSM_MCP_" + k.removeprefix(prefix): v for k, v in env.items() if k.startswith(prefix)}
    table = tables.get(ident) or {}
    return load(table.get("accounting", {}), own, ident, own.get("FSM_MCP_BACKEND") or table.get("backend") or "local")
