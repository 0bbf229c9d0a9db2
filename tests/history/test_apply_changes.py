"""``CALL system.apply_changes`` / ``Table.apply_changes``: CDC batches applied in sequence order, exactly once.

The property tests compare the table after ``apply_changes`` with a plain Python model that
applies the same events one at a time in sequence order, for shuffled, duplicated and re-delivered
events, SCD type 1 and 2, copy-on-write and merge-on-read targets.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wharf
from wharf.errors import InvalidArgument, SchemaMismatch, SqlParseError

MOR = {"write.delete.mode": "merge-on-read", "write.update.mode": "merge-on-read", "write.merge.mode": "merge-on-read"}
_names = itertools.count()


@dataclass(frozen=True)
class Event:
    id: int
    v: int | None
    op: str  # U (upsert) or D (delete)
    lsn: int


def events_table(events: list[Event]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([e.id for e in events], pa.int32()),
            "v": pa.array([e.v for e in events], pa.int64()),
            "op": pa.array([e.op for e in events], pa.string()),
            "lsn": pa.array([e.lsn for e in events], pa.int64()),
        }
    )


def model_scd1(events: list[Event]) -> list[tuple[Any, ...]]:
    """The table after applying ``events`` one by one in sequence order."""
    rows: dict[int, int | None] = {}
    for e in sorted(events, key=lambda e: e.lsn):
        if e.op == "D":
            rows.pop(e.id, None)
        else:
            rows[e.id] = e.v
    return sorted(rows.items())


def model_scd2(events: list[Event]) -> list[tuple[Any, ...]]:
    """Every version: (id, v, start, end); a new version or a delete closes the open one."""
    versions: list[list[Any]] = []
    open_: dict[int, list[Any]] = {}
    for e in sorted(set(events), key=lambda e: e.lsn):
        current = open_.pop(e.id, None)
        if current is not None:
            current[3] = e.lsn
        if e.op != "D":
            version = [e.id, e.v, e.lsn, None]
            versions.append(version)
            open_[e.id] = version
    return sorted(tuple(v) for v in versions)


def new_target(lake: wharf.Lakehouse, scd_type: int, mor: bool) -> wharf.Table:
    name = f"db.t{next(_names)}"
    history = ", __start_at BIGINT, __end_at BIGINT" if scd_type == 2 else ""
    lake.sql("CREATE NAMESPACE IF NOT EXISTS db")
    lake.sql(f"CREATE TABLE {name} (id INT, v BIGINT{history})")
    if mor:
        pairs = ", ".join(f"'{k}' = '{v}'" for k, v in MOR.items())
        lake.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({pairs})")
    return lake.table(name)


def apply(table: wharf.Table, events: list[Event], scd_type: int) -> dict[str, Any]:
    result = table.apply_changes(events_table(events), keys="id", sequence_by="lsn", operation_column="op", scd_type=scd_type)
    row: dict[str, Any] = result.to_arrow().to_pylist()[0]
    return row


def contents(table: wharf.Table, scd_type: int) -> list[tuple[Any, ...]]:
    columns = "id, v, __start_at, __end_at" if scd_type == 2 else "id, v"
    return sorted(table.lake.sql(f"SELECT {columns} FROM {table.full_name}").fetchall())


def snapshot_count(table: wharf.Table) -> int:
    return len(table.iceberg.metadata.snapshots)


@st.composite
def streams(draw: st.DrawFn) -> list[Event]:
    """Events in sequence order: few keys, so keys are updated, deleted and re-inserted."""
    count = draw(st.integers(1, 10))
    events = []
    for lsn in range(1, count + 1):
        op = draw(st.sampled_from("UUD"))
        events.append(Event(draw(st.integers(1, 4)), None if op == "D" else draw(st.integers(0, 99)), op, lsn * 10))
    return events


PROPERTY = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("scd_type", [1, 2])
@PROPERTY
@given(stream=streams(), mor=st.booleans(), seed=st.integers(0, 2**16))
def test_shuffled_and_duplicated_batch_equals_in_order(
    lake: wharf.Lakehouse, scd_type: int, stream: list[Event], mor: bool, seed: int
) -> None:
    rng = random.Random(seed)
    batch = stream + rng.choices(stream, k=rng.randrange(0, 4))
    rng.shuffle(batch)
    table = new_target(lake, scd_type, mor)
    row = apply(table, batch, scd_type)
    expected = model_scd1(stream) if scd_type == 1 else model_scd2(stream)
    assert contents(table, scd_type) == expected
    assert row["num_events"] == len(batch)
    assert row["num_duplicate_events"] == len(batch) - len(set(batch))
    assert row["high_water_mark"] == str(max(e.lsn for e in stream))


@pytest.mark.parametrize("scd_type", [1, 2])
@PROPERTY
@given(stream=streams(), mor=st.booleans(), seed=st.integers(0, 2**16))
def test_batches_with_redelivered_events_equal_in_order(
    lake: wharf.Lakehouse, scd_type: int, stream: list[Event], mor: bool, seed: int
) -> None:
    """At-least-once delivery: each batch repeats random earlier events; the result is still the in-order one."""
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(stream)), k=min(2, len(stream) - 1))) if len(stream) > 1 else []
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    table = new_target(lake, scd_type, mor)
    seen: list[Event] = []
    for chunk in chunks:
        batch = chunk + rng.choices(seen + chunk, k=rng.randrange(0, 3))
        rng.shuffle(batch)
        apply(table, batch, scd_type)
        seen += chunk
        expected = model_scd1(seen) if scd_type == 1 else model_scd2(seen)
        assert contents(table, scd_type) == expected
    # Re-applying the last batch, or any earlier one, changes nothing and commits nothing.
    before = snapshot_count(table)
    row = apply(table, chunks[0], scd_type)
    assert row["snapshot_id"] is None and row["num_inserted_rows"] == row["num_updated_rows"] == row["num_deleted_rows"] == 0
    assert snapshot_count(table) == before


@PROPERTY
@given(stream=streams(), mor=st.booleans(), seed=st.integers(0, 2**16))
def test_scd2_batches_in_any_order_equal_in_order(lake: wharf.Lakehouse, stream: list[Event], mor: bool, seed: int) -> None:
    """SCD2 places late events in the history, so batches may arrive in any order. A delete must
    arrive with (or after) the version it closes: it travels in the batch of its key's previous event."""
    rng = random.Random(seed)
    chunk_of: dict[Event, int] = {}
    previous: dict[int, Event] = {}
    for e in stream:
        before = previous.get(e.id)
        if e.op == "D" and (before is None or before.op == "D"):
            continue  # a delete that closes nothing: not generated here (see test_scd2_delete_closes_…)
        chunk_of[e] = chunk_of[before] if e.op == "D" and before is not None else rng.randrange(3)
        previous[e.id] = e
    events = list(chunk_of)
    chunks = [[e for e in events if chunk_of[e] == c] for c in range(3)]
    rng.shuffle(chunks)
    table = new_target(lake, 2, mor)
    for chunk in chunks:
        if chunk:
            apply(table, rng.sample(chunk, len(chunk)), 2)
    assert contents(table, 2) == model_scd2(events)


