"""Snapshot expiry deletes exactly the files only expired snapshots reached; orphan removal only the unreferenced.

The invariants every test checks (``assert_safe``): each retained snapshot still reads exactly the
rows it read before, every file a retained snapshot can read (manifest list, manifests, live data
and delete files, statistics) still exists, and no data file is left on disk that the metadata
no longer references (nothing leaks). Delete files come from ``tests/tables/delete_files.py``,
built and committed the way other engines write them.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.table import Table

import wharf
from tests.conftest import past_last_commit
from tests.tables.delete_files import commit_delete_files, data_files, equality_delete_file, position_delete_file
from wharf.errors import InvalidArgument, NotFound, ValidationError
from wharf.tables import expire
from wharf.tables.orphans import referenced_files
from wharf.tables.scan import local_path

FUTURE = "TIMESTAMP '2999-01-01 00:00:00'"
COUNTS = [*expire.COUNT_COLUMNS, "expired_snapshots_count"]


# --- helpers ------------------------------------------------------------------------------------


def iceberg(lake: wharf.Lakehouse, name: str = "t") -> Table:
    return lake.table(name).iceberg


def snapshot_ids(lake: wharf.Lakehouse, name: str = "t") -> set[int]:
    return {s.snapshot_id for s in iceberg(lake, name).metadata.snapshots}


def rows_at(lake: wharf.Lakehouse, snapshot_id: int, name: str = "t") -> list[tuple[Any, ...]]:
    return sorted(lake.sql(f"SELECT * FROM {name} FOR VERSION AS OF {snapshot_id}").fetchall(), key=repr)


def all_rows(lake: wharf.Lakehouse, name: str = "t") -> dict[int, list[tuple[Any, ...]]]:
    """What every snapshot of the table reads now."""
    return {sid: rows_at(lake, sid, name) for sid in snapshot_ids(lake, name)}


def readable_files(table: Table) -> set[str]:
    """Every file some snapshot of ``table`` can read: lists, manifests, live data/delete files, statistics."""
    paths: set[str] = set()
    for snapshot in table.metadata.snapshots:
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            paths.add(manifest.manifest_path)
            paths |= {e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io, discard_deleted=True)}
    paths |= {s.statistics_path for s in [*table.metadata.statistics, *table.metadata.partition_statistics]}
    return {os.path.normpath(local_path(p)) for p in paths}


def files_on_disk(lake: wharf.Lakehouse, name: str = "t") -> set[str]:
    root = Path(local_path(iceberg(lake, name).location()))
    return {os.path.normpath(p) for p in root.rglob("*") if p.is_file()}


def assert_safe(
    lake: wharf.Lakehouse, before: dict[int, list[tuple[Any, ...]]], name: str = "t", strays: frozenset[str] = frozenset()
) -> None:
    """Retained snapshots read what they read before; their files exist; no unreferenced file is left
    (but old metadata.json files, and the ``strays`` a test put there itself)."""
    table = iceberg(lake, name)
    retained = snapshot_ids(lake, name)
    assert retained <= set(before)
    for sid in retained:
        assert rows_at(lake, sid, name) == before[sid], f"snapshot {sid} changed"
    on_disk = files_on_disk(lake, name)
    missing = readable_files(table) - on_disk
    assert not missing, f"files of retained snapshots were deleted: {sorted(missing)}"
    referenced = referenced_files(table)
    leaked = {p for p in on_disk - referenced - strays if not p.endswith(".metadata.json")}
    assert not leaked, f"files only expired snapshots reached were left: {sorted(leaked)}"


def expire_sql(lake: wharf.Lakehouse, args: str = "", name: str = "t") -> dict[str, int]:
    result = lake.sql(f"CALL system.expire_snapshots(table => '{name}'{', ' + args if args else ''})")
    assert result.columns == COUNTS
    return dict(zip(COUNTS, result.fetchone(), strict=True))


def insert(lake: wharf.Lakehouse, values: str, target: str = "t") -> int:
    past_last_commit(lake, "t")
    lake.sql(f"INSERT INTO {target} VALUES {values}")
    return snapshot_head(lake, target.split(".branch_")[1] if ".branch_" in target else "main")


def snapshot_head(lake: wharf.Lakehouse, ref: str = "main", name: str = "t") -> int:
    head = lake.table(name).current_snapshot_id(ref)
    assert head is not None
    return head


@pytest.fixture
def t(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE TABLE t (id BIGINT, v VARCHAR)")
    return lake


# --- what expiry deletes --------------------------------------------------------------------------


def test_files_only_expired_snapshots_read_are_deleted_and_counted(t: wharf.Lakehouse) -> None:
    """Data, position and equality delete files of a dropped branch go; files main still reads stay."""
    insert(t, "(1, 'a'), (2, 'b'), (3, 'c')")
    insert(t, "(4, 'd')")
    t.sql("ALTER TABLE t CREATE BRANCH b")
    insert(t, "(5, 'e')", "t.branch_b")
    table = iceberg(t)
    first = data_files(table)[0]
    commit_delete_files(table, [position_delete_file(table, [(first, [0])])], branch="b")
    commit_delete_files(table, [equality_delete_file(table, ["id"], [(2,)])], branch="b")
    assert sorted(r[0] for r in t.sql("SELECT id FROM t.branch_b").fetchall()) == [3, 4, 5]
    past_last_commit(t, "t")
    insert(t, "(6, 'f')")
    t.sql("ALTER TABLE t DROP BRANCH b")
    before = all_rows(t)
    on_disk = files_on_disk(t)

    counts = expire_sql(t, f"older_than => {FUTURE}, retain_last => 1")

    # main keeps its head (which reads the three main data files through the first two manifests);
    # its two ancestors and the branch's three snapshots expire with everything only they read.
    assert counts == {
        "deleted_data_files_count": 1,  # the branch's insert
        "deleted_position_delete_files_count": 1,
        "deleted_equality_delete_files_count": 1,
        "deleted_manifest_files_count": 3,  # the branch's data manifest and two delete manifests
        "deleted_manifest_lists_count": 5,
        "deleted_statistics_files_count": 0,
        "expired_snapshots_count": 5,
    }
    assert len(on_disk - files_on_disk(t)) == 11
    assert snapshot_ids(t) == {snapshot_head(t)}
    assert_safe(t, before)
    assert sorted(r[0] for r in t.sql("SELECT id FROM t").fetchall()) == [1, 2, 3, 4, 6]


def test_copy_on_write_rewrites_free_the_files_they_replaced(t: wharf.Lakehouse) -> None:
    insert(t, "(1, 'a'), (2, 'b')")
    insert(t, "(3, 'c')")
    past_last_commit(t, "t")
    t.sql("DELETE FROM t WHERE id = 1")
    past_last_commit(t, "t")
    t.sql("UPDATE t SET v = 'z' WHERE id = 3")
    before = all_rows(t)
    counts = expire_sql(t, f"older_than => {FUTURE}, retain_last => 1")
    assert counts["deleted_data_files_count"] == 2  # the two files the DELETE and the UPDATE rewrote
    assert counts["expired_snapshots_count"] == 3
    assert counts["deleted_manifest_lists_count"] == 3
    assert_safe(t, before)
    assert t.sql("SELECT * FROM t ORDER BY id").fetchall() == [(2, "b"), (3, "z")]


def test_nothing_to_expire_deletes_nothing(t: wharf.Lakehouse) -> None:
    insert(t, "(1, 'a')")
    insert(t, "(2, 'b')")
    on_disk = files_on_disk(t)
    assert expire_sql(t, "retain_last => 1") == dict.fromkeys(COUNTS, 0)  # default: older than 5 days
    assert files_on_disk(t) == on_disk


def test_retained_snapshots_keep_every_file_they_read(t: wharf.Lakehouse) -> None:
    """Branch heads, tag heads, retain_last ancestors and a branch's own snapshot retention keep their files."""
    s1 = insert(t, "(1, 'a')")
    t.sql(f"ALTER TABLE t CREATE TAG first AS OF VERSION {s1}")
    past_last_commit(t, "t")
    t.sql("DELETE FROM t")  # main no longer reads s1's file; the tag does
    s2 = snapshot_head(t)
    s3 = insert(t, "(2, 'b')")
    s4 = insert(t, "(3, 'c')")
    t.sql("ALTER TABLE t CREATE BRANCH keep WITH SNAPSHOT RETENTION 3 SNAPSHOTS")
    past_last_commit(t, "t")
    t.sql("DELETE FROM t WHERE id = 2")
    s5 = snapshot_head(t)
    s6 = insert(t, "(4, 'd')")
    before = all_rows(t)
    counts = expire_sql(t, f"older_than => {FUTURE}, retain_last => 1")
    # main keeps its head; the branch its head and two ancestors; the tag its snapshot
    assert snapshot_ids(t) == {s1, s2, s3, s4, s6}
    assert counts["expired_snapshots_count"] == 1 and counts["deleted_manifest_lists_count"] == 1
    assert counts["deleted_data_files_count"] == 0  # s5 only dropped a file s3 and s4 still read
    assert s5 not in snapshot_ids(t)
    assert_safe(t, before)
    assert t.sql("SELECT * FROM t.tag_first").fetchall() == [(1, "a")]
    assert sorted(t.sql("SELECT id FROM t.branch_keep").fetchall()) == [(2,), (3,)]
    assert sorted(t.sql("SELECT id FROM t").fetchall()) == [(3,), (4,)]


