"""`fsm-mcp check` and `fsm-mcp sync` as an administrator runs them over Housecall Pro, over
real HTTP to the fake Housecall Pro on a loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.housecallpro import FakeHousecallPro, connector_env
from tests.fakes.serve import serving
from tests.fakes.servicetitan import seed_person

SKILLS = '[housecallpro.skills]\n"Dana Reyes" = ["plumbing"]\n'


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    fake = FakeHousecallPro()
    fake.add_employee("Dana", "Reyes", tags=("hvac",))
    fake.add_employee("Lee", "Novak")
    fake.add_job_type("Furnace repair")
    for n in range(130):  # more than a page of 100
        name, street = seed_person(n)
        fake.add_customer(name, street, "Springfield", f"627{n % 100:02d}", mobile=f"217555{n:04d}")
    with serving(fake.app) as url:
        yield url


def run(url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "fsm.toml"
    config.write_text('[business]\ntimezone = "America/Chicago"\n[business.job_types]\n"Furnace repair" = "hvac"\n'
                      '"Drain cleaning" = "plumbing"\n' + SKILLS)
    settings = {**connector_env(url), "FSM_MCP_DB": str(tmp_path / "hcp.db"), "FSM_MCP_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "fsm_mcp", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **settings, **env}, cwd=tmp_path)


def test_check_prints_the_company_its_technicians_and_the_job_types_it_lacks(fake_url: str, tmp_path: Path) -> None:
    result = run(fake_url, tmp_path, "check")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["technicians"] == {"Dana Reyes": ["hvac", "plumbing"], "Lee Novak": []}
    assert resolved["technicians_without_skills"] == ["Lee Novak"] and resolved["company"]
    assert resolved["time_zone"] == "America/Chicago"
    assert resolved["job_types"] == ["Furnace repair"] and resolved["job_types_missing"] == ["Drain cleaning"]


def test_check_with_a_wrong_key_exits_1_naming_the_problem_not_the_key(fake_url: str, tmp_path: Path) -> None:
    result = run(fake_url, tmp_path, "check", FSM_MCP_HOUSECALLPRO_API_KEY="not-the-key-4c1")
    assert result.returncode == 1 and "Housecall Pro refused fsm-mcp's credentials" in result.stderr
    assert "not-the-key-4c1" not in result.stderr + result.stdout


def test_sync_fills_the_directory_then_lookups_find_its_customers(fake_url: str, tmp_path: Path) -> None:
    result = run(fake_url, tmp_path, "sync")
    assert result.returncode == 0, result.stderr
    assert "130 customers stored" in result.stderr and result.stdout == ""
    again = run(fake_url, tmp_path, "sync")  # only changes now
    assert again.returncode == 0, again.stderr
    duplicates = run(fake_url, tmp_path, "duplicates", "--json")
    assert json.loads(duplicates.stdout) == {"groups": []} and "among 130 customers" in duplicates.stderr
