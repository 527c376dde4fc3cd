"""CSV files an import cannot read, or that name one record twice: each is refused whole, naming the file,
the line and the field. A file run again, whole or after an interruption, imports each of its rows once."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fsm_mcp import importer
from fsm_mcp.cli import main
from fsm_mcp.directory import customers
from fsm_mcp.settings import Settings
from fsm_mcp.store import Store, directory, open_store
from tests import stores
from tests.conftest import BUSINESS

HEADER = "external_id,name,phone,email,street,unit,city,state,postal_code,notes\n"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def customers_in(db: Path) -> int:
    if not db.exists():
        return 0
    conn = stores.connect(db)
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
    conn = stores.connect(db)
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
    conn = stores.connect(db)
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


def names_in(db: Path | str, table: str = "customers") -> list[str]:
    conn = stores.connect(db)
    try:
        return sorted(r[0] for r in conn.execute(f"SELECT name FROM {table}"))
    finally:
        conn.close()


# No external_id anywhere; Ana Ruiz twice as the same row (two records, kept as they are), and a row with no name.
NO_IDS = [",Ana Ruiz,217-555-0101,,1 Elm St,,Springfield,IL,62704,", ",Bo Chan,,bo@example.com,2 Elm St,,,,,",
          ",,217-555-0100,,,,,,,", ",Cy Diaz,,,3 Elm St,,,,,", ",Ana Ruiz,217-555-0101,,1 Elm St,,Springfield,IL,62704,",
          ",Di Eng,,,,,,,,gate code 12", ",Ed Fox,,,5 Elm St,Apt 2,,,,"]
EVERY_ROW_ONCE = ["Ana Ruiz", "Ana Ruiz", "Bo Chan", "Cy Diaz", "Di Eng", "Ed Fox"]


def test_customers_without_external_ids_run_again_import_nothing_new(tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text(HEADER + "".join(r + "\n" for r in NO_IDS))
    db = tmp_path / "x.db"
    first = run("import", "customers", str(csv), "--db", str(db))
    assert first.exit_code == 0 and "6 imported, 0 already imported, 1 rejected" in first.output, first.output
    again = run("import", "customers", str(csv), "--db", str(db))
    assert again.exit_code == 0 and "0 imported, 6 already imported, 1 rejected" in again.output, again.output
    assert names_in(db) == EVERY_ROW_ONCE


def test_a_technicians_file_run_again_imports_nothing_new(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("external_id,name,phone,skills\nt1,Maria Lopez,,hvac\n,Dev Patel,,hvac;electrical\n"
                   ",Sam Okafor,217-555-0103,plumbing\n")
    db = tmp_path / "x.db"
    assert "3 imported" in run("import", "technicians", str(csv), "--db", str(db)).output
    again = run("import", "technicians", str(csv), "--db", str(db))
    assert again.exit_code == 0 and "0 imported, 3 already imported" in again.output, again.output
    assert names_in(db, "technicians") == ["Dev Patel", "Maria Lopez", "Sam Okafor"]


def test_the_same_rows_exported_again_in_another_column_order_and_unicode_form_are_already_imported(
        tmp_path: Path) -> None:
    first, again = tmp_path / "first.csv", tmp_path / "again.csv"
    first.write_text(HEADER + ',José Peña,,,2 Elm St,,Montréal,QC,,"side door\nring twice"\n', newline="")
    again.write_text('notes,name,city,state,street\r\n"side door\r\nring  twice",Jose\u0301 Peña,Montre\u0301al,QC,2 Elm St\r\n',
                     newline="")
    db = tmp_path / "x.db"
    assert "1 imported" in run("import", "customers", str(first), "--db", str(db)).output
    rerun = run("import", "customers", str(again), "--db", str(db))
    assert rerun.exit_code == 0 and "0 imported, 1 already imported" in rerun.output, rerun.output


def test_the_first_half_of_a_file_then_the_whole_file_import_every_row_once(tmp_path: Path) -> None:
    half, whole = tmp_path / "half.csv", tmp_path / "whole.csv"
    half.write_text(HEADER + "".join(r + "\n" for r in NO_IDS[:4]))
    whole.write_text(HEADER + "".join(r + "\n" for r in NO_IDS))
    db = tmp_path / "x.db"
    assert "3 imported" in run("import", "customers", str(half), "--db", str(db)).output
    rest = run("import", "customers", str(whole), "--db", str(db))
    assert rest.exit_code == 0 and "3 imported, 3 already imported" in rest.output, rest.output
    assert names_in(db) == EVERY_ROW_ONCE  # the second Ana Ruiz row is imported: it was not in the first half


def test_an_import_interrupted_between_batches_and_run_again_imports_every_row_once(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text(HEADER + "".join(r + "\n" for r in NO_IDS))
    monkeypatch.setattr(importer, "BATCH", 3)

    def interrupted(done: int) -> None:
        raise KeyboardInterrupt  # after the first batch committed

    db = open_store(settings.db_path)
    try:
        with pytest.raises(KeyboardInterrupt):
            importer.import_customers(db, BUSINESS, csv, interrupted)
        assert names_in(settings.db_path) == ["Ana Ruiz", "Bo Chan"]
        report = importer.import_customers(db, BUSINESS, csv)
    finally:
        db.close()
    assert (report.imported, report.skipped, len(report.rejected)) == (4, 2, 1)
    assert names_in(settings.db_path) == EVERY_ROW_ONCE


def holders(db: Path | str, key: str) -> list[str]:
    conn = stores.connect(db)
    try:
        return sorted(r[0] for r in conn.execute(
            "SELECT c.name FROM match_keys m JOIN customers c ON c.tenant_id=m.tenant_id AND c.id=m.customer_id "
            "WHERE m.key=?", (key,)))
    finally:
        conn.close()


def cut_off_import(db: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """NO_IDS's file, imported until its first batch (of three rows) is committed; the file."""
    csv = tmp_path / "c.csv"
    csv.write_text(HEADER + "".join(r + "\n" for r in NO_IDS))
    monkeypatch.setattr(importer, "BATCH", 3)

    def interrupted(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        importer.import_customers(db, BUSINESS, csv, interrupted)
    return csv


@pytest.mark.parametrize("then", ["run again", "reindex"])
def test_the_customers_of_a_cut_off_import_are_found_once_it_is_run_again_or_the_index_rebuilt(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: str) -> None:
    db = open_store(settings.db_path)
    try:
        csv = cut_off_import(db, tmp_path, monkeypatch)
        assert holders(settings.db_path, "e:bo@example.com") == []  # its keys wait for the import's end
        if then == "run again":
            importer.import_customers(db, BUSINESS, csv)
        else:
            importer.reindex_customers(db, BUSINESS.tenant_id)
        assert db.read(lambda c: c.execute("SELECT count(*) FROM match_keys_pending").fetchone()[0]) == 0
    finally:
        db.close()
    assert holders(settings.db_path, "e:bo@example.com") == ["Bo Chan"]
    assert holders(settings.db_path, "p:+12175550101") == (["Ana Ruiz", "Ana Ruiz"] if then == "run again" else ["Ana Ruiz"])


def test_a_cut_off_import_whose_customers_a_sync_indexed_meanwhile_is_merged_once_run_again(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = open_store(settings.db_path)
    try:
        csv = cut_off_import(db, tmp_path, monkeypatch)
        db.write(customers.rebuild_index, BUSINESS.tenant_id)  # a vendor sync's: the pending keys are indexed too
        importer.import_customers(db, BUSINESS, csv)  # most customers pending: the merge builds the index again
        bo = holders(settings.db_path, "e:bo@example.com")
        db.write(lambda conn: directory.add_keys(conn, BUSINESS.tenant_id, [("e:bo@example.com", bo_id(conn))]))
    finally:
        db.close()
    assert bo == ["Bo Chan"]
    assert holders(settings.db_path, "e:bo@example.com") == ["Bo Chan"]  # the index still holds an entry once


def bo_id(conn: Any) -> str:
    return str(conn.execute("SELECT id FROM customers WHERE name='Bo Chan'").fetchone()[0])


@pytest.mark.parametrize(("kind", "header", "rows"), [
    ("customers", HEADER, ["c1,Ana Ruiz,,,1 Elm St,,,,,", "c2,Bo Chan,,,,,,,,", "c1,Ana Ruiz-Lee,,,9 Oak St,,,,,"]),
    ("technicians", "external_id,name,phone,skills\n", ["t1,Maria Lopez,,hvac", "t2,Dev Patel,,hvac", "t1,Maria L.,,hvac"]),
], ids=["customers", "technicians"])
def test_a_file_naming_one_external_id_twice_is_refused_naming_both_lines_and_writes_nothing(
        tmp_path: Path, kind: str, header: str, rows: list[str]) -> None:
    csv = tmp_path / f"{kind}.csv"
    csv.write_text(header + "".join(r + "\n" for r in rows))
    db = tmp_path / "x.db"
    refused = run("import", kind, str(csv), "--db", str(db))
    assert refused.exit_code == 2, refused.output
    external_id = rows[0].split(",")[0]
    assert f"{csv}: line 4: external_id '{external_id}' is on line 2 too" in refused.output
    assert "Nothing was imported" in refused.output
    assert not db.exists() or names_in(db, kind) == []