def test_table_properties_give_the_defaults(t: wharf.Lakehouse) -> None:
    ids = [insert(t, f"({i}, 'v')") for i in range(5)]
    t.sql(
        "ALTER TABLE t SET TBLPROPERTIES ('history.expire.max-snapshot-age-ms' = '1', "
        "'history.expire.min-snapshots-to-keep' = '3')"
    )
    time.sleep(0.01)
    before = all_rows(t)
    assert expire_sql(t)["expired_snapshots_count"] == 2
    assert snapshot_ids(t) == set(ids[2:])
    assert_safe(t, before)


def test_refs_past_their_age_are_dropped_with_their_files(t: wharf.Lakehouse) -> None:
    s1 = insert(t, "(1, 'a')")
    s2 = insert(t, "(2, 'b')")
    t.sql(f"ALTER TABLE t CREATE TAG short AS OF VERSION {s1} RETAIN 1 DAYS")
    t.sql(f"ALTER TABLE t CREATE BRANCH long AS OF VERSION {s2} RETAIN 30 DAYS")
    t.sql(f"ALTER TABLE t CREATE TAG forever AS OF VERSION {s1}")
    past_last_commit(t, "t")
    t.sql("DELETE FROM t")
    insert(t, "(3, 'c')")
    before = all_rows(t)
    in_two_days = int(time.time() * 1000) + 2 * 86_400_000
    result = expire.expire_snapshots(iceberg(t), retain_last=1, now_ms=in_two_days, older_than_ms=in_two_days)
    assert result.removed_refs == ("short",)
    assert {r[0] for r in t.sql("SELECT name FROM t.refs").fetchall()} == {"main", "long", "forever"}
    assert_safe(t, before)
    # the table-wide default max ref age drops 'forever' (a tag) too; a branch's own RETAIN wins
    t.sql("ALTER TABLE t SET TBLPROPERTIES ('history.expire.max-ref-age-ms' = '86400000')")
    result = expire.expire_snapshots(iceberg(t), retain_last=1, now_ms=in_two_days, older_than_ms=in_two_days)
    assert result.removed_refs == ("forever",)
    assert result.expired_snapshot_ids == (s1,)  # now only an ancestor of 'long', beyond its one kept snapshot
    assert result.deleted_data_files_count == 0  # 'long' still reads s1's file
    assert result.deleted_manifest_lists_count == 1
    assert_safe(t, before)
    assert sorted(t.sql("SELECT id FROM t.branch_long").fetchall()) == [(1,), (2,)]


