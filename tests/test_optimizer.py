"""The automatic optimizer: policy, triggers, passes, the maintenance log, back-off, the CLI, a short soak."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import wharf
from wharf.cli import app
from wharf.errors import AccessDenied, ConflictError, InvalidArgument
from wharf.optimizer import Optimizer, Policy, TableState, TableStats, decide, optimize_table
from wharf.optimizer import runner as runner_module
from wharf.optimizer.decide import COMPACT, EXPIRE, ORPHANS, backoff_s, measure
from wharf.tables.commit import private
from wharf.tables.optimizer_policy import check_properties

MOR = "'write.merge.mode'='merge-on-read', 'write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read'"
ENABLED = "'wharf.optimizer.enabled'='true', 'wharf.optimizer.compaction.min-input-files'='5'"


def small_appends(lake: wharf.Lakehouse, table: str, count: int, rows: int = 10, start: int = 0) -> None:
    for i in range(start, start + count):
        lake.sql(f"INSERT INTO {table} SELECT x, 'v' || x FROM range({i * rows}, {(i + 1) * rows}) r(x)")


def data_files(lake: wharf.Lakehouse, table: str) -> int:
    return int(lake.sql(f"SELECT count(*) FROM {table}.files WHERE content = 0").scalar())


@pytest.fixture
def db(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE SCHEMA db")
    return lake


# --- policy -------------------------------------------------------------------------------------


def test_policy_defaults_are_glue_and_iceberg_like() -> None:
    policy = Policy.from_properties({})
    assert not policy.enabled
    assert (policy.min_input_files, policy.small_file_ratio, policy.target_size) == (100, 0.75, 512 * 1024 * 1024)
    assert (policy.retention_days, policy.retain_last, policy.orphan_retention_days) == (5.0, 1, 3.0)
    assert policy.small_file_bytes == 384 * 1024 * 1024


def test_table_properties_override_namespace_properties() -> None:
    policy = Policy.from_properties(
        {"wharf.optimizer.compaction.min-input-files": "7", "write.target-file-size-bytes": "1000"},
        [("db", {"wharf.optimizer.enabled": "true", "wharf.optimizer.compaction.min-input-files": "50"})],
    )
    assert policy.enabled and policy.min_input_files == 7 and policy.target_size == 1000
    assert policy.origins == {
        "wharf.optimizer.enabled": "namespace db",
        "wharf.optimizer.compaction.min-input-files": "table",
    }


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("wharf.optimizer.enabeld", "true", "Unknown optimizer property"),
        ("wharf.optimizer.enabled", "yes", "must be 'true' or 'false'"),
        ("wharf.optimizer.compaction.min-input-files", "0", "at least 1"),
        ("wharf.optimizer.compaction.small-file-ratio", "1.5", "at most 1"),
        ("wharf.optimizer.expiry.retention-days", "soon", "must be a number"),
        ("wharf.optimizer.orphans.retention-days", "0", "more than 0"),
        ("wharf.optimizer.compaction.strategy", "zorder", "one of binpack, sort"),
    ],
)
def test_bad_policy_values_name_the_property(key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        check_properties({key: value, "other.property": "anything"})
    assert key in info.value.message


def test_sql_validates_optimizer_properties_and_sets_namespace_ones(db: wharf.Lakehouse) -> None:
    db.sql("CREATE TABLE db.t (id BIGINT)")
    with pytest.raises(InvalidArgument, match="wharf.optimizer.enabled"):
        db.sql("ALTER TABLE db.t SET TBLPROPERTIES ('wharf.optimizer.enabled'='on')")
    with pytest.raises(InvalidArgument, match="Unknown optimizer property"):
        db.sql("CREATE TABLE db.u (id BIGINT) TBLPROPERTIES ('wharf.optimizer.intervall'='1')")
    db.sql("ALTER NAMESPACE db SET PROPERTIES ('wharf.optimizer.enabled'='true', 'comment'='sales')")
    rows = dict(db.sql("DESCRIBE NAMESPACE EXTENDED db").fetchall())
    assert rows["Comment"] == "sales" and "(wharf.optimizer.enabled,true)" in rows["Properties"]
    assert Optimizer(db).policy("db.t").enabled
    db.sql("ALTER TABLE db.t SET TBLPROPERTIES ('wharf.optimizer.enabled'='false')")
    assert not Optimizer(db).policy("db.t").enabled
    db.sql("ALTER SCHEMA db UNSET PROPERTIES ('wharf.optimizer.enabled')")
    with pytest.raises(InvalidArgument, match="retain-last"):
        db.sql("ALTER DATABASE db SET DBPROPERTIES ('wharf.optimizer.expiry.retain-last'='-1')")


# --- decisions ----------------------------------------------------------------------------------

ON = Policy.from_properties({"wharf.optimizer.enabled": "true"})


def decision_for(stats: TableStats, policy: Policy = ON, state: TableState | None = None, now: float = 1e9):  # type: ignore[no-untyped-def]
    return decide("db.t", policy, state or TableState(last_orphans=now), now, lambda: stats)


def test_compaction_triggers_like_glue() -> None:
    assert decision_for(TableStats(data_files=100, small_files=100)).skipped == "nothing to do"  # more than 100
    compact = decision_for(TableStats(data_files=101, small_files=101)).actions
    assert [a.kind for a in compact] == [COMPACT] and "101 small data files" in compact[0].reason
    deletes = decision_for(TableStats(data_files=3, delete_files=30, files_past_delete_thresholds=2)).actions
    assert [a.kind for a in deletes] == [COMPACT] and "2 data file(s) with >= 10 delete files" in deletes[0].reason
    off = Policy.from_properties({"wharf.optimizer.enabled": "true", "wharf.optimizer.compaction.enabled": "false"})
    assert decision_for(TableStats(small_files=500), off).skipped == "nothing to do"


def test_gates_expiry_and_orphan_decisions() -> None:
    now = 1e9
    stats = TableStats(expirable_snapshots=3)
    assert "not enabled" in (decision_for(stats, Policy()).skipped or "")
    recent = TableState(last_run=now - 60, last_orphans=now)
    assert "min interval 5m" in (decide("db.t", ON, recent, now, lambda: stats).skipped or "")
    backing = TableState(last_run=now - 600, consecutive_failures=2, retry_after=now + 10)
    assert "backing off after 2 failed run(s)" in (decide("db.t", ON, backing, now, lambda: stats).skipped or "")
    kinds = [a.kind for a in decide("db.t", ON, TableState(last_run=now - 600), now, lambda: stats).actions]
    assert kinds == [EXPIRE, ORPHANS]  # never looked for orphans: now
    day_ago = TableState(last_orphans=now - 86_400)
    assert [a.kind for a in decide("db.t", ON, day_ago, now, lambda: TableStats()).actions] == [ORPHANS]
    hour_ago = TableState(last_orphans=now - 3600)
    assert decide("db.t", ON, hour_ago, now, lambda: TableStats()).skipped == "nothing to do"


def test_backoff_doubles_from_the_interval_up_to_a_day() -> None:
    assert [backoff_s(ON, n) for n in range(4)] == [0, 300, 600, 1200]
    fast = Policy.from_properties({"wharf.optimizer.min-interval-minutes": "0"})
    assert backoff_s(fast, 1) == 60 and backoff_s(fast, 40) == 86_400


def test_measure_counts_combinable_small_files_and_burdened_files(db: wharf.Lakehouse) -> None:
    db.sql(f"CREATE TABLE db.p (id BIGINT, v VARCHAR, part INT) PARTITIONED BY (part) TBLPROPERTIES ({MOR})")
    for i in range(3):
        db.sql(f"INSERT INTO db.p VALUES ({i}, 'a', 1), ({i + 10}, 'b', 1)")
    db.sql("INSERT INTO db.p VALUES (100, 'c', 2)")  # a partition with one small file: nothing to combine
    db.sql("DELETE FROM db.p WHERE id = 0")
    db.sql("DELETE FROM db.p WHERE id = 10")
    table = db.table("db.p").iceberg
    stats = measure(table, Policy.from_properties({"wharf.optimizer.compaction.delete-file-threshold": "2"}))
    assert (stats.data_files, stats.small_files, stats.delete_files) == (4, 3, 2)
    assert stats.files_past_delete_thresholds == 1  # the file holding ids 0 and 10 (two delete files, all rows)


# --- passes -------------------------------------------------------------------------------------


def test_a_pass_compacts_logs_and_leaves_disabled_tables_alone(db: wharf.Lakehouse) -> None:
    db.sql(f"CREATE TABLE db.t (id BIGINT, v VARCHAR) TBLPROPERTIES ({ENABLED})")
    db.sql("CREATE TABLE db.off (id BIGINT, v VARCHAR)")
    small_appends(db, "db.t", 8)
    small_appends(db, "db.off", 8)
    untouched = db.table("db.off").current_snapshot_id()
    report = Optimizer(db).run_once()
    by_table = {d.table: d for d in report.decisions}
    assert [a.kind for a in by_table["db.t"].actions] == [COMPACT, ORPHANS]
    assert "not enabled" in (by_table["db.off"].skipped or "")
    assert data_files(db, "db.t") == 1 and db.table("db.t").count() == 80
    assert db.table("db.off").current_snapshot_id() == untouched
    rows = db.sql(
        "SELECT action, outcome, data_files_before, data_files_after, rewritten_files, consecutive_failures "
        "FROM system.maintenance_log WHERE table_name = 'db.t' ORDER BY started_at"
    ).fetchall()
    assert rows == [("compact", "ok", 8, 1, 8, 0), ("remove_orphan_files", "ok", None, None, None, 0)]
    assert db.sql("SELECT count(*) FROM system.maintenance_log.snapshots").scalar() >= 1  # not DuckDB's system catalog
    # A governed principal reads the log once granted (it is a lake table, not DuckDB's system schema).
    ops = db.session(user="ops")
    with pytest.raises(AccessDenied) as refused:
        ops.sql("SELECT count(*) FROM system.maintenance_log")
    assert "DuckDB's own schema" not in str(refused.value)  # governance refused it: no grant yet
    db.sql("GRANT SELECT ON TABLE system.maintenance_log TO USER ops")
    assert ops.sql("SELECT count(*) FROM system.maintenance_log WHERE table_name = 'db.t'").scalar() == 2
    with pytest.raises(AccessDenied, match="DuckDB's own schema"):
        ops.sql("SELECT * FROM information_schema.tables")
    snapshot = db.table("db.t").iceberg.metadata.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert "rewrite_data_files" in snapshot.summary.additional_properties.get("wharf.statement", "")
    # The next pass respects the minimum interval (read back from the log by a new optimizer).
    again = {d.table: d for d in Optimizer(db).run_once().decisions}
    assert "min interval" in (again["db.t"].skipped or "")


def test_a_pass_absorbs_merge_on_read_deletes(db: wharf.Lakehouse) -> None:
    props = f"{MOR}, 'wharf.optimizer.enabled'='true', 'wharf.optimizer.compaction.delete-file-threshold'='2'"
    db.sql(f"CREATE TABLE db.t (id BIGINT, v VARCHAR) TBLPROPERTIES ({props})")
    db.sql("INSERT INTO db.t SELECT x, 'v' FROM range(100) r(x)")
    for i in range(3):
        db.sql(f"UPDATE db.t SET v = 'u{i}' WHERE id = {i}")
    assert int(db.sql("SELECT count(*) FROM db.t.files WHERE content = 1").scalar()) == 3
    report = Optimizer(db).run_once()
    assert [e.action for e in report.entries if e.table_name == "db.t"] == [COMPACT, ORPHANS]
    assert int(db.sql("SELECT count(*) FROM db.t.files WHERE content = 1").scalar()) == 0
    assert db.sql("SELECT count(*), count(DISTINCT id), max(v) FROM db.t").fetchall() == [(100, 100, "v")]


def test_a_pass_expires_snapshots_and_deletes_orphans(db: wharf.Lakehouse) -> None:
    props = (
        "'wharf.optimizer.enabled'='true', 'wharf.optimizer.compaction.enabled'='false', "
        "'wharf.optimizer.expiry.retention-days'='0', 'wharf.optimizer.expiry.retain-last'='2'"
    )
    db.sql(f"CREATE TABLE db.t (id BIGINT, v VARCHAR) TBLPROPERTIES ({props})")
    small_appends(db, "db.t", 5)
    orphan = Path(db.table("db.t").location.removeprefix("file://")) / "data" / "leftover.parquet"
    orphan.write_bytes(b"not referenced")
    old = time.time() - 4 * 86_400
    os.utime(orphan, (old, old))
    time.sleep(0.01)  # snapshots strictly older than the pass's cut-off
    entries = {e.action: e for e in Optimizer(db).run_once().entries if e.table_name == "db.t"}
    assert entries[EXPIRE].outcome == "ok" and entries[EXPIRE].expired_snapshots == 3
    assert entries[ORPHANS].deleted_files == 1 and not orphan.exists()
    assert len(db.table("db.t").iceberg.metadata.snapshots) == 2 and db.table("db.t").count() == 50


def test_a_conflict_is_skipped_not_a_failure(db: wharf.Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    db.sql(f"CREATE TABLE db.t (id BIGINT, v VARCHAR) TBLPROPERTIES ({ENABLED}, 'wharf.optimizer.min-interval-minutes'='0')")
    small_appends(db, "db.t", 6)

    def conflicting(*args: object, **kwargs: object) -> None:
        raise ConflictError("db.t changed concurrently")

    monkeypatch.setattr(runner_module, "optimize_table", conflicting)
    entries = Optimizer(db).run_once().entries
    compact = next(e for e in entries if e.action == COMPACT)
    assert compact.outcome == "skipped" and (compact.message or "").startswith("conflict:")
    assert compact.consecutive_failures == 0 and compact.retry_after is None
    monkeypatch.undo()
    later = Optimizer(db, tables=["db.t"]).run_once()  # no back-off: compacts on the next pass
    assert [e.outcome for e in later.entries if e.action == COMPACT] == ["ok"]


def test_failures_back_off_exponentially_across_processes(db: wharf.Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    props = (
        f"{ENABLED}, 'wharf.optimizer.min-interval-minutes'='0', "
        "'wharf.optimizer.orphans.enabled'='false', 'wharf.optimizer.expiry.enabled'='false'"
    )
    db.sql(f"CREATE TABLE db.t (id BIGINT, v VARCHAR) TBLPROPERTIES ({props})")
    small_appends(db, "db.t", 6)
    calls = []

    def broken(*args: object, **kwargs: object) -> None:
        calls.append(1)
        raise OSError("disk full")

    monkeypatch.setattr(runner_module, "optimize_table", broken)
    t0 = time.time()
    now = [t0]

    def pass_at(t: float) -> runner_module.PassReport:
        now[0] = t
        return Optimizer(db, tables=["db.t"], clock=lambda: now[0]).run_once()  # a new optimizer: state from the log

    first = pass_at(t0).entries
    assert [(e.outcome, e.consecutive_failures) for e in first] == [("failed", 1)]
    assert first[0].retry_after == pytest.approx(t0 + 60) and "OSError: disk full" in (first[0].message or "")
    waiting = pass_at(t0 + 30)
    assert not waiting.entries and "backing off after 1 failed run(s)" in (waiting.decisions[0].skipped or "")
    second = pass_at(t0 + 61).entries
    assert [(e.outcome, e.consecutive_failures) for e in second] == [("failed", 2)]
    assert second[0].retry_after == pytest.approx(t0 + 61 + 120)
    assert not pass_at(t0 + 150).entries and len(calls) == 2
    monkeypatch.undo()
    healed = pass_at(t0 + 200).entries
    assert [(e.outcome, e.consecutive_failures) for e in healed] == [("ok", 0)]
    failures = db.sql("SELECT count(*) FROM system.maintenance_log WHERE outcome = 'failed'").scalar()
    assert failures == 2


def test_properties_set_behind_wharfs_back_are_a_logged_failure(db: wharf.Lakehouse) -> None:
    db.sql("CREATE TABLE db.t (id BIGINT)")
    table = db.table("db.t").iceberg
    with private(table).transaction() as tx:  # another engine, through the catalog, without Wharf's checks
        tx.set_properties({"wharf.optimizer.enabled": "maybe"})
    entries = Optimizer(db).run_once().entries
    assert [(e.table_name, e.action, e.outcome) for e in entries] == [("db.t", "policy", "failed")]
    assert "wharf.optimizer.enabled" in (entries[0].message or "")


def test_serve_runs_passes_until_stopped(db: wharf.Lakehouse) -> None:
    db.sql(f"CREATE TABLE db.t (id BIGINT, v VARCHAR) TBLPROPERTIES ({ENABLED})")
    small_appends(db, "db.t", 6)
    optimizer = Optimizer(db)
    reports: list[runner_module.PassReport] = []
    thread = threading.Thread(target=optimizer.serve, args=(0.05,), kwargs={"on_pass": reports.append})
    thread.start()
    deadline = time.monotonic() + 30
    while len(reports) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    optimizer.stop()
    thread.join(10)
    assert not thread.is_alive() and len(reports) >= 2
    assert data_files(db, "db.t") == 1
    assert optimizer.serve(0.05, max_passes=1) == 0  # already stopped: no pass


def test_optimize_table_reports_progress(db: wharf.Lakehouse) -> None:
    db.sql("CREATE TABLE db.t (id BIGINT, v VARCHAR)")
    small_appends(db, "db.t", 6)
    seen: list[tuple[int, int]] = []
    result = optimize_table(db, "db.t", options={"min-input-files": "2"}, progress=lambda d, t: seen.append((d, t)))
    assert result.rewritten_data_files_count == 6 and result.added_data_files_count == 1
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] == result.rewritten_bytes_count


# --- CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    path = tmp_path / "lake"
    with wharf.connect(path) as lake:
        lake.sql("CREATE SCHEMA db")
        lake.sql(f"CREATE TABLE db.t (id BIGINT, v VARCHAR) TBLPROPERTIES ({MOR})")
        small_appends(lake, "db.t", 6)
        lake.sql("DELETE FROM db.t WHERE id = 3")

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["--lake", str(path), *args], env={"COLUMNS": None})

    return invoke


def test_cli_optimize_prints_a_summary_and_logs(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("optimize", "db.t", "--option", "min-input-files=2", "--expire", "--orphans")
    assert result.exit_code == 0, result.output
    assert "db.t: 6 data files, 1 delete files before" in result.stdout
    assert "rewrote 6 data files" in result.stdout and "6 → 1" in result.stdout
    assert "expire_snapshots" in result.stdout and "deleted 0 orphan files" in result.stdout
    logged = cli("sql", "SELECT action, outcome FROM system.maintenance_log ORDER BY started_at", "--format", "csv")
    assert logged.stdout.replace('"', "").splitlines() == [
        "action,outcome",
        "compact,ok",
        "expire_snapshots,ok",
        "remove_orphan_files,ok",
    ]
    count = cli("sql", "SELECT count(*) FROM db.t", "--format", "csv")
    assert count.stdout.splitlines()[1] == "59"


def test_cli_optimize_sort_and_where_and_errors(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "optimize", "db.t", "--strategy", "sort", "--sort-order", "id DESC", "--where", "id < 30", "--option", "min-input-files=2"
    )
    assert result.exit_code == 0, result.output
    assert "rewrote 3 data files" in result.stdout
    bad = cli("optimize", "db.t", "--option", "min-input-file=2")
    assert bad.exit_code == 1 and "Unknown rewrite_data_files option" in bad.output and "failed" in bad.stdout
    missing = cli("optimize", "db.nope")
    assert missing.exit_code == 1 and "does not exist" in missing.output
    malformed = cli("optimize", "db.t", "--option", "min-input-files")
    assert malformed.exit_code == 1 and "key=value" in malformed.output


def test_cli_optimizer_run_policy_and_serve(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("sql", "ALTER NAMESPACE db SET PROPERTIES ('wharf.optimizer.enabled'='true')").exit_code == 0
    assert cli("sql", "ALTER TABLE db.t SET TBLPROPERTIES ('wharf.optimizer.compaction.min-input-files'='3')").exit_code == 0
    dry = cli("optimizer", "run", "--dry-run")
    assert dry.exit_code == 0 and "6 small data files" in dry.stdout
    assert cli("sql", "SHOW SCHEMAS", "--format", "csv").stdout.count("system") == 0  # a dry run writes nothing
    ran = cli("optimizer", "run")
    assert ran.exit_code == 0, ran.output
    assert "1 of 1 table(s) maintained, 2 action(s), 0 failed" in ran.stdout
    policy = cli("optimizer", "policy", "db.t")
    assert policy.exit_code == 0
    assert "namespace db" in policy.stdout and "wharf.optimizer.compaction.min-input-files" in policy.stdout
    served = cli("optimizer", "serve", "--interval", "0", "--passes", "2", "--table", "db.t")
    assert served.exit_code == 0 and "stopped after 2 pass(es)" in served.output


# --- soak ---------------------------------------------------------------------------------------


def test_soak_short(tmp_path: Path) -> None:
    """An ingest loop with merge-on-read MERGEs, the optimizer serving, readers counting: ~20 s."""
    from tests.soak import Soak

    result = Soak(tmp_path / "lake", readers=2, optimizer_interval=0.5, min_input_files=8).run(15)
    assert not result.reader_failures, result.reader_failures[:3]
    assert not result.inconsistencies, result.inconsistencies[:3]
    assert not result.writer_failures, result.writer_failures[:3]
    assert result.final_count == result.rows_committed > 0
    assert result.reader_queries > 20 and result.merges > 0
    assert result.optimizer_actions.get("compact", 0) >= 1 and result.optimizer_failed == 0
    # Bounded relative to what ingest produced, not to a fixed count: every batch writes a file, so
    # without compaction the table would hold about `batches` data files; how close the optimizer
    # keeps it to `min_input_files` depends on how fast this machine writes (a fixed 40 failed in CI).
    assert result.max_data_files < result.batches // 2, result.summary()
    assert result.final_data_files < result.batches // 2, result.summary()
