"""Bulk loads: CSV imports of customers and technicians, and rebuilding the matching index.

Records are kept as they are (a real CRM export has duplicates; finding them is the
identity work's job), and each row is imported once however often its file is run: a row
whose external_id or import key (`import_keys.py`: its cells and its place among identical
rows) was imported before is skipped, so an interrupted import can simply be run again. A
file that names one external_id on two rows is refused before anything is written. A row
with no name is rejected; an unreadable phone or e-mail is dropped from an otherwise good
row, with a warning. The rows' identity keys are held back until the import's end and merged into the index
in one sorted pass (`store/directory.py`): its customers are found by lookups once it has finished.

A file that cannot be read as CSV in its encoding, or holds a cell over the csv module's
128 KiB limit, is refused whole before anything is written, naming the line and the field:
such a cell is nearly always a quote opened and never closed, which turns every row after
it into one cell, so the rows around it cannot be trusted either.
"""

from __future__ import annotations

import codecs
import csv
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fsm_mcp.connectors.local import technicians
from fsm_mcp.directory import customers, identity_model
from fsm_mcp.directory.profiles import parse_name  # parsed once per distinct name: a base repeats its names
from fsm_mcp.identity.addresses import address_entry
from fsm_mcp.identity.emails import InvalidEmail, normalize_email
from fsm_mcp.identity.keys import Profile, record_keys
from fsm_mcp.identity.phones import InvalidPhone, parse_phone
from fsm_mcp.import_keys import RowKeys, repeated_external_ids
from fsm_mcp.inputs import AddressIn
from fsm_mcp.settings import Business
from fsm_mcp.store import Store, directory, imports

CUSTOMER_COLUMNS = ("external_id", "name", "phone", "email", "street", "unit", "city", "state", "postal_code", "notes")
TECHNICIAN_COLUMNS = ("external_id", "name", "phone", "skills")
BATCH = 10_000  # rows a transaction: each commit writes every page it dirtied of the random-order indexes


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)


class BadFile(ValueError):
    pass


def codec(encoding: str) -> str:
    """The codec to read a file in; UTF-8 accepts a byte-order mark, as Excel writes one."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise BadFile(f"--encoding {encoding!r} is not an encoding Python knows; use e.g. utf-8, cp1252 or latin-1") from None
    return "utf-8-sig" if name == "utf-8" else name


def _rows(path: Path, columns: tuple[str, ...], encoding: str = "utf-8") -> Iterator[tuple[int, dict[str, str]]]:
    read_as = codec(encoding)
    with path.open(newline="", encoding=read_as) as fh:
        reader = csv.DictReader(fh)
        header: list[str] = []
        done = 0  # the line the last whole record ended on
        try:
            header = [h.strip().lower() for h in reader.fieldnames or []]
            if "name" not in header:
                raise BadFile(f"{path}: no 'name' column; the header must name some of: {', '.join(columns)}")
            unknown = [h for h in header if h not in columns]
            if unknown:
                raise BadFile(f"{path}: unknown column(s) {', '.join(unknown)}; expected some of: {', '.join(columns)}")
            reader.fieldnames = header
            done = reader.reader.line_num
            for row in reader:
                done = reader.line_num
                yield done, {k: (v or "").strip() for k, v in row.items() if k}
        except UnicodeDecodeError as exc:
            raise _undecodable(path, read_as, encoding, exc) from None
        except csv.Error as exc:
            raise _unparsable(path, read_as, header, done + 1, reader.reader.line_num, exc) from None  # DictReader's lags


def _cells(text: str) -> tuple[list[int], bool]:
    """The length of each cell of one record's text so far, and whether a quoted cell is still open."""
    lengths, quoted = [0], False
    for ch in text:
        if ch == '"':
            quoted = not quoted  # a doubled quote inside a quoted cell closes and reopens it
        elif quoted:
            lengths[-1] += 1
        elif ch == ",":
            lengths.append(0)
        elif ch not in "\r\n":
            lengths[-1] += 1
    return lengths, quoted


def _where(line: int, header: list[str], cell: int | None) -> str:
    if line == 1:
        return "line 1 (the header)"
    if cell is None:
        return f"line {line}"
    return f"line {line}, field {header[cell]}" if cell < len(header) else f"line {line}, column {cell + 1} (past the header)"