def test_writing_to_a_branch_keeps_its_retention(t: wharf.Lakehouse) -> None:
    insert(t, "(1, 'a')")
    t.sql("ALTER TABLE t CREATE BRANCH b RETAIN 30 DAYS WITH SNAPSHOT RETENTION 3 SNAPSHOTS")
    insert(t, "(2, 'b')", "t.branch_b")
    ref = iceberg(t).metadata.refs["b"]
    assert (ref.max_ref_age_ms, ref.min_snapshots_to_keep) == (30 * 86_400_000, 3)


def test_explicit_snapshot_ids_never_take_a_ref_head(t: wharf.Lakehouse) -> None:
    s1 = insert(t, "(1, 'a')")
    s2 = insert(t, "(2, 'b')")
    t.sql(f"ALTER TABLE t CREATE TAG keep AS OF VERSION {s1}")
    with pytest.raises(ValidationError, match="head of keep"):
        expire_sql(t, f"snapshot_ids => array({s1})")
    with pytest.raises(ValidationError, match="head of main"):
        expire_sql(t, f"snapshot_ids => array({s2})")
    assert snapshot_ids(t) == {s1, s2}


def test_statistics_files_of_expired_snapshots_are_deleted(t: wharf.Lakehouse) -> None:
    s1 = insert(t, "(1, 'a')")
    s2 = insert(t, "(2, 'b')")
    [(old_stats,)] = t.sql(f"CALL system.compute_table_stats(table => 't', snapshot_id => {s1})").fetchall()
    [(new_stats,)] = t.sql(f"CALL system.compute_table_stats(table => 't', snapshot_id => {s2})").fetchall()
    before = all_rows(t)
    counts = expire_sql(t, f"older_than => {FUTURE}, retain_last => 1")
    assert counts["deleted_statistics_files_count"] == 1
    assert not os.path.exists(local_path(old_stats)) and os.path.exists(local_path(new_stats))
    assert [s.snapshot_id for s in iceberg(t).metadata.statistics] == [s2]
    assert_safe(t, before)


