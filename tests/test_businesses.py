"""One process serving several businesses: each caller is bound to its own, and to it another
business's records do not exist."""

import re
from pathlib import Path

import anyio
import pytest

from fsm_mcp.settings import Settings, load_businesses
from tests import stores
from tests.conftest import MONDAY_9, NEW_CALLER, call, fail
from tests.http_rig import ENV, client, fsm, new_key, serving
from tests.when import at, day

TWO = """
[businesses.acme]
name = "Acme Heating"
timezone = "America/Chicago"

[businesses.bolt]
name = "Bolt Electric"
timezone = "America/New_York"
country = "US"
[businesses.bolt.job_types]
"Panel upgrade" = "electrical"
"""


def two_businesses(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "fsm.toml"
    config.write_text(TWO)
    return {**ENV, "FSM_MCP_CONFIG": str(config)}


def test_each_business_table_is_one_business_and_commands_must_name_one(tmp_path: Path) -> None:
    env = two_businesses(tmp_path)
    every = load_businesses(db=tmp_path / "x.db", env=env)
    assert list(every) == ["acme", "bolt"]
    assert every["bolt"].business.skill_for("panel upgrade") == "electrical"
    assert every["acme"].business.timezone == "America/Chicago"
    assert Settings.load(env=env, business="bolt").business.name == "Bolt Electric"
    assert Settings.load(env={**env, "FSM_MCP_TENANT": "acme"}).business.tenant_id == "acme"
    with pytest.raises(ValueError, match="several businesses are configured"):
        Settings.load(env=env)
    with pytest.raises(ValueError, match="no business 'zeta'"):
        Settings.load(env=env, business="zeta")
    # a business's own settings from the environment reach only that business
    own = load_businesses(env={**env, "FSM_MCP_BOLT_TIMEZONE": "America/Denver"})
    assert own["bolt"].business.timezone == "America/Denver" and own["acme"].business.timezone == "America/Chicago"
    refused = fsm("import", "customers", str(tmp_path / "fsm.toml"), "--db", str(tmp_path / "x.db"), env=env)
    assert refused.returncode == 2 and "--business" in refused.stderr


def test_the_readmes_two_businesses_are_what_the_server_reads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if re.search(r"^\[businesses\.", b, re.M)]
    config = tmp_path / "fsm.toml"
    config.write_text(block)
    every = load_businesses(env={"FSM_MCP_CONFIG": str(config), "FSM_MCP_BOLT_SERVICETITAN_CLIENT_SECRET": "s",
                                 "FSM_MCP_BOLT_SERVICETITAN_APP_KEY": "a"})
    assert every["acme"].backend == "local" and every["bolt"].backend == "servicetitan"
    assert every["bolt"].servicetitan is not None and every["bolt"].servicetitan.client_secret.get_secret_value() == "s"
    with pytest.raises(ValueError, match=r"FSM_MCP_BOLT_SERVICETITAN_APP_KEY \(or app_key in the "
                                         r"\[businesses.bolt.servicetitan\] table\) is missing"):
        load_businesses(env={"FSM_MCP_CONFIG": str(config), "FSM_MCP_BOLT_SERVICETITAN_CLIENT_SECRET": "s"})


def test_todays_single_business_file_keeps_working(tmp_path: Path) -> None:
    config = tmp_path / "one.toml"
    config.write_text('[business]\nname = "Solo Plumbing"\ntimezone = "America/Chicago"\n')
    one = Settings.load(env={"FSM_MCP_CONFIG": str(config)})
    assert one.business.tenant_id == "default" and one.business.name == "Solo Plumbing"


