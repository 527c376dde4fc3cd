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
from concurrent.futures import Future, ThreadPoolExecutor
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
    """Import a file's customers, BATCH rows a transaction, one batch parsed while the one before it is written.

    A batch's rows are parsed and keyed (names, numbers, addresses, match keys) on this thread while a writer
    thread writes the batch before, which waits on the database part of the time. What depends on the store
    (whether a row was imported before) is still decided inside its batch's transaction, so a row parsed for
    nothing is only skipped. Each batch is reported to `progress` once it is committed, before the next is
    sent: a progress callback that stops the import leaves no batch half-sent."""
    report = ImportReport()
    _no_repeats(path, _rows(path, CUSTOMER_COLUMNS, encoding))  # a file refused is refused before any write
    keys = RowKeys(CUSTOMER_COLUMNS)
    rows = ((line, row, keys.key(row)) for line, row in _rows(path, CUSTOMER_COLUMNS, encoding))
    with db.bulk(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as writer:
        written: Future[int] | None = None
        while batch := list(itertools.islice(rows, BATCH)):
            parsed = [_parse_customer(business, *row) for row in batch]
            if written is not None:
                progress(written.result())
            written = writer.submit(db.write, _write_customers, business.tenant_id, parsed, report, db.clock.now())
        if written is not None:
            progress(written.result())
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


def _imported_before(conn: Any, table: str, tenant: str, rows: list[tuple[str | None, str]]) -> set[str]:
    """The import keys of these (external_id, import key) rows whose row is in the table already, by either."""
    by_id = imports.seen(conn, table, "external_id", tenant, [external_id for external_id, _ in rows if external_id])
    by_key = imports.seen(conn, table, "import_key", tenant, [key for _, key in rows])
    return by_key | {key for external_id, key in rows if external_id in by_id}


@dataclass(slots=True)
class _ParsedCustomer:
    """A customer row as read, before its batch's transaction says whether it was imported before."""

    line: int
    import_key: str
    external_id: str | None
    nameless: bool = False  # rejected whether imported before or not
    warnings: list[str] = field(default_factory=list)
    invalid: str = ""  # why a named row waits to be fixed; its customer is None then
    customer: customers.NewCustomer | None = None
    address: AddressIn | None = None
    keys: set[str] = field(default_factory=set)


def _parse_customer(business: Business, line: int, row: dict[str, str], key: str) -> _ParsedCustomer:
    parsed = _ParsedCustomer(line, key, row.get("external_id") or None)
    name = row.get("name", "")
    if not name:
        parsed.nameless = True
        return parsed
    profile = Profile(name=parse_name(name), name_raw=name)
    phones = []
    if raw := row.get("phone"):
        try:
            phones.append(parse_phone(raw, business.country))
            profile.phones.add(phones[0].e164)
        except InvalidPhone as exc:
            parsed.warnings.append(f"phone dropped: {exc}")
    emails = []
    if raw := row.get("email"):
        try:
            emails.append(normalize_email(raw))
            profile.emails.add(emails[0])
        except InvalidEmail as exc:
            parsed.warnings.append(f"email dropped: {exc}")
    street, unit = row.get("street", "").strip(), row.get("unit", "").strip() or None
    if not street and unit:  # only a second line ("Shopping Village"): it is where the service goes
        street, unit = unit, None
    if street:
        try:
            parsed.address = AddressIn(street=street, unit=unit, city=row.get("city") or None,
                                       state=row.get("state") or None, postal_code=row.get("postal_code") or None)
        except ValidationError as exc:  # a cell the tools would refuse too: the row waits for it to be fixed
            parsed.invalid = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                                       for e in exc.errors())
            return parsed
        profile.addresses.append(address_entry(street, parsed.address.unit, parsed.address.postal_code,
                                               parsed.address.city, parsed.address.state))
    parsed.customer = customers.NewCustomer(name, phones, emails, row.get("notes") or None, parsed.external_id,
                                            import_key=key)
    parsed.keys = record_keys(profile)
    return parsed


def _write_customers(conn: Any, tenant: str, batch: list[_ParsedCustomer], report: ImportReport,
                     now: datetime) -> int:
    """Write a batch's new customers, report its rows; returns how many rows the batch held."""
    before = _imported_before(conn, "customers", tenant, [(p.external_id, p.import_key) for p in batch])
    new: list[tuple[customers.NewCustomer, AddressIn | None, set[str]]] = []
    for parsed in batch:
        if parsed.nameless:
            report.rejected.append((parsed.line, "name is empty"))
            continue
        if parsed.import_key in before:
            report.skipped += 1
            continue
        report.warnings.extend((parsed.line, warning) for warning in parsed.warnings)
        if parsed.customer is None:
            report.rejected.append((parsed.line, parsed.invalid))
            continue
        new.append((parsed.customer, parsed.address, parsed.keys))
    ids = customers.insert_customers(conn, tenant, now, [customer for customer, _, _ in new])
    customers.insert_locations(conn, tenant, now, [(cid, address, None, ()) for cid, (_, address, _)
                                                   in zip(ids, new, strict=True) if address is not None])
    directory.add_pending_keys(conn, tenant, [(cid, keys) for cid, (_, _, keys) in zip(ids, new, strict=True)])
    report.imported += len(ids)
    return len(batch)


def import_technicians(db: Store, business: Business, path: Path, progress: Callable[[int], None] = lambda n: None,
                       encoding: str = "utf-8") -> ImportReport:
    report = ImportReport()
    read = list(_rows(path, TECHNICIAN_COLUMNS, encoding))
    _no_repeats(path, read)
    keys = RowKeys(TECHNICIAN_COLUMNS)
    rows = [(line, row, keys.key(row)) for line, row in read]

    def write(conn: Any) -> None:
        before = _imported_before(conn, "technicians", business.tenant_id,
                                  [(row.get("external_id") or None, key) for _, row, key in rows])
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