def test_clean_expired_metadata_removes_unused_schemas_and_specs(t: wharf.Lakehouse) -> None:
    insert(t, "(1, 'a')")
    t.sql("ALTER TABLE t ADD COLUMN w INT")
    t.sql("ALTER TABLE t ADD PARTITION FIELD bucket(4, id)")
    past_last_commit(t, "t")
    t.sql("INSERT OVERWRITE t SELECT 2, 'b', 20")
    before = all_rows(t)
    assert len(iceberg(t).metadata.schemas) == 2 and len(iceberg(t).metadata.partition_specs) == 2
    expire_sql(t, f"older_than => {FUTURE}, retain_last => 1")
    assert len(iceberg(t).metadata.schemas) == 2  # kept without clean_expired_metadata
    insert(t, "(3, 'c', 30)")
    before = all_rows(t)
    counts = expire_sql(t, f"older_than => {FUTURE}, retain_last => 1, clean_expired_metadata => true")
    assert counts["expired_snapshots_count"] == 1
    metadata = iceberg(t).metadata
    assert [s.schema_id for s in metadata.schemas] == [metadata.current_schema_id]
    assert [s.spec_id for s in metadata.partition_specs] == [metadata.default_spec_id]
    assert_safe(t, before)
    assert t.sql("SELECT * FROM t ORDER BY id").fetchall() == [(2, "b", 20), (3, "c", 30)]


def test_spark_parameters_are_accepted(t: wharf.Lakehouse) -> None:
    insert(t, "(1, 'a')")
    insert(t, "(2, 'b')")
    counts = expire_sql(t, f"older_than => {FUTURE}, retain_last => 1, max_concurrent_deletes => 4, stream_results => true")
    assert counts["expired_snapshots_count"] == 1
    with pytest.raises(InvalidArgument, match="max_concurrent_deletes"):
        expire_sql(t, "max_concurrent_deletes => 0")


