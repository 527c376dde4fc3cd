"""The settings of `fsm-mcp serve` are each named in the README, and a wrong one is refused by name."""

from pathlib import Path

import pytest

from fsm_mcp.access.config import AccessSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_serve_setting_is_named_in_the_readme() -> None:
    missing = [n for n in AccessSettings.model_fields if f"FSM_MCP_SERVE_{n.upper()}" not in README]
    assert missing == []


def test_a_wrong_session_cap_or_header_timeout_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match=r"FSM_MCP_SERVE_MAX_SESSIONS_PER_CALLER \(or max_sessions_per_caller in "
                                         r"the \[serve\] table\) is wrong"):
        AccessSettings.load({}, {"FSM_MCP_SERVE_MAX_SESSIONS_PER_CALLER": "0"})
    with pytest.raises(ValueError, match=r"FSM_MCP_SERVE_HEADER_TIMEOUT \(or header_timeout in the \[serve\] table\)"):
        AccessSettings.load({"header_timeout": "soon"}, {})
    defaults = AccessSettings.load({}, {})
    assert (defaults.max_sessions_per_caller, defaults.max_sessions_per_business, defaults.header_timeout,
            defaults.local_calls_per_minute) == (50, 100, 5, None)


def test_serving_several_businesses_warns_when_one_could_hold_the_whole_pool() -> None:
    shrunk = AccessSettings.load({}, {"FSM_MCP_SERVE_MAX_SESSIONS": "20"})
    assert "may hold all 20 sessions" in (shrunk.crowding(2) or "")
    assert shrunk.crowding(1) is None  # one business may use the whole pool
    assert AccessSettings.load({}, {}).crowding(2) is None  # 100 of 1000
