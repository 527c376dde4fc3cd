"""CSV files an import cannot read: each is refused whole, naming the file, the line and the field."""

import sqlite3
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from fsm_mcp.cli import main

HEADER = "external_id,name,phone,email,street,unit,city,state,postal_code,notes\n"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def customers_in(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])
    finally:
        conn.close()


def test_a_cell_over_the_csv_limit_refuses_the_file_naming_its_line_and_field(tmp_path: Path) -> None:
    csv = tmp_path / "big.csv"
    csv.write_text(HEADER + "c1,Ana Ruiz,,,1 Elm St,,,,,\n" + "c2,Bo Chan,,,2 Elm St,,,,," + "x" * 140_000 + "\n"
                   + "c3,Cy Diaz,,,3 Elm St,,,,,\n")
    db = tmp_path / "x.db"
    result = subprocess.run([sys.executable, "-m", "fsm_mcp", "import", "customers", str(csv), "--db", str(db)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"{csv}: line 3, field notes: a cell longer than 128 KiB" in result.stderr
    assert "Nothing was imported" in result.stderr and customers_in(db) == 0


def test_a_quote_never_closed_is_named_at_the_line_it_opens(tmp_path: Path) -> None:
    rows = "".join(f"c{i},Person {i},,,{i} Oak St,,,,,\n" for i in range(8000))
    csv = tmp_path / "quote.csv"
    csv.write_text(HEADER + "c0,Ana Ruiz,,,\"1 Elm St,,,,,\n" + rows)
    db = tmp_path / "x.db"
    result = run("import", "customers", str(csv), "--db", str(db))
    assert result.exit_code == 2, result.output
    assert "line 2, field street: a cell longer than 128 KiB" in result.output
    assert "quote opened and never closed" in result.output and customers_in(db) == 0


def test_a_latin1_file_is_refused_in_utf8_naming_line_and_field_and_imports_with_its_encoding(tmp_path: Path) -> None:
    csv = tmp_path / "latin1.csv"
    csv.write_bytes((HEADER + "c1,Ana Ruiz,,,1 Elm St,,,,,\n" + "c2,José Peña,,,2 Elm St,,Montréal,QC,,\n")
                    .encode("latin-1"))
    db = tmp_path / "x.db"
    refused = run("import", "customers", str(csv), "--db", str(db))
    assert refused.exit_code == 2, refused.output
    assert f"{csv}: line 3, field name: byte 0xe9 is not utf-8" in refused.output
    assert "--encoding cp1252" in refused.output and customers_in(db) == 0
    done = run("import", "customers", str(csv), "--db", str(db), "--encoding", "latin-1")
    assert done.exit_code == 0 and "2 imported" in done.output, done.output
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT name FROM customers WHERE external_id='c2'").fetchone() == ("José Peña",)
    assert conn.execute("SELECT city FROM locations WHERE city LIKE 'Mont%'").fetchone() == ("Montréal",)
    conn.close()


def test_a_technicians_file_in_another_encoding_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    csv = tmp_path / "techs.csv"
    csv.write_bytes("external_id,name,phone,skills\nt1,Ana Ruiz,,hvac\nt2,Zoë Faß,,hvac\n".encode("cp1252"))
    db = tmp_path / "x.db"
    refused = run("import", "technicians", str(csv), "--db", str(db))
    assert refused.exit_code == 2 and "line 3, field name: byte 0xeb is not utf-8" in refused.output, refused.output
    assert run("import", "technicians", str(csv), "--db", str(db), "--encoding", "cp1252").exit_code == 0
    conn = sqlite3.connect(db)
    assert sorted(r[0] for r in conn.execute("SELECT name FROM technicians")) == ["Ana Ruiz", "Zoë Faß"]
    conn.close()


def test_a_utf8_file_with_a_byte_order_mark_imports_as_before(tmp_path: Path) -> None:
    csv = tmp_path / "bom.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + (HEADER + "c1,Zoë Ruiz,,,1 Elm St,,,,,\n").encode())
    result = run("import", "customers", str(csv), "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 0 and "1 imported" in result.output, result.output


def test_an_unknown_encoding_is_refused_naming_the_option(tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text(HEADER + "c1,Ana Ruiz,,,,,,,,\n")
    result = run("import", "customers", str(csv), "--db", str(tmp_path / "x.db"), "--encoding", "klingon")
    assert result.exit_code == 2 and "--encoding 'klingon' is not an encoding" in result.output, result.output


def test_a_street_longer_than_the_tools_take_rejects_its_row_and_keeps_the_others(tmp_path: Path) -> None:
    csv = tmp_path / "long.csv"
    csv.write_text(HEADER + "c1,Ana Ruiz,,,1 Elm St,,,,,\n" + "c2,Bo Chan,,," + "9" * 300 + " Elm St,,,,,\n")
    db = tmp_path / "x.db"
    result = run("import", "customers", str(csv), "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "line 3: rejected: street: String should have at most 200 characters" in result.output
    assert "1 imported" in result.output and customers_in(db) == 1