def test_python_api_mirrors_the_procedure(t: wharf.Lakehouse) -> None:
    insert(t, "(1, 'a')")
    s2 = insert(t, "(2, 'b')")
    result = t.table("t").expire_snapshots(older_than=dt.datetime(2999, 1, 1), retain_last=1)
    assert result.columns == COUNTS
    assert result.fetchone()[-1] == 1
    assert snapshot_ids(t) == {s2}
    assert t.table("t").remove_orphan_files(dry_run=True) == []


# --- gc.enabled=false -----------------------------------------------------------------------------


def test_gc_disabled_refuses_expiry_and_orphan_removal(t: wharf.Lakehouse) -> None:
    insert(t, "(1, 'a')")
    insert(t, "(2, 'b')")
    t.sql("ALTER TABLE t SET TBLPROPERTIES ('gc.enabled' = 'false')")
    ids, on_disk = snapshot_ids(t), files_on_disk(t)
    with pytest.raises(ValidationError, match="'gc.enabled' is false") as info:
        expire_sql(t, f"older_than => {FUTURE}, retain_last => 1")
    assert "SET TBLPROPERTIES ('gc.enabled' = 'true')" in str(info.value)
    with pytest.raises(ValidationError, match="gc.enabled"):
        t.sql(f"CALL system.remove_orphan_files(table => 't', older_than => {FUTURE}, dry_run => true)")
    assert snapshot_ids(t) == ids and files_on_disk(t) == on_disk
    t.sql("ALTER TABLE t SET TBLPROPERTIES ('gc.enabled' = 'true')")
    assert expire_sql(t, f"older_than => {FUTURE}, retain_last => 1")["expired_snapshots_count"] == 1


# --- old metadata.json files ------------------------------------------------------------------------


def _metadata_files(lake: wharf.Lakehouse) -> set[str]:
    return {p for p in files_on_disk(lake) if p.endswith(".metadata.json")}


def test_old_metadata_files_are_deleted_after_commit_when_enabled(lake: wharf.Lakehouse) -> None:
    lake.sql(
        "CREATE TABLE t (id BIGINT) TBLPROPERTIES ('write.metadata.delete-after-commit.enabled' = 'true', "
        "'write.metadata.previous-versions-max' = '2')"
    )
    for i in range(5):
        lake.sql(f"INSERT INTO t VALUES ({i})")
    table = iceberg(lake)
    log = [os.path.normpath(local_path(e.metadata_file)) for e in table.metadata.metadata_log]
    assert len(log) == 2
    assert _metadata_files(lake) == {*log, os.path.normpath(local_path(table.metadata_location))}
    assert lake.sql("SELECT count(*) FROM t").scalar() == 5


def test_old_metadata_files_stay_by_default(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT) TBLPROPERTIES ('write.metadata.previous-versions-max' = '2')")
    for i in range(4):
        lake.sql(f"INSERT INTO t VALUES ({i})")
    assert len(iceberg(lake).metadata.metadata_log) == 2
    assert len(_metadata_files(lake)) == 5  # the log forgets them, the files stay (for remove_orphan_files)


# --- remove_orphan_files ---------------------------------------------------------------------------


def _age(paths: set[str], days: float) -> None:
    then = time.time() - days * 86_400
    for p in paths:
        os.utime(p, (then, then))