def _undecodable(path: Path, read_as: str, encoding: str, exc: UnicodeDecodeError) -> BadFile:
    """Find the line and field of the first byte that is not in the encoding (the decoder reads ahead of the rows)."""
    decoder = codecs.getincrementaldecoder(read_as)()
    record, quoted = "", False
    with path.open("rb") as fh:
        first = fh.readline()
        header = [h.strip().lower() for h in next(csv.reader([first.decode(read_as, errors="replace")]), [])]
        fh.seek(0)
        for number, raw in enumerate(fh, start=1):
            try:
                text = decoder.decode(raw)
            except UnicodeDecodeError as bad:
                lengths, _ = _cells(record + raw[:bad.start].decode(read_as, errors="replace"))
                byte = raw[bad.start] if bad.start < len(raw) else raw[-1]
                where = _where(number, header, len(lengths) - 1)
                break
            quoted ^= text.count('"') % 2 == 1  # a record goes on past this line while a quoted cell is open
            record = record + text if quoted else ""
        else:  # not found again line by line: say what the decoder said
            byte, where = exc.object[exc.start], "somewhere in the file"
    hint = ("a file saved by Excel or an older system is often cp1252 (or latin-1): run again with --encoding cp1252"
            if read_as == "utf-8-sig" else "name the file's own encoding with --encoding")
    return BadFile(f"{path}: {where}: byte 0x{byte:02x} is not {encoding}; {hint}. Nothing was imported.")


def _unparsable(path: Path, read_as: str, header: list[str], start: int, end: int, exc: csv.Error) -> BadFile:
    limit = csv.field_size_limit()
    if "field limit" not in str(exc):
        return BadFile(f"{path}: line {end}: not readable as CSV ({exc}). Nothing was imported.")
    with path.open(newline="", encoding=read_as) as fh:
        lines = list(itertools.islice(fh, start - 1, end))
    while lines and not lines[0].strip():  # blank lines between records
        lines.pop(0)
        start += 1
    lengths, _ = _cells("".join(lines))
    cell = next((i for i, n in enumerate(lengths) if n > limit), None)
    return BadFile(f"{path}: {_where(start, header, cell)}: a cell longer than {limit // 1024} KiB; this is nearly always "
                   "a quote opened and never closed, which makes the rest of the file one cell: close it, or shorten "
                   "the cell. Nothing was imported.")


def _no_repeats(path: Path, rows: Iterable[tuple[int, dict[str, str]]]) -> None:
    """Refuse a file that names one external_id on two rows: which of them is the record is for a person to say."""
    if not (repeats := repeated_external_ids(rows)):
        return
    external_id, first, line = repeats[0]
    more = f" ({len(repeats) - 1} more rows repeat an external_id)" if len(repeats) > 1 else ""
    raise BadFile(f"{path}: line {line}: external_id {external_id!r} is on line {first} too{more}; each record needs "
                  "its own external_id (or none): fix the file and run the import again. Nothing was imported.")


def count_rows(path: Path) -> int:
    with path.open("rb") as fh:
        return max(0, sum(1 for _ in fh) - 1)


def import_customers(
    db: Store, business: Business, path: Path, progress: Callable[[int], None] = lambda n: None,
    encoding: str = "utf-8",
) -> ImportReport:
    report = ImportReport()
    batch: list[tuple[int, dict[str, str], str]] = []
    _no_repeats(path, _rows(path, CUSTOMER_COLUMNS, encoding))  # a file refused is refused before any write
    keys = RowKeys(CUSTOMER_COLUMNS)
    with db.bulk():
        for line, row in _rows(path, CUSTOMER_COLUMNS, encoding):
            batch.append((line, row, keys.key(row)))
            if len(batch) >= BATCH:
                db.write(_customer_batch, business, batch, report, db.clock.now())
                progress(len(batch))
                batch = []
        if batch:
            db.write(_customer_batch, business, batch, report, db.clock.now())
            progress(len(batch))
        db.write(directory.merge_pending_keys, business.tenant_id)  # this import's keys, and a cut-off one's
    db.analyze()
    db.write(identity_model.train, business.tenant_id, db.clock.now())  # what agreement means in this base
    return report