@pytest.mark.anyio
async def test_a_caller_bound_to_one_business_cannot_read_write_or_detect_anothers_records(tmp_path: Path) -> None:
    env = two_businesses(tmp_path)
    db = tmp_path / "two.db"
    everything = ("customers:read", "pii:read", "jobs:write", "dispatch:write", "billing:write", "customers:merge")
    acme = new_key(db, "acme-voice", *everything, env=env, business="acme")
    bolt = new_key(db, "bolt-voice", *everything, env=env, business="bolt")
    probes = leaks = 0
    with serving(db, env=env) as base, anyio.fail_after(90):
        async with client(base, acme) as a:
            job = await call(a, "create_job", customer=NEW_CALLER, job_type="hvac", summary="no heat",
                             idempotency_key="shared-key", **MONDAY_9)
            customer_id, job_id = job["customer_id"], job["job_id"]
        async with client(base, bolt) as b:
            found = await call(b, "lookup_customer", phone="(312) 555-0188", name="Maria Garcia")
            probes += 1
            leaks += len(found["matches"])
            listed = await call(b, "list_jobs", date_from=at(day(-1), 0), date_to=at(day(2), 0))
            probes += 1
            leaks += len(listed["jobs"])
            duplicates = await call(b, "find_duplicate_customers", min_confidence="possible")
            probes += 1
            leaks += len(duplicates["groups"])
            for tool, args in (
                ("get_customer", {"customer_id": customer_id}),
                ("get_job", {"job_id": job_id}),
                ("update_job_status", {"job_id": job_id, "status": "on_hold"}),
                ("dispatch_technician", {"job_id": job_id, "technician_id": "tech_none"}),
                ("create_job", {"customer_id": customer_id, "job_type": "electrical", "summary": "x",
                                "idempotency_key": "b-1", **MONDAY_9}),
                ("create_invoice", {"job_id": job_id, "idempotency_key": "b-2", "line_items": [
                    {"description": "x", "kind": "labor", "quantity": "1", "unit_price": "1"}]}),
                ("merge_customers", {"keep_id": customer_id, "merge_ids": [customer_id + "x"],
                                     "idempotency_key": "b-3"}),
            ):
                said = await fail(b, tool, **args)
                probes += 1
                # to bolt, acme's ids look like ids that do not exist: the same words as any unknown id
                leaks += "not found" not in said.lower() and "no customer" not in said.lower() \
                    and "no job" not in said.lower()
            # the same idempotency key in another business is another key: a new job, not acme's
            other = await call(b, "create_job", customer={**NEW_CALLER, "name": "Maria Garcia"}, job_type="electrical",
                               summary="sparks", idempotency_key="shared-key", **MONDAY_9)
            probes += 1
            leaks += other["job_id"] == job_id or other["customer_id"] == customer_id
    conn = stores.connect(db)
    tenants = dict(conn.execute("SELECT tenant_id, count(*) FROM jobs GROUP BY tenant_id").fetchall())
    assert tenants == {"acme": 1, "bolt": 1}
    assert conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone() == ("scheduled",)
    assert probes == 11 and leaks == 0


@pytest.mark.anyio
async def test_each_callers_tool_list_describes_its_own_businesss_backend(tmp_path: Path) -> None:
    from tests.fakes.fieldpulse import API_KEY, FakeFieldPulse
    from tests.fakes.serve import serving as vendor_serving

    config = tmp_path / "fsm.toml"
    config.write_text(TWO.replace('country = "US"\n', 'country = "US"\nbackend = "fieldpulse"\n'))
    db = tmp_path / "two.db"
    with vendor_serving(FakeFieldPulse().app) as fieldpulse:
        env = {**ENV, "FSM_MCP_CONFIG": str(config), "FSM_MCP_BOLT_FIELDPULSE_API_KEY": API_KEY,
               "FSM_MCP_BOLT_FIELDPULSE_API_URL": fieldpulse, "FSM_MCP_BOLT_FIELDPULSE_SYNC_INTERVAL": "0"}
        acme = new_key(db, "acme-desk", "customers:read", "jobs:write", env=env, business="acme")
        bolt = new_key(db, "bolt-desk", "customers:read", "jobs:write", env=env, business="bolt")
        listed = {}
        with serving(db, env=env) as base, anyio.fail_after(60):
            for name, key in (("acme", acme), ("bolt", bolt)):
                async with client(base, key) as c:
                    listed[name] = {t.name: t for t in (await c.list_tools()).tools}
    assert listed["acme"].keys() == listed["bolt"].keys()
    assert not any("FieldPulse" in (t.description or "") for t in listed["acme"].values())
    assert not any(t.annotations and t.annotations.open_world_hint for t in listed["acme"].values())
    assert "recorded as a job comment" in (listed["bolt"]["update_job_status"].description or "")
    assert all(t.annotations and t.annotations.open_world_hint for t in listed["bolt"].values())


def test_a_wrong_business_setting_is_named_as_the_user_sets_it_not_as_a_validation_dump(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as zone:
        Settings.load(env={"FSM_MCP_TIMEZONE": "Mars/Base"})
    assert str(zone.value) == ("FSM_MCP_TIMEZONE (or timezone in the [business] table): unknown time zone 'Mars/Base'; "
                               "use an IANA name like America/Chicago")
    with pytest.raises(ValueError, match=r"FSM_MCP_COUNTRY \(or country in the \[business\] table\): unknown country"):
        Settings.load(env={"FSM_MCP_COUNTRY": "Narnia"})
    config = tmp_path / "fsm.toml"
    config.write_text(TWO.replace('timezone = "America/New_York"', 'timezone = "Mars/Base"'))
    with pytest.raises(ValueError) as theirs:
        load_businesses(env={"FSM_MCP_CONFIG": str(config)})
    assert "FSM_MCP_BOLT_TIMEZONE (or timezone in the [businesses.bolt] table): unknown time zone" in str(theirs.value)
    assert "pydantic" not in str(theirs.value) and "validation error" not in str(theirs.value)
    refused = fsm("import", "customers", str(config), "--db", str(tmp_path / "x.db"),
                  env={**ENV, "FSM_MCP_TIMEZONE": "Mars/Base"})
    assert refused.returncode == 2 and "FSM_MCP_TIMEZONE" in refused.stderr and "errors.pydantic.dev" not in refused.stderr