def test_orphans_are_old_unreferenced_files_only(t: wharf.Lakehouse) -> None:
    s1 = insert(t, "(1, 'a')")
    t.sql(f"ALTER TABLE t CREATE TAG first AS OF VERSION {s1}")
    t.sql("ALTER TABLE t CREATE BRANCH b")
    insert(t, "(2, 'b')", "t.branch_b")
    past_last_commit(t, "t")
    t.sql("DELETE FROM t")  # s1's file is referenced by the tag (and the branch) only
    table = iceberg(t)
    first = data_files(table, s1)[0]
    commit_delete_files(table, [position_delete_file(table, [(first, [0])])], branch="b")
    data_dir = Path(local_path(table.location())) / "data"
    old, young = data_dir / "killed-writer.parquet", data_dir / "in-flight.parquet"
    old.write_bytes(b"x")
    young.write_bytes(b"y")
    referenced = files_on_disk(t) - {str(old), str(young)}
    _age(referenced | {str(old)}, days=10)  # everything referenced is old too
    before = all_rows(t)

    dry = t.sql("CALL system.remove_orphan_files(table => 't', dry_run => true)")
    assert dry.columns == ["orphan_file_location"]
    assert dry.fetchall() == [(str(old),)]
    assert old.exists()
    removed = t.sql("CALL system.remove_orphan_files('t')").fetchall()
    assert removed == [(str(old),)]
    assert not old.exists() and young.exists()
    assert files_on_disk(t) == referenced | {str(young)}
    assert_safe(t, before, strays=frozenset({str(young)}))
    # with a cut-off in the future the young file goes too, and still nothing referenced
    assert t.sql(f"CALL system.remove_orphan_files('t', {FUTURE})").fetchall() == [(str(young),)]
    assert files_on_disk(t) == referenced


def test_orphan_location_must_be_inside_the_table(t: wharf.Lakehouse, tmp_path: Path) -> None:
    insert(t, "(1, 'a')")
    with pytest.raises(InvalidArgument, match="not inside the table's location"):
        t.sql(f"CALL system.remove_orphan_files(table => 't', location => '{tmp_path}')")
    data_dir = Path(local_path(iceberg(t).location())) / "data"
    stray = data_dir / "stray.parquet"
    stray.write_bytes(b"x")
    found = t.sql(f"CALL system.remove_orphan_files(table => 't', location => '{data_dir}', older_than => {FUTURE})")
    assert found.fetchall() == [(str(stray),)]


def test_metadata_files_trimmed_from_the_log_are_orphans(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT) TBLPROPERTIES ('write.metadata.previous-versions-max' = '1')")
    for i in range(3):
        lake.sql(f"INSERT INTO t VALUES ({i})")
    on_disk = _metadata_files(lake)
    table = iceberg(lake)
    kept = {os.path.normpath(local_path(e.metadata_file)) for e in table.metadata.metadata_log}
    kept.add(os.path.normpath(local_path(table.metadata_location)))
    assert len(kept) == 2 and len(on_disk) == 4
    removed = {r[0] for r in lake.sql(f"CALL system.remove_orphan_files('t', {FUTURE})").fetchall()}
    assert removed == on_disk - kept
    assert _metadata_files(lake) == kept
    assert lake.sql("SELECT count(*) FROM t").scalar() == 3


def test_after_expiry_nothing_is_an_orphan(t: wharf.Lakehouse) -> None:
    insert(t, "(1, 'a')")
    past_last_commit(t, "t")
    t.sql("UPDATE t SET v = 'b'")
    insert(t, "(2, 'c')")
    expire_sql(t, f"older_than => {FUTURE}, retain_last => 1")
    orphans = [r[0] for r in t.sql(f"CALL system.remove_orphan_files('t', {FUTURE}, dry_run => true)").fetchall()]
    assert all(p.endswith(".metadata.json") for p in orphans)  # expiry left no data, manifest or list behind


def test_unknown_snapshot_is_not_found(t: wharf.Lakehouse) -> None:
    insert(t, "(1, 'a')")
    with pytest.raises(NotFound):
        expire_sql(t, "snapshot_ids => array(42)")


# --- random histories ------------------------------------------------------------------------------

OPERATIONS = [
    "insert",
    "insert",
    "delete",
    "update",
    "overwrite",
    "branch",
    "tag",
    "branch_insert",
    "drop_ref",
    "rollback",
    "position_delete",
]


MERGE_ON_READ = (
    " TBLPROPERTIES ('write.delete.mode' = 'merge-on-read', 'write.update.mode' = 'merge-on-read', "
    "'write.merge.mode' = 'merge-on-read')"
)


