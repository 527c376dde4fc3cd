"""The command line as a user runs it: imports, the demo, and the README's samples."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from fsm_mcp.cli import main
from tests import stores

ROOT = Path(__file__).resolve().parent.parent


def test_customers_import_keeps_rows_reports_rejects_and_skips_a_rerun(tmp_path: Path) -> None:
    csv = tmp_path / "customers.csv"
    csv.write_text(
        "external_id,name,phone,email,street,unit,city,state,postal_code,notes\n"
        "c1,William Jenkins,(217) 555-0143,WJ@Example.com,123 Oak St,,Springfield,IL,62704,gate 4417\n"
        "c2,Bill Jenkins,217.555.0143,,123 Oak Street,,Springfield,IL,62704,\n"
        "c3,,217-555-0100,,,,,,,\n"
        "c4,Aisha Khan,not a number,,12 King St W,,Toronto,ON,M5H 1A1,\n"
    )
    db = tmp_path / "x.db"
    result = CliRunner().invoke(main, ["import", "customers", str(csv), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "3 imported" in result.output and "1 rejected" in result.output
    assert "line 4: rejected: name is empty" in result.output and "phone dropped" in result.output
    again = CliRunner().invoke(main, ["import", "customers", str(csv), "--db", str(db)])
    assert "0 imported, 3 already imported" in again.output
    conn = stores.connect(db)
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 3  # duplicates kept as they are
    assert conn.execute("SELECT postal_code FROM locations WHERE city='Toronto'").fetchone()[0] == "M5H 1A1"
    conn.close()


def test_a_file_without_a_name_column_is_refused(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("id,full_name\n1,Someone\n")
    result = CliRunner().invoke(main, ["import", "customers", str(csv), "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "no 'name' column" in result.output


def test_technicians_import_splits_skills(tmp_path: Path) -> None:
    csv = tmp_path / "techs.csv"
    csv.write_text("external_id,name,phone,skills\nt1,Maria Lopez,217-555-0101,HVAC; plumbing\n")
    db = tmp_path / "x.db"
    assert CliRunner().invoke(main, ["import", "technicians", str(csv), "--db", str(db)]).exit_code == 0
    conn = stores.connect(db)
    assert json.loads(conn.execute("SELECT skills FROM technicians").fetchone()[0]) == ["hvac", "plumbing"]
    conn.close()


def test_the_demo_plays_the_whole_call_and_exits_zero(tmp_path: Path) -> None:
    configured = tmp_path / "mine.db"  # the user's own store: the demo neither refuses nor touches it
    configured.write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "fsm_mcp", "demo"], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "NO_COLOR": "1", "FSM_MCP_DB": str(configured)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "welcome back" in result.stdout and "recognised as already booked" in result.stdout
    assert "Demo finished" in result.stdout and configured.read_bytes() == b""


def test_the_demo_help_says_it_makes_a_fresh_temporary_database() -> None:
    shown = " ".join(CliRunner().invoke(main, ["demo", "--help"]).output.split())
    assert "(default: a fresh temporary database, removed when the demo ends)" in shown
    assert "per-user" not in shown


def test_the_readme_quickstart_and_config_are_the_real_ones() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", readme, re.S)
    assert ("sh", 'pip install . && fsm-mcp demo\npip install -e ".[test]" && ruff check && mypy && pytest\n') in blocks
    config = json.loads(next(body for lang, body in blocks if lang == "json"))
    assert config == json.loads((ROOT / "claude_config.example.json").read_text())
    assert config["mcpServers"]["fsm-mcp"]["args"] == ["serve"]
    assert Path(config["mcpServers"]["fsm-mcp"]["command"]).is_absolute()  # a desktop client has no venv on its PATH
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[test]" && ruff check && mypy && pytest' in ci


def test_serving_over_stdio_prints_nothing_but_protocol(tmp_path: Path) -> None:
    request = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}\n'
    proc = subprocess.run([sys.executable, "-m", "fsm_mcp", "serve", "--db", str(tmp_path / "s.db")], input=request,
                          capture_output=True, text=True, timeout=60)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert lines and all(json.loads(ln)["jsonrpc"] == "2.0" for ln in lines)
    assert "fsm-mcp serving" in proc.stderr  # the log went to stderr



def test_identity_train_estimates_chance_agreement_from_the_base(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import write_customers

    write_customers(tmp_path / "c.csv", 1200)  # at least MIN_LEARN: a smaller base keeps the reviewed weights
    db = str(tmp_path / "t.db")
    assert subprocess.run([sys.executable, "-m", "fsm_mcp", "import", "customers", str(tmp_path / "c.csv"), "--db", db],
                          capture_output=True, text=True).returncode == 0
    out = subprocess.run([sys.executable, "-m", "fsm_mcp", "identity", "train", "--db", db], capture_output=True, text=True)
    model = json.loads(out.stdout)
    assert model["sampled_pairs"] > 0
    # Every generated customer lives in Springfield, IL: sharing the town says nothing in this base.
    assert model["u"]["locality"]["exact"] > 0.9 and model["u"]["region"]["exact"] > 0.9


def test_the_log_level_setting_quiets_the_servers_own_messages(tmp_path: Path) -> None:
    env = {**os.environ, "FSM_MCP_LOG_LEVEL": "WARNING"}
    quiet = subprocess.run([sys.executable, "-m", "fsm_mcp", "serve", "--db", str(tmp_path / "q.db")], input="",
                           capture_output=True, text=True, env=env, timeout=60)
    loud = subprocess.run([sys.executable, "-m", "fsm_mcp", "serve", "--db", str(tmp_path / "l.db")], input="",
                          capture_output=True, text=True, env={**env, "FSM_MCP_LOG_LEVEL": "INFO"}, timeout=60)
    assert "serving business" in loud.stderr and "serving business" not in quiet.stderr
    assert quiet.stdout == "" and loud.stdout == ""  # stdio servers never print to stdout


def test_the_readme_layout_names_every_package_and_module_at_the_top() -> None:
    readme = (ROOT / "README.md").read_text()
    (layout,) = [body for lang, body in re.findall(r"```(\w+)\n(.*?)```", readme, re.S) if body.startswith("fsm_mcp/")]
    code = ROOT / "fsm_mcp"
    packages = {f"{p.name}/" for p in code.iterdir() if (p / "__init__.py").exists()}
    modules = {p.name for p in code.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert {name for name in packages | modules if name not in layout} == set()
