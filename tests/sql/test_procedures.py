"""CALL system.* procedures: Spark/Iceberg semantics, output columns and argument errors."""

from __future__ import annotations

import datetime as dt
import os
import time
from urllib.parse import urlparse

import pytest

import wharf
from tests.conftest import past_last_commit
from wharf.errors import ConflictError, InvalidArgument, NotFound, SqlParseError, ValidationError
from wharf.events import CommitEvent
from wharf.sql.parser import DIALECTS
from wharf.tables import snapshots as snapshot_ops


def _ids(lake: wharf.Lakehouse, sql: str) -> list[int]:
    return sorted(r[0] for r in lake.sql(sql).fetchall())


def _snapshot_ids(lake: wharf.Lakehouse, table: str = "t") -> list[int]:
    return [r[0] for r in lake.sql(f"SELECT snapshot_id FROM {table}.snapshots ORDER BY committed_at").fetchall()]


def _head(lake: wharf.Lakehouse, table: str = "t", branch: str = "main") -> int | None:
    return lake.table(table).current_snapshot_id(branch)


@pytest.fixture
def t(lake: wharf.Lakehouse) -> list[int]:
    """Table t with three appends (ids 1, 2, 3), committed a few ms apart; returns the snapshot ids."""
    lake.sql("CREATE TABLE t (id BIGINT, v VARCHAR)")
    for i in (1, 2, 3):
        past_last_commit(lake, "t")
        lake.sql(f"INSERT INTO t VALUES ({i}, 'v{i}')")
    return _snapshot_ids(lake)


# --- rollback / set_current_snapshot --------------------------------------------------------------


def test_rollback_to_snapshot_named_and_positional(lake: wharf.Lakehouse, t: list[int]) -> None:
    result = lake.sql(f"CALL system.rollback_to_snapshot(table => 't', snapshot_id => {t[1]})")
    assert result.columns == ["previous_snapshot_id", "current_snapshot_id"]
    assert result.fetchall() == [(t[2], t[1])]
    assert _ids(lake, "SELECT id FROM t") == [1, 2]
    assert lake.sql(f"CALL system.rollback_to_snapshot('default.t', {t[0]})").fetchall() == [(t[1], t[0])]
    assert _ids(lake, "SELECT id FROM t") == [1]
    # the rolled-back snapshots are still there for time travel
    assert _ids(lake, f"SELECT id FROM t FOR VERSION AS OF {t[2]}") == [1, 2, 3]


def test_rollback_to_a_non_ancestor_fails(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"CALL system.rollback_to_snapshot('t', {t[0]})")
    with pytest.raises(ValidationError, match="not an ancestor of main"):
        lake.sql(f"CALL system.rollback_to_snapshot('t', {t[2]})")
    assert _head(lake) == t[0]
    with pytest.raises(NotFound, match="Snapshot 12345 does not exist"):
        lake.sql("CALL system.rollback_to_snapshot('t', 12345)")


def test_rollback_to_timestamp(lake: wharf.Lakehouse, t: list[int]) -> None:
    committed = {r[0]: r[1] for r in lake.sql("SELECT snapshot_id, committed_at FROM t.snapshots").fetchall()}
    # strictly before the third commit: the second snapshot becomes current
    at = committed[t[2]].isoformat(sep=" ")
    result = lake.sql(f"CALL system.rollback_to_timestamp(table => 't', timestamp => TIMESTAMP '{at}')")
    assert result.fetchall() == [(t[2], t[1])]
    assert _ids(lake, "SELECT id FROM t") == [1, 2]
    with pytest.raises(ValidationError, match="no snapshot committed before"):
        lake.sql("CALL system.rollback_to_timestamp('t', '2000-01-01 00:00:00')")