def reindex_customers(db: Store, tenant: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild the matching index as a bulk load: large page cache, then fresh planner statistics."""
    with db.bulk():
        db.write(directory.merge_pending_keys, tenant)  # a cut-off import's
        count = db.write(customers.rebuild_index, tenant, progress)
    db.analyze()
    db.write(identity_model.train, tenant, db.clock.now())
    return count


def _imported_before(conn: Any, table: str, tenant: str, rows: list[tuple[int, dict[str, str], str]],
                     ) -> set[str]:
    """The import keys of `rows` whose row is in the table already, by its key or by its external_id."""
    by_id = imports.seen(conn, table, "external_id", tenant, [r["external_id"] for _, r, _ in rows if r.get("external_id")])
    by_key = imports.seen(conn, table, "import_key", tenant, [key for _, _, key in rows])
    return by_key | {key for _, r, key in rows if r.get("external_id") in by_id}


def _customer_batch(conn: Any, business: Business, batch: list[tuple[int, dict[str, str], str]],
                    report: ImportReport, now: datetime) -> None:
    tenant = business.tenant_id
    before = _imported_before(conn, "customers", tenant, batch)
    new: list[customers.NewCustomer] = []
    addresses: list[AddressIn | None] = []
    profiles: list[Profile] = []
    for line, row, key in batch:
        name = row.get("name", "")
        if not name:
            report.rejected.append((line, "name is empty"))
            continue
        if key in before:
            report.skipped += 1
            continue
        profile = Profile(name=parse_name(name), name_raw=name)
        phones = []
        if raw := row.get("phone"):
            try:
                phones.append(parse_phone(raw, business.country))
                profile.phones.add(phones[0].e164)
            except InvalidPhone as exc:
                report.warnings.append((line, f"phone dropped: {exc}"))
        emails = []
        if raw := row.get("email"):
            try:
                emails.append(normalize_email(raw))
                profile.emails.add(emails[0])
            except InvalidEmail as exc:
                report.warnings.append((line, f"email dropped: {exc}"))
        address = None
        street, unit = row.get("street", "").strip(), row.get("unit", "").strip() or None
        if not street and unit:  # only a second line ("Shopping Village"): it is where the service goes
            street, unit = unit, None
        if street:
            try:
                address = AddressIn(street=street, unit=unit, city=row.get("city") or None,
                                    state=row.get("state") or None, postal_code=row.get("postal_code") or None)
            except ValidationError as exc:  # a cell the tools would refuse too: the row waits for it to be fixed
                report.rejected.append((line, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                                                        for e in exc.errors())))
                continue
            profile.addresses.append(
                address_entry(street, address.unit, address.postal_code, address.city, address.state))
        new.append(customers.NewCustomer(name, phones, emails, row.get("notes") or None, row.get("external_id") or None,
                                         import_key=key))
        addresses.append(address)
        profiles.append(profile)
    ids = customers.insert_customers(conn, tenant, now, new)
    customers.insert_locations(conn, tenant, now, [(cid, a, None, ()) for cid, a in zip(ids, addresses, strict=True) if a])
    directory.add_pending_keys(conn, tenant, [(cid, record_keys(profile)) for cid, profile in zip(ids, profiles, strict=True)])
    report.imported += len(ids)


def import_technicians(db: Store, business: Business, path: Path, progress: Callable[[int], None] = lambda n: None,
                       encoding: str = "utf-8") -> ImportReport:
    report = ImportReport()
    read = list(_rows(path, TECHNICIAN_COLUMNS, encoding))
    _no_repeats(path, read)
    keys = RowKeys(TECHNICIAN_COLUMNS)
    rows = [(line, row, keys.key(row)) for line, row in read]

    def write(conn: Any) -> None:
        before = _imported_before(conn, "technicians", business.tenant_id, rows)
        for line, row, key in rows:
            if not row.get("name"):
                report.rejected.append((line, "name is empty"))
                continue
            if key in before:
                report.skipped += 1
                continue
            phone = None
            if raw := row.get("phone"):
                try:
                    phone = parse_phone(raw, business.country).e164
                except InvalidPhone as exc:
                    report.warnings.append((line, f"phone dropped: {exc}"))
            skills = [s for s in row.get("skills", "").split(";") if s.strip()]
            technicians.insert(conn, business.tenant_id, row["name"], skills, phone, row.get("external_id") or None,
                               import_key=key)
            report.imported += 1

    db.write(write)
    progress(len(rows))
    return report