def _run_history(lake: wharf.Lakehouse, rng: random.Random, steps: int) -> None:
    """A random history: writes on main and branches, refs made and dropped, rollbacks, delete files."""
    lake.sql("CREATE TABLE t (id BIGINT, v VARCHAR)" + (MERGE_ON_READ if rng.random() < 0.5 else ""))
    next_id = 0
    refs: list[tuple[str, str]] = []
    for step in range(steps):
        past_last_commit(lake, "t")
        op = rng.choice(OPERATIONS)
        snapshots = sorted(snapshot_ids(lake))
        if op == "insert" or not snapshots:
            lake.sql(f"INSERT INTO t VALUES ({next_id}, 'v{step}'), ({next_id + 1}, 'w{step}')")
            next_id += 2
        elif op == "delete":
            lake.sql(f"DELETE FROM t WHERE id % 3 = {rng.randrange(3)}")
        elif op == "update":
            lake.sql(f"UPDATE t SET v = 'u{step}' WHERE id % 2 = {rng.randrange(2)}")
        elif op == "overwrite":
            lake.sql(f"INSERT OVERWRITE t SELECT id, 'o{step}' FROM t WHERE id % 2 = 0")
        elif op in ("branch", "tag"):
            name = f"{op}{step}"
            lake.sql(f"ALTER TABLE t CREATE {op.upper()} {name} AS OF VERSION {rng.choice(snapshots)}")
            refs.append((op, name))
        elif op == "branch_insert" and any(kind == "branch" for kind, _ in refs):
            name = rng.choice([n for kind, n in refs if kind == "branch"])
            lake.sql(f"INSERT INTO t.branch_{name} VALUES ({next_id}, 'b{step}')")
            next_id += 1
        elif op == "drop_ref" and refs:
            kind, name = refs.pop(rng.randrange(len(refs)))
            lake.sql(f"ALTER TABLE t DROP {kind.upper()} {name}")
        elif op == "rollback":
            lake.sql(f"CALL system.set_current_snapshot('t', {rng.choice(snapshots)})")
        elif op == "position_delete":  # merge-on-read, as another engine writes it, on main or a branch
            branch = rng.choice(["main", *(n for kind, n in refs if kind == "branch")])
            table = iceberg(lake)
            head = table.metadata.refs[branch].snapshot_id
            targets = [f for f in data_files(table, head) if f.record_count > 0]
            if targets:
                target = rng.choice(targets)
                commit_delete_files(table, [position_delete_file(table, [(target, [0])])], branch=branch)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    seed=st.integers(0, 2**32 - 1),
    steps=st.integers(3, 14),
    rounds=st.lists(st.sampled_from(["all", "keep2", "ids", "age"]), min_size=1, max_size=3),
)
def test_random_histories_keep_every_retained_snapshot_intact(
    tmp_path_factory: pytest.TempPathFactory, seed: int, steps: int, rounds: list[str]
) -> None:
    rng = random.Random(seed)
    with wharf.connect(tmp_path_factory.mktemp("expire") / "lake", user="tester") as lake:
        _run_history(lake, rng, steps)
        for kind in rounds:
            before = all_rows(lake)
            ids = sorted(before)
            if kind == "all":
                args = f"older_than => {FUTURE}, retain_last => 1"
            elif kind == "keep2":
                args = f"older_than => {FUTURE}, retain_last => 2"
            elif kind == "age":  # snapshots older than a random one of them
                cut = rng.choice([s.timestamp_ms for s in iceberg(lake).metadata.snapshots])
                args = f"older_than => epoch_ms({cut})"
            else:
                heads = {r.snapshot_id for r in iceberg(lake).metadata.refs.values()}
                candidates = [s for s in ids if s not in heads]
                if not candidates:
                    continue
                args = f"snapshot_ids => array({rng.choice(candidates)})"
            counts = expire_sql(lake, args)
            assert counts["expired_snapshots_count"] == len(set(before) - snapshot_ids(lake))
            assert_safe(lake, before)
            past_last_commit(lake, "t")
            lake.sql(f"INSERT INTO t VALUES (-1, '{kind}')")  # the table stays writable