def test_rollback_to_timestamp_accepts_spark_timestamp_literals(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("CALL spark_catalog.system.rollback_to_timestamp('default.t', TIMESTAMP '2999-01-01 00:00:00')", dialect="spark")
    assert _head(lake) == t[2]  # latest snapshot before the year 2999 is the current one


def test_set_current_snapshot_to_any_snapshot_or_ref(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"CALL system.rollback_to_snapshot('t', {t[0]})")
    # t[2] is no longer an ancestor of main, but set_current_snapshot may jump anywhere
    assert lake.sql(f"CALL system.set_current_snapshot('t', {t[2]})").fetchall() == [(t[0], t[2])]
    lake.sql(f"ALTER TABLE t CREATE TAG first AS OF VERSION {t[0]}")
    result = lake.sql("CALL system.set_current_snapshot(table => 't', ref => 'first')")
    assert result.fetchall() == [(t[2], t[0])]
    with pytest.raises(InvalidArgument, match="exactly one of snapshot_id or ref"):
        lake.sql(f"CALL system.set_current_snapshot(table => 't', snapshot_id => {t[1]}, ref => 'first')")
    with pytest.raises(InvalidArgument, match="exactly one of snapshot_id or ref"):
        lake.sql("CALL system.set_current_snapshot(table => 't')")


# --- fast_forward ----------------------------------------------------------------------------------


def test_fast_forward_moves_main_to_the_branch_head(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH audit")
    lake.sql("INSERT INTO t.branch_audit VALUES (4, 'v4')")
    audit = _head(lake, branch="audit")
    result = lake.sql("CALL system.fast_forward(table => 't', branch => 'main', to => 'audit')")
    assert result.columns == ["branch_updated", "previous_ref", "updated_ref"]
    assert result.fetchall() == [("main", t[2], audit)]
    assert _ids(lake, "SELECT id FROM t") == [1, 2, 3, 4]
    # already there: a no-op that still reports the heads
    assert lake.sql("CALL system.fast_forward('t', 'main', 'audit')").fetchall() == [("main", audit, audit)]


def test_fast_forward_fails_when_branches_diverged(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH audit")
    lake.sql("INSERT INTO t.branch_audit VALUES (4, 'v4')")
    lake.sql("INSERT INTO t VALUES (5, 'v5')")
    main = _head(lake)
    with pytest.raises(ValidationError, match="not an ancestor"):
        lake.sql("CALL system.fast_forward('t', 'main', 'audit')")
    assert _head(lake) == main
    with pytest.raises(NotFound, match="'nope' does not exist"):
        lake.sql("CALL system.fast_forward('t', 'main', 'nope')")
    with pytest.raises(NotFound, match="Branch 'nope' does not exist"):
        lake.sql("CALL system.fast_forward('t', 'nope', 'main')")


def test_table_api_fast_forward_and_rollback(lake: wharf.Lakehouse, t: list[int]) -> None:
    table = lake.table("t")
    table.create_branch("dev")
    table.append({"id": [7], "v": ["x"]}, branch="dev")
    table.fast_forward("main", "dev")
    assert table.current_snapshot_id() == table.current_snapshot_id("dev")
    table.rollback_to(t[1])
    assert table.current_snapshot_id() == t[1]
    table.rollback_to(timestamp="2999-01-01 00:00:00")  # newest ancestor before then: unchanged
    assert table.current_snapshot_id() == t[1]


# --- cherrypick_snapshot -----------------------------------------------------------------------------


def test_cherrypick_fast_forwards_when_parent_is_main(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH b")
    lake.sql("INSERT INTO t.branch_b VALUES (4, 'v4')")
    picked = _head(lake, branch="b")
    result = lake.sql(f"CALL system.cherrypick_snapshot('t', {picked})")
    assert result.columns == ["source_snapshot_id", "current_snapshot_id"]
    assert result.fetchall() == [(picked, picked)]
    assert _head(lake) == picked


def test_cherrypick_reapplies_an_append_on_a_moved_main(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH b")
    lake.sql("INSERT INTO t.branch_b VALUES (4, 'v4')")
    picked = _head(lake, branch="b")
    lake.sql("INSERT INTO t VALUES (5, 'v5')")
    events: list[CommitEvent] = []
    lake.events.subscribe("on_commit", events.append)
    source, current = lake.sql(f"CALL system.cherrypick_snapshot(table => 't', snapshot_id => {picked})").fetchone()
    assert source == picked and current not in (picked, None)
    assert _head(lake) == current
    assert _ids(lake, "SELECT id FROM t") == [1, 2, 3, 4, 5]
    summary = dict(lake.sql(f"SELECT summary FROM t.snapshots WHERE snapshot_id = {current}").scalar())
    assert summary["source-snapshot-id"] == str(picked)
    assert summary["wharf.user"] == "tester"
    assert [s.snapshot_id for e in events for s in e.snapshots] == [current]
    assert events[-1].refs == {"main": current}
    with pytest.raises(ValidationError, match="already in main"):
        lake.sql(f"CALL system.cherrypick_snapshot('t', {picked})")
    # the branch still has its own history
    assert _ids(lake, "SELECT id FROM t.branch_b") == [1, 2, 3, 4]


def test_cherrypick_reapplies_an_overwrite(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH b")
    lake.sql("INSERT OVERWRITE t.branch_b SELECT 10, 'ten'")
    picked = _head(lake, branch="b")
    lake.sql("CREATE TABLE u (id BIGINT)")  # unrelated table: main of t unchanged so far
    lake.sql("INSERT INTO t VALUES (5, 'v5')")
    lake.sql(f"CALL system.cherrypick_snapshot('t', {picked})")
    # the overwrite removed the three original files and added its own; 5 came later on main
    assert _ids(lake, "SELECT id FROM t") == [5, 10]


def test_cherrypick_conflicts_when_removed_files_are_gone(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH b")
    lake.sql("INSERT OVERWRITE t.branch_b SELECT 10, 'ten'")
    picked = _head(lake, branch="b")
    lake.sql("INSERT OVERWRITE t SELECT 20, 'twenty'")
    main = _head(lake)
    with pytest.raises(ConflictError, match="no longer has"):
        lake.sql(f"CALL system.cherrypick_snapshot('t', {picked})")
    assert _head(lake) == main
    # the picked snapshot's files were not deleted by the failed attempt
    assert _ids(lake, f"SELECT id FROM t FOR VERSION AS OF {picked}") == [10]


# --- publish_changes (write-audit-publish) -------------------------------------------------------------


def test_publish_changes_staged_with_wap_id(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("SET wharf.wap_id = 'batch-1'")
    lake.sql("INSERT INTO t VALUES (4, 'v4')")
    lake.sql("INSERT INTO t VALUES (5, 'v5')")
    lake.sql("RESET wharf.wap_id")
    assert _head(lake) == t[2]  # staged: main did not move
    assert _ids(lake, "SELECT id FROM t") == [1, 2, 3]
    staged = _snapshot_ids(lake)[3:]
    assert len(staged) == 2
    for sid in staged:
        summary = dict(lake.sql(f"SELECT summary FROM t.snapshots WHERE snapshot_id = {sid}").scalar())
        assert summary["wap.id"] == "batch-1"
    result = lake.sql("CALL system.publish_changes(table => 't', wap_id => 'batch-1')")
    assert result.columns == ["source_snapshot_id", "current_snapshot_id"]
    source, current = result.fetchone()
    assert source == staged[-1] and current == _head(lake)
    assert _ids(lake, "SELECT id FROM t") == [1, 2, 3, 4, 5]
    with pytest.raises(ValidationError, match="already published"):
        lake.sql("CALL system.publish_changes('t', 'batch-1')")
    with pytest.raises(NotFound, match="No snapshot of default.t was staged with wap_id 'other'"):
        lake.sql("CALL system.publish_changes('t', 'other')")


# --- expire_snapshots --------------------------------------------------------------------------------


def _paths(lake: wharf.Lakehouse) -> list[str]:
    return [urlparse(r[0]).path for r in lake.sql("SELECT file_path FROM t.files").fetchall()]


def test_expire_snapshots_keeps_retain_last_and_files(lake: wharf.Lakehouse, t: list[int]) -> None:
    files = _paths(lake)
    result = lake.sql("CALL system.expire_snapshots(table => 't', older_than => now(), retain_last => 2)")
    assert result.columns == [
        "deleted_data_files_count",
        "deleted_position_delete_files_count",
        "deleted_equality_delete_files_count",
        "deleted_manifest_files_count",
        "deleted_manifest_lists_count",
        "deleted_statistics_files_count",
        "expired_snapshots_count",
    ]
    # only t[0]'s manifest list goes: its data file and manifest are still read by t[1] and t[2]
    assert result.fetchall() == [(0, 0, 0, 0, 1, 0, 1)]
    assert _snapshot_ids(lake) == t[1:]
    assert _ids(lake, "SELECT id FROM t") == [1, 2, 3]
    assert all(os.path.exists(p) for p in files)
    with pytest.raises(NotFound):
        lake.sql(f"SELECT * FROM t FOR VERSION AS OF {t[0]}")


def test_expire_snapshots_defaults_keep_recent_snapshots(lake: wharf.Lakehouse, t: list[int]) -> None:
    """Default older_than is five days ago: nothing this young is expired."""
    assert lake.sql("CALL system.expire_snapshots('t')").fetchone()[-1] == 0
    assert _snapshot_ids(lake) == t


def test_expire_snapshots_never_expires_ref_heads(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"ALTER TABLE t CREATE TAG keep AS OF VERSION {t[0]}")
    lake.sql("CALL system.expire_snapshots('t', now(), 1)")
    assert _snapshot_ids(lake) == [t[0], t[2]]
    assert _ids(lake, "SELECT id FROM t.tag_keep") == [1]
    with pytest.raises(ValidationError, match="head of main"):
        lake.sql(f"CALL system.expire_snapshots(table => 't', snapshot_ids => array({t[2]}))")


def test_expire_snapshots_by_id_only(lake: wharf.Lakehouse, t: list[int]) -> None:
    result = lake.sql(f"CALL system.expire_snapshots(table => 't', snapshot_ids => [{t[1]}])")
    assert result.fetchone()[-1] == 1
    assert _snapshot_ids(lake) == [t[0], t[2]]


def test_expire_respects_branch_snapshot_retention(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH keep3 WITH SNAPSHOT RETENTION 3 SNAPSHOTS")
    lake.sql("INSERT INTO t VALUES (4, 'v4')")
    lake.sql("CALL system.expire_snapshots('t', now(), 1)")
    # main keeps only its head; branch keep3 keeps its head and two ancestors
    assert _snapshot_ids(lake) == [*t, _head(lake)]


def test_expire_drops_refs_past_their_retain_age(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"ALTER TABLE t CREATE TAG short AS OF VERSION {t[0]} RETAIN 1 DAYS")
    lake.sql(f"ALTER TABLE t CREATE BRANCH long AS OF VERSION {t[0]} RETAIN 30 DAYS")
    table = lake.table("t").iceberg
    in_two_days = int(time.time() * 1000) + 2 * 86_400_000
    expired = snapshot_ops.expire_snapshots(table, older_than_ms=in_two_days, retain_last=1, now_ms=in_two_days)
    refs = {r[0] for r in lake.sql("SELECT name FROM t.refs").fetchall()}
    assert refs == {"main", "long"}
    assert expired == [t[1]]  # t[0] is still the head of 'long'


def test_expire_snapshots_argument_checks(lake: wharf.Lakehouse, t: list[int]) -> None:
    with pytest.raises(InvalidArgument, match="retain_last"):
        lake.sql("CALL system.expire_snapshots('t', now(), 0)")
    with pytest.raises(NotFound, match="Snapshot 99 does not exist"):
        lake.sql("CALL system.expire_snapshots(table => 't', snapshot_ids => array(99))")


# --- argument binding ----------------------------------------------------------------------------------


def test_unknown_procedure_lists_the_known_ones(lake: wharf.Lakehouse, t: list[int]) -> None:
    with pytest.raises(NotFound, match="Unknown procedure system.nope") as info:
        lake.sql("CALL system.nope('t')")
    assert "rollback_to_snapshot" in str(info.value)


def test_bad_arguments_name_the_parameter_and_show_the_signature(lake: wharf.Lakehouse, t: list[int]) -> None:
    with pytest.raises(InvalidArgument, match="has no parameter 'snapshot'") as info:
        lake.sql(f"CALL system.rollback_to_snapshot(table => 't', snapshot => {t[0]})")
    assert "system.rollback_to_snapshot(table table, snapshot_id long)" in str(info.value)
    with pytest.raises(InvalidArgument, match="needs parameter 'snapshot_id'"):
        lake.sql("CALL system.rollback_to_snapshot(table => 't')")
    with pytest.raises(InvalidArgument, match="'snapshot_id' must be a whole number"):
        lake.sql("CALL system.rollback_to_snapshot('t', 'abc')")
    with pytest.raises(InvalidArgument, match="at most 2 arguments"):
        lake.sql("CALL system.rollback_to_snapshot('t', 1, 2)")
    with pytest.raises(InvalidArgument, match="given twice"):
        lake.sql("CALL system.rollback_to_snapshot('t', 1, table => 't')")
    with pytest.raises(InvalidArgument, match="'timestamp'"):
        lake.sql("CALL system.rollback_to_timestamp('t', 'yesterday-ish')")
    with pytest.raises(NotFound, match="Table default.nope does not exist"):
        lake.sql("CALL system.rollback_to_snapshot('nope', 1)")


def test_call_syntax_errors(lake: wharf.Lakehouse, t: list[int]) -> None:
    with pytest.raises(SqlParseError, match="Positional arguments cannot follow named"):
        lake.sql("CALL system.rollback_to_snapshot(table => 't', 1)")
    with pytest.raises(SqlParseError, match="Unknown procedure namespace"):
        lake.sql("CALL other.rollback_to_snapshot('t', 1)")
    with pytest.raises(SqlParseError):
        lake.sql("CALL system.rollback_to_snapshot('t', 1")


def test_call_arguments_can_be_expressions(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"CALL system.rollback_to_snapshot('t', {t[1]} + 0)")
    assert _head(lake) == t[1]
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    with pytest.raises(ValidationError):  # yesterday: before the first snapshot
        lake.sql(f"CALL system.rollback_to_timestamp('t', CAST('{tomorrow}' AS TIMESTAMP) - INTERVAL 2 DAY)")
    result = lake.sql("CALL system.rollback_to_timestamp('t', now() + INTERVAL 1 DAY)")
    assert result.fetchall() == [(t[1], t[1])]


def test_publish_staged_delete_and_update(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("SET wharf.wap_id = 'fix'")
    lake.sql("DELETE FROM t WHERE id = 1")
    lake.sql("RESET wharf.wap_id")
    lake.sql("INSERT INTO t VALUES (4, 'v4')")  # main moves on before publishing
    assert _ids(lake, "SELECT id FROM t") == [1, 2, 3, 4]
    lake.sql("CALL system.publish_changes('t', 'fix')")
    assert _ids(lake, "SELECT id FROM t") == [2, 3, 4]
    summary = dict(lake.sql(f"SELECT summary FROM t.snapshots WHERE snapshot_id = {_head(lake)}").scalar())
    assert summary["published-wap-id"] == "fix"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_call_works_in_every_dialect(lake: wharf.Lakehouse, t: list[int], dialect: str) -> None:
    result = lake.sql(f"CALL system.rollback_to_snapshot(table => 'default.t', snapshot_id => {t[1]})", dialect=dialect)
    assert result.fetchall() == [(t[2], t[1])]
    expired = lake.sql("CALL system.expire_snapshots('t', TIMESTAMP '2999-01-01 00:00:00', 1)", dialect=dialect)
    # t[0] is an ancestor beyond retain_last; t[2], rolled back, is referenced by no ref
    assert expired.fetchone()[-1] == 2
    assert _snapshot_ids(lake) == [t[1]]
