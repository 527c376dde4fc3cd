"""The official MCP conformance suite against the real HTTP server. Its failures must be only
those listed in conformance-baseline.yml, and initialization, ping, tools listing and DNS-rebinding
protection must pass. The suite sends no credentials, so the server runs with --no-auth on
loopback; authentication, token audiences and the metadata document are tested in
test_access_http.py and test_oauth.py."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.http_rig import ENV, serving

SUITE = os.environ.get("FSM_MCP_CONFORMANCE")  # the suite's CLI; .ci/run installs it with Node 22
NODE = os.environ.get("FSM_MCP_NODE22_BIN")  # the directory of a Node >= 22, which the suite needs
BASELINE = Path(__file__).with_name("conformance-baseline.yml")


@pytest.mark.skipif(not SUITE or not NODE, reason="the conformance suite and Node 22 are not installed here; "
                    ".ci/run installs both and sets FSM_MCP_CONFORMANCE and FSM_MCP_NODE22_BIN")
def test_the_official_conformance_suite_fails_only_the_fixture_scenarios(tmp_path: Path) -> None:
    assert SUITE and NODE
    env = {**ENV, "PATH": f"{NODE}:{os.environ.get('PATH', '')}"}
    with serving(tmp_path / "c.db", "--no-auth") as base:
        run = subprocess.run([SUITE, "server", "--url", base + "/mcp", "--expected-failures", str(BASELINE),
                              "-o", str(tmp_path / "results")], capture_output=True, text=True, timeout=900, env=env)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-4000:]
    for scenario in ("server-initialize", "ping", "tools-list", "dns-rebinding-protection"):
        assert f"✓ {scenario}:" in report, f"{scenario} did not pass"