# --- SCD type 1 --------------------------------------------------------------------------------------

CALL = (
    "CALL system.apply_changes(target => 'db.t', source => '{source}', keys => array('id'), sequence_by => 'lsn', "
    "operation_column => 'op', delete_when => 'op = ''D''', columns_except => array('op', 'lsn'){extra})"
)


@pytest.fixture
def cdc(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE NAMESPACE db")
    lake.sql("CREATE TABLE db.t (id INT, name VARCHAR, price INT)")
    lake.sql("CREATE TABLE db.events (id INT, name VARCHAR, price INT, op VARCHAR, lsn BIGINT)")
    lake.sql(
        "INSERT INTO db.events VALUES (1, 'a', 10, 'I', 1), (2, 'b', 20, 'I', 2), (1, 'a', 15, 'U', 3), "
        "(3, 'c', 30, 'I', 4), (2, NULL, NULL, 'D', 5)"
    )
    return lake


def call(lake: wharf.Lakehouse, source: str = "db.events", extra: str = "") -> dict[str, Any]:
    row: dict[str, Any] = lake.sql(CALL.format(source=source.replace("'", "''"), extra=extra)).to_arrow().to_pylist()[0]
    return row


def test_sql_procedure_applies_once_and_says_so_on_rerun(cdc: wharf.Lakehouse) -> None:
    first = call(cdc)
    assert first["status"] == "applied" and first["high_water_mark"] == "5"
    assert (first["num_inserted_rows"], first["num_updated_rows"], first["num_deleted_rows"]) == (2, 0, 0)
    assert cdc.sql("SELECT * FROM db.t ORDER BY id").fetchall() == [(1, "a", 15), (3, "c", 30)]
    summary = dict(cdc.table("db.t").iceberg.current_snapshot().summary.additional_properties)
    assert summary["wharf.cdc.high-water-mark"] == "5" and summary["wharf.cdc.sequence-by"] == "lsn"
    assert first["snapshot_id"] == cdc.table("db.t").current_snapshot_id()

    again = call(cdc, "SELECT * FROM db.events ORDER BY lsn DESC")  # same events, another order
    assert again["status"] == "already applied" and again["snapshot_id"] is None
    assert again["num_duplicate_events"] == 5
    assert cdc.table("db.t").current_snapshot_id() == first["snapshot_id"]


def test_later_batch_with_older_sequences_is_ignored(cdc: wharf.Lakehouse) -> None:
    call(cdc)
    head = cdc.table("db.t").current_snapshot_id()
    late = call(cdc, "SELECT 1 AS id, 'old' AS name, 1 AS price, 'U' AS op, 2 AS lsn UNION ALL SELECT 9, 'x', 9, 'I', 4")
    assert late["num_late_events"] == 2 and late["status"] == "unchanged" and late["snapshot_id"] is None
    assert cdc.sql("SELECT * FROM db.t ORDER BY id").fetchall() == [(1, "a", 15), (3, "c", 30)]
    assert cdc.table("db.t").current_snapshot_id() == head
    empty = call(cdc, "SELECT * FROM db.events WHERE false")
    assert (empty["num_events"], empty["status"], empty["high_water_mark"]) == (0, "unchanged", "5")


def test_delete_of_absent_key_is_harmless_and_moves_the_mark(cdc: wharf.Lakehouse) -> None:
    call(cdc)
    row = call(cdc, "SELECT 7 AS id, NULL AS name, NULL AS price, 'D' AS op, 9 AS lsn")
    assert row["num_deleted_rows"] == 0 and row["status"] == "applied" and row["high_water_mark"] == "9"
    assert cdc.sql("SELECT * FROM db.t ORDER BY id").fetchall() == [(1, "a", 15), (3, "c", 30)]
    # The delete at 9 was recorded (an empty snapshot): an insert of key 7 at 8 arrives too late.
    late = call(cdc, "SELECT 7 AS id, 'late' AS name, 1 AS price, 'I' AS op, 8 AS lsn")
    assert late["num_late_events"] == 1
    assert cdc.sql("SELECT count(*) FROM db.t WHERE id = 7").scalar() == 0


def test_target_storing_the_sequence_compares_per_key(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE NAMESPACE db")
    lake.sql("CREATE TABLE db.s (id INT, v INT, lsn BIGINT)")
    t = lake.table("db.s")
    t.apply_changes(
        [{"id": 1, "v": 1, "op": "U", "lsn": 10}, {"id": 2, "v": 2, "op": "U", "lsn": 50}],
        keys=["id"],
        sequence_by="lsn",
        operation_column="op",
    )
    # Key 1 holds sequence 10: an event at 20 still applies though the mark is 50; key 2's at 40 does not.
    row = (
        t.apply_changes(
            [{"id": 1, "v": 11, "op": "U", "lsn": 20}, {"id": 2, "v": 22, "op": "U", "lsn": 40}],
            keys=["id"],
            sequence_by="lsn",
            operation_column="op",
        )
        .to_arrow()
        .to_pylist()[0]
    )
    assert (row["num_updated_rows"], row["num_late_events"], row["high_water_mark"]) == (1, 1, "50")
    assert lake.sql("SELECT * FROM db.s ORDER BY id").fetchall() == [(1, 11, 20), (2, 2, 50)]


def test_ignore_null_updates_keeps_values(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE NAMESPACE db")
    lake.sql("CREATE TABLE db.p (id INT, name VARCHAR, price INT)")
    t = lake.table("db.p")
    opts: dict[str, Any] = {"keys": "id", "sequence_by": "seq", "operation_column": "op", "ignore_null_updates": True}
    t.apply_changes([{"id": 1, "name": "a", "price": 10, "op": "I", "seq": 1}], **opts)
    t.apply_changes(
        [
            {"id": 1, "name": None, "price": 20, "op": "U", "seq": 2},
            {"id": 1, "name": "b", "price": None, "op": "U", "seq": 3},
            {"id": 2, "name": "x", "price": 5, "op": "I", "seq": 4},
            {"id": 2, "name": None, "price": None, "op": "D", "seq": 5},
            {"id": 2, "name": None, "price": 7, "op": "I", "seq": 6},
        ],
        **opts,
    )
    # Key 1: NULLs keep the values; key 2: re-inserted after a delete, so nothing is kept from before it.
    assert lake.sql("SELECT * FROM db.p ORDER BY id").fetchall() == [(1, "b", 20), (2, None, 7)]


# --- SCD type 2 ------------------------------------------------------------------------------------


def test_scd2_late_events_split_intervals(lake: wharf.Lakehouse) -> None:
    t = new_target(lake, 2, mor=False)
    apply(t, [Event(1, 100, "U", 10), Event(1, 300, "U", 30), Event(2, 5, "U", 10)], 2)
    # Late: an update at 20 (between two versions), a delete at 15 of key 2, and a version before all (5).
    row = apply(t, [Event(1, 200, "U", 20), Event(2, None, "D", 15), Event(1, 50, "U", 5)], 2)
    assert row["num_late_events"] == 0 and row["status"] == "applied" and row["high_water_mark"] == "30"
    assert contents(t, 2) == [(1, 50, 5, 10), (1, 100, 10, 20), (1, 200, 20, 30), (1, 300, 30, None), (2, 5, 10, 15)]
    # Out of order batches give the same history as one batch in order.
    reference = new_target(lake, 2, mor=True)
    apply(
        reference,
        [
            Event(1, 50, "U", 5),
            Event(1, 100, "U", 10),
            Event(2, 5, "U", 10),
            Event(2, None, "D", 15),
            Event(1, 200, "U", 20),
            Event(1, 300, "U", 30),
        ],
        2,
    )
    assert contents(reference, 2) == contents(t, 2)
    # Re-delivering both batches changes nothing.
    before = snapshot_count(t)
    assert apply(t, [Event(1, 300, "U", 30), Event(2, None, "D", 15)], 2)["num_duplicate_events"] == 2
    assert snapshot_count(t) == before


def test_scd2_delete_closes_current_version_and_reinsert_opens_one(lake: wharf.Lakehouse) -> None:
    t = new_target(lake, 2, mor=True)
    apply(t, [Event(1, 1, "U", 1)], 2)
    apply(t, [Event(1, None, "D", 2)], 2)
    apply(t, [Event(1, 3, "U", 3)], 2)
    assert contents(t, 2) == [(1, 1, 1, 2), (1, 3, 3, None)]
    assert lake.sql(f"SELECT v FROM {t.full_name} WHERE __end_at IS NULL").fetchall() == [(3,)]


# --- errors ------------------------------------------------------------------------------------------


def test_errors_say_what_and_where(cdc: wharf.Lakehouse) -> None:
    with pytest.raises(SchemaMismatch, match="no key column 'nope'"):
        cdc.sql("CALL system.apply_changes(target => 'db.t', source => 'db.events', keys => array('nope'), sequence_by => 'lsn')")
    with pytest.raises(SchemaMismatch, match="no sequence_by column 'seq'"):
        cdc.sql("CALL system.apply_changes(target => 'db.t', source => 'db.events', keys => array('id'), sequence_by => 'seq')")
    with pytest.raises(SqlParseError, match="delete_when") as parse_error:
        cdc.sql(
            "CALL system.apply_changes(target => 'db.t', source => 'db.events', keys => array('id'), "
            "sequence_by => 'lsn', delete_when => 'op = = 1', columns_except => array('op', 'lsn'))"
        )
    assert parse_error.value.column is not None
    with pytest.raises(SchemaMismatch, match="(?s)no column 'op'.*columns_except"):
        cdc.sql(
            "CALL system.apply_changes(target => 'db.t', source => 'SELECT *, 1 AS extra FROM db.events', "
            "keys => array('id'), sequence_by => 'lsn')"
        )
    with pytest.raises(InvalidArgument, match="NULL key"):
        call(cdc, "SELECT NULL::INT AS id, 'x' AS name, 1 AS price, 'I' AS op, 1 AS lsn")
    with pytest.raises(InvalidArgument, match="NULL sequence"):
        call(cdc, "SELECT 1 AS id, 'x' AS name, 1 AS price, 'I' AS op, NULL::BIGINT AS lsn")
    with pytest.raises(InvalidArgument, match="same sequence"):
        call(cdc, "SELECT 1 AS id, 'x' AS name, 1 AS price, 'I' AS op, 1 AS lsn UNION ALL SELECT 1, 'y', 1, 'I', 1")
    with pytest.raises(SchemaMismatch, match="__start_at"):
        call(cdc, extra=", scd_type => 2")
    with pytest.raises(SchemaMismatch, match="do not fit"):
        call(cdc, "SELECT 1 AS id, 'x' AS name, 'not a number' AS price, 'I' AS op, 1 AS lsn")
    assert cdc.table("db.t").current_snapshot_id() is None  # nothing was committed


def test_branches_keep_their_own_high_water_mark(cdc: wharf.Lakehouse) -> None:
    t = cdc.table("db.t")
    t.apply_changes([{"id": 1, "name": "main", "price": 1, "lsn": 5}], keys="id", sequence_by="lsn")
    t.create_branch("dev")
    row = t.apply_changes([{"id": 2, "name": "dev", "price": 2, "lsn": 9}], keys="id", sequence_by="lsn", branch="dev")
    assert row.to_arrow().column("high_water_mark")[0].as_py() == "9"
    # main's mark is still 5: an event at 7 applies there.
    main = call(cdc, "SELECT 3 AS id, 'late for dev' AS name, 3 AS price, 'I' AS op, 7 AS lsn")
    assert main["status"] == "applied" and main["high_water_mark"] == "7"
    assert cdc.sql("SELECT id FROM db.t ORDER BY id").fetchall() == [(1,), (3,)]
    assert cdc.sql("SELECT id FROM db.t.branch_dev ORDER BY id").fetchall() == [(1,), (2,)]


def test_scd2_reads_only_the_files_that_can_hold_the_batch_keys(lake: wharf.Lakehouse) -> None:
    t = new_target(lake, 2, mor=False)
    for batch in range(3):  # one data file per key range
        apply(t, [Event(batch * 100 + i, i, "U", batch * 1000 + i) for i in range(5)], 2)
    reads: list[Any] = []
    unsubscribe = lake.events.subscribe("on_statement", lambda event: reads.extend(event.inputs))
    try:
        apply(t, [Event(102, 7, "U", 5000)], 2)
    finally:
        unsubscribe()
    # The history read and the MERGE each plan the one file of keys 100..104.
    assert [r.files for r in reads if r.table == t.full_name] == [2]
    assert lake.sql(f"SELECT v, __end_at FROM {t.full_name} WHERE id = 102 ORDER BY __start_at").fetchall() == [
        (2, 5000),
        (7, None),
    ]


def test_cli_reads_parquet_and_csv_events(tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from wharf.cli import app

    lake_dir = str(tmp_path / "lake")
    with wharf.connect(lake_dir) as lake:
        lake.sql("CREATE NAMESPACE db")
        lake.sql("CREATE TABLE db.t (id INT, v BIGINT)")
    pq.write_table(events_table([Event(1, 10, "U", 1), Event(2, 20, "U", 2)]), tmp_path / "one.parquet")
    (tmp_path / "two.csv").write_text("id,v,op,lsn\n1,,D,3\n3,30,I,4\n")
    runner = CliRunner()
    base = ["--lake", lake_dir, "cdc", "apply", "db.t", "--keys", "id", "--sequence-by", "lsn", "--operation-column", "op"]
    counts = []
    for source in ("one.parquet", "two.csv", "two.csv"):
        result = runner.invoke(app, [*base, "--from", str(tmp_path / source)])
        assert result.exit_code == 0, result.output
        with wharf.connect(lake_dir) as lake:
            counts.append(len(lake.table("db.t").iceberg.metadata.snapshots))
    assert counts == [1, 2, 2]  # the re-run commits nothing (the table's width may cut the status column)
    missing = runner.invoke(app, [*base, "--from", str(tmp_path / "nope.parquet")])
    assert missing.exit_code == 1 and "does not exist" in " ".join(missing.output.split())
    with wharf.connect(lake_dir) as lake:
        assert lake.sql("SELECT * FROM db.t ORDER BY id").fetchall() == [(2, 20), (3, 30)]
