"""Finding duplicate customer records and merging them, through the tools and the command line."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from mcp import Client

from fsm_mcp.cli import main
from fsm_mcp.directory.customers import rebuild_index
from fsm_mcp.importer import import_customers
from fsm_mcp.settings import Settings
from fsm_mcp.store import open_store
from tests import stores
from tests.conftest import BUSINESS, MONDAY_9, call, confirmed, count, fail

pytestmark = pytest.mark.anyio

BASE = (
    "external_id,name,phone,email,street,unit,city,state,postal_code,notes\n"
    "c1,William Jenkins,(217) 555-0143,wjenkins@example.com,123 Oak Street,,Springfield,IL,62704,gate 4417\n"
    "c2,Bill Jenkins,217.555.0143,,123 Oak St,,Springfield,IL,62704,prefers mornings\n"
    "c3,Mary Jenkins,217-555-0143,,123 Oak Street,,Springfield,IL,62704,\n"
    "c4,Robert Brown,(312) 555-0188,,410 Maple Dr,,Springfield,IL,62704,\n"
    "c5,Maria Lopez,(773) 555-0101,maria@example.com,9 Elm Ct,,Springfield,IL,62711,\n"
    "c6,Lopez Maria,,MARIA@example.com,,,,,,\n"
)


@pytest.fixture
def base(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """The base above; returns external id -> customer id."""
    csv = tmp_path / "base.csv"
    csv.write_text(BASE)
    db = open_store(settings.db_path)
    import_customers(db, BUSINESS, csv)
    ids = dict(db.read(lambda conn: conn.execute("SELECT external_id, id FROM customers").fetchall()))
    db.close()
    return ids


def members(report: dict) -> list[set[str]]:
    return [{m["external_id"] for m in g["members"]} for g in report["groups"]]


async def test_the_nickname_twin_and_the_swapped_name_are_found_and_the_wife_joins_as_another_person(
    client: Client, base: dict
) -> None:
    report = await call(client, "find_duplicate_customers")
    assert sorted(members(report), key=sorted) == [{"c1", "c2", "c3"}, {"c5", "c6"}]
    jenkins = next(g for g in report["groups"] if "c1" in {m["external_id"] for m in g["members"]})
    assert jenkins["confidence"] == "likely"
    assert any("Bill is a nickname of William" in reason for reason in jenkins["reasons"])
    assert [m["external_id"] for m in jenkins["members"]] == ["c1", "c2", "c3"]  # oldest first: the usual one to keep
    assert [m["person"] for m in jenkins["members"]] == [1, 1, 2]  # William and Bill are one person, Mary another
    assert report["customers"] == 6 and report["more_groups"] == 0
    limited = await call(client, "find_duplicate_customers", limit=1)
    assert len(limited["groups"]) == 1 and limited["more_groups"] == 1


async def test_the_wife_is_linked_at_the_account_level_with_the_reason_a_person_can_check(client: Client, base: dict) -> None:
    report = await call(client, "find_duplicate_customers")
    family = next(g for g in report["groups"] if "c3" in {m["external_id"] for m in g["members"]})
    assert any("another given name with the same surname at the same house" in r and "household" in r
               for r in family["reasons"])
    assert all(m["customer_id"] != base["c4"] for m in family["members"])  # a stranger with his own line stays out


async def test_a_merge_preview_changes_nothing_and_leaves_the_key_for_the_confirmed_call(
    client: Client, settings: Settings, base: dict
) -> None:
    keep, other = base["c1"], base["c2"]
    job = await call(client, "create_job", customer_id=other, job_type="hvac", summary="No heat", **MONDAY_9,
                     idempotency_key="job-1")
    preview = await call(client, "merge_customers", keep_id=keep, merge_ids=[other], idempotency_key="merge-1")
    assert preview["applied"] is False and preview["jobs_moved"] == 1 and preview["locations_combined"] == 1
    assert "Nothing changed" in preview["next_step"]
    assert count(settings, "audit_log") == 1  # the booking only
    done = await call(client, "merge_customers", keep_id=keep, merge_ids=[other], idempotency_key="merge-1",
                      confirmation_token=preview["confirmation_token"])
    assert done["applied"] is True
    assert done["merged"][0]["merged_into"] == keep
    assert "prefers mornings" in done["keep"]["notes"] and "gate 4417" in done["keep"]["notes"]
    assert len(done["keep"]["locations"]) == 1  # 123 Oak St = 123 Oak Street: one place
    moved = await call(client, "get_job", job_id=job["job_id"])
    assert moved["customer_id"] == keep and moved["location_id"] == done["keep"]["locations"][0]["location_id"]


async def test_after_a_merge_the_old_id_answers_with_the_kept_record_and_lookup_finds_one(
    client: Client, base: dict
) -> None:
    keep, other = base["c1"], base["c2"]
    await confirmed(client, "merge_customers", keep_id=keep, merge_ids=[other], idempotency_key="m")
    assert (await call(client, "get_customer", customer_id=other))["customer"]["customer_id"] == keep
    found = await call(client, "lookup_customer", phone="217 555 0143", name="Bill Jenkins")
    assert [m["customer_id"] for m in found["matches"]][:1] == [keep]
    assert other not in [m["customer_id"] for m in found["matches"]]
    report = await call(client, "find_duplicate_customers")
    assert sorted(members(report), key=sorted) == [{"c1", "c3"}, {"c5", "c6"}]  # the index followed the merge
    booked = await call(client, "create_job", customer_id=other, job_type="hvac", summary="Tune-up", **MONDAY_9,
                        idempotency_key="j2")
    assert booked["customer_id"] == keep


async def test_a_retried_merge_replays_and_a_reused_key_with_other_records_is_refused(
    client: Client, settings: Settings, base: dict
) -> None:
    args = {"keep_id": base["c1"], "merge_ids": [base["c2"]], "idempotency_key": "m"}
    first = await confirmed(client, "merge_customers", **args)
    again = await call(client, "merge_customers", **args, confirmation_token="cf_the-answer-was-lost")
    assert again == first
    message = await fail(client, "merge_customers", **{**args, "merge_ids": [base["c4"]], "confirmation_token": "cf_x"})
    assert "idempotency_key" in message
    assert count(settings, "customers WHERE merged_into IS NOT NULL") == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [({"merge_ids": ["KEEP"]}, "merge_ids[0]"), ({"merge_ids": ["cus_nope"]}, "merge_ids[0]"), ({"keep_id": "cus_nope"}, "keep_id")],
)
async def test_a_bad_merge_names_the_field_and_writes_nothing(
    client: Client, settings: Settings, base: dict, change: dict, field: str
) -> None:
    args = {"keep_id": base["c1"], "merge_ids": [base["c2"]], "idempotency_key": "m", **change}
    args["merge_ids"] = [base["c1"] if m == "KEEP" else m for m in args["merge_ids"]]
    message = await fail(client, "merge_customers", **args)
    assert field in message
    assert count(settings, "customers WHERE merged_into IS NOT NULL") == 0
    assert count(settings, "audit_log") == 0


def test_the_duplicates_command_prints_groups_with_external_ids_as_json(settings: Settings, base: dict) -> None:
    result = CliRunner().invoke(main, ["duplicates", "--json", "--db", str(settings.db_path)])
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)["groups"]
    assert sorted(map(sorted, (g["external_ids"] for g in groups))) == [["c1", "c2", "c3"], ["c5", "c6"]]
    assert all(set(g) >= {"customer_ids", "external_ids", "confidence", "reasons"} for g in groups)


def test_a_rebuilt_index_equals_the_one_kept_as_records_were_written(settings: Settings, base: dict) -> None:
    conn = stores.connect(settings.db_path)
    before = sorted(conn.execute("SELECT tenant_id, key, customer_id FROM match_keys"))
    conn.close()
    db = open_store(settings.db_path)
    assert db.write(rebuild_index, BUSINESS.tenant_id) == 6
    after = sorted(map(tuple, db.read(lambda c: c.execute("SELECT tenant_id, key, customer_id FROM match_keys").fetchall())))
    db.close()
    assert before and after == before


def test_the_reindex_command_rebuilds_the_index_and_lookups_still_work(settings: Settings, base: dict) -> None:
    conn = stores.connect(settings.db_path)
    conn.execute("DELETE FROM match_keys")  # as if an upgrade had changed the key rules
    conn.commit()
    conn.close()
    result = CliRunner().invoke(main, ["reindex", "--db", str(settings.db_path)])
    assert result.exit_code == 0, result.output
    assert "indexed 6 customers" in result.output
    assert count(settings, "match_keys") > 6
    report = CliRunner().invoke(main, ["duplicates", "--json", "--db", str(settings.db_path)])
    assert len(json.loads(report.stdout)["groups"]) == 2


async def test_finding_duplicates_reports_progress_to_a_client_that_asks(client: Client, base: dict) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    result = await client.call_tool("find_duplicate_customers", {}, progress_callback=on_progress)
    assert not result.is_error
    assert seen and seen[-1][0] == seen[-1][1]  # the last report says the comparison is complete


async def test_merging_records_that_already_point_to_the_kept_one_changes_nothing(client: Client, base: dict) -> None:
    await confirmed(client, "merge_customers", keep_id=base["c1"], merge_ids=[base["c2"]], idempotency_key="m1")
    again = await call(client, "merge_customers", keep_id=base["c1"], merge_ids=[base["c2"]], idempotency_key="m2")
    assert again["applied"] is False and again["merged"] == [] and "Nothing to merge" in again["will_change"]
    assert "confirmation_token" not in again


def test_a_rebuild_after_a_bulk_import_puts_back_missing_keys_and_drops_stale_ones(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """300 customers: enough that on PostgreSQL the import and the rebuild stream their rows by COPY; the
    rebuild writes its changes 64 entries at a time, between reads of the scans that are still open."""
    from fsm_mcp.store import directory

    monkeypatch.setattr(directory, "REWRITE_BATCH", 64)
    csv = tmp_path / "many.csv"
    csv.write_text("external_id,name,phone,email,street,city,state,postal_code\n" + "".join(
        f"x{i},Ann{i} Fam{i % 7},(217) 555-{i:04d},ann{i}@example.com,{i + 1} Oak Street,Springfield,IL,62704\n"
        for i in range(300)))
    db = open_store(settings.db_path)
    tenant = BUSINESS.tenant_id
    assert import_customers(db, BUSINESS, csv).imported == 300
    keys = "SELECT tenant_id, key, customer_id FROM match_keys ORDER BY key, customer_id"
    before = [tuple(r) for r in db.read(lambda c: c.execute(keys).fetchall())]
    some = before[0][2]
    db.write(lambda c: c.execute("DELETE FROM match_keys WHERE key LIKE 'p:%'"))
    for holder in (some, "cus_0", "cus_~"):  # a live customer's stale key; keys of no live customer, first and last
        db.write(lambda c, holder=holder: c.execute(
            "INSERT INTO match_keys (tenant_id, key, customer_id) VALUES (?,?,?)", (tenant, "n:stale|key", holder)))
    assert db.write(rebuild_index, tenant) == 300
    after = [tuple(r) for r in db.read(lambda c: c.execute(keys).fetchall())]
    assert db.read(lambda c: c.execute("SELECT count(*) FROM contacts").fetchone()[0]) == 300
    db.close()
    assert len(before) > 300 * 5 and after == before
