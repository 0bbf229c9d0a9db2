"""Write-audit-publish and dead-letter writes: the sensor-readings scenario end to end."""

from __future__ import annotations

import pytest

import wharf
from tests.quality.sensors import BAD, GOOD, MIXED, RANGE_RULE, RULESET, TABLE, main_head, sensors, temperatures
from wharf.errors import ConflictError
from wharf.quality import batch_writes
from wharf.quality.quarantine import BATCH_PROPERTY

__all__ = ["sensors"]  # the fixture, imported for pytest


def _results(lake: wharf.Lakehouse, batch_id: str) -> list[tuple]:
    return lake.sql(
        "SELECT step, snapshot_id, rule, outcome, main_before, main_after, published_rows, quarantined_rows "
        "FROM system.quality_results WHERE batch_id = ? ORDER BY evaluated_at, rule NULLS LAST",
        [batch_id],
    ).fetchall()


def test_quarantine_publishes_valid_readings_and_quarantines_the_impossible_ones(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    before = main_head(lake)
    result = lake.quality.write_audit_publish(TABLE, MIXED, RULESET, on_failure="quarantine")

    assert result.outcome == "quarantined" and result.published
    assert (result.published_rows, result.quarantined_rows) == (2, 2)
    # main holds the two earlier readings and the two valid new ones, nothing else
    assert temperatures(lake) == [12.5, 19.5, 21.0, 22.0]
    assert main_head(lake) == result.main_after == result.audit_snapshot_id
    assert result.main_before == before
    # the impossible readings are in quarantine, with the rule they broke and the batch they came in
    quarantined = lake.sql(
        "SELECT room, temperature, DataQualityRulesFail, DataQualityEvaluationResult, wharf_batch_id, wharf_ruleset "
        "FROM iot.readings__quarantine ORDER BY temperature"
    ).fetchall()
    assert quarantined == [
        ("attic", -40.0, [RANGE_RULE], "Failed", result.batch_id, RULESET),
        ("hall", 999.0, [RANGE_RULE], "Failed", result.batch_id, RULESET),
    ]

    # every snapshot id is accounted for: main's history, the kept staging branch, quality_results
    table = lake.table(TABLE).iceberg
    snapshots = {s.snapshot_id for s in table.metadata.snapshots}
    main_history = {r[0] for r in lake.sql(f"SELECT snapshot_id FROM {TABLE}.history").fetchall()}
    main_ancestry = {r[0] for r in lake.sql(f"SELECT snapshot_id FROM {TABLE}.snapshots").fetchall()} & main_history
    branches = {ref.snapshot_id for name, ref in table.metadata.refs.items() if name != "main"}
    recorded = {r[1] for r in _results(lake, result.batch_id) if r[1] is not None}
    assert snapshots == main_ancestry | branches
    assert result.staged_snapshot_id in branches and result.staged_snapshot_id in recorded
    assert result.audit_snapshot_id in main_ancestry and result.audit_snapshot_id in recorded
    assert result.branches_kept == [result.staging_branch]  # the audit branch is main now: dropped
    assert result.audit_branch not in table.metadata.refs
    # both written snapshots carry the batch id in their summary
    for snapshot_id in (result.staged_snapshot_id, result.audit_snapshot_id):
        summary = table.metadata.snapshot_by_id(snapshot_id).summary
        assert summary.additional_properties[BATCH_PROPERTY] == result.batch_id

    rows = _results(lake, result.batch_id)
    steps = [r[0] for r in rows]
    assert steps.count("stage") == 4 and steps.count("rows") == 4 and steps.count("audit") == 4  # 3 rules + run row
    stage_range = next(r for r in rows if r[0] == "stage" and r[2] == RANGE_RULE)
    audit_range = next(r for r in rows if r[0] == "audit" and r[2] == RANGE_RULE)
    assert (stage_range[1], stage_range[3]) == (result.staged_snapshot_id, "Failed")
    assert (audit_range[1], audit_range[3]) == (result.audit_snapshot_id, "Passed")
    assert rows[-1] == ("publish", result.audit_snapshot_id, None, "quarantined", before, result.audit_snapshot_id, 2, 2)


def test_reject_leaves_main_unchanged_and_says_why(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    before = main_head(lake)
    result = lake.quality.write_audit_publish(TABLE, MIXED, RULESET)  # on_failure="reject"

    assert result.outcome == "rejected" and not result.published
    assert main_head(lake) == before == result.main_after
    assert temperatures(lake) == [19.5, 21.0]
    assert RANGE_RULE in result.message and result.report is not None
    assert [r.rule for r in result.report.failed_rules()] == [RANGE_RULE]
    # the rejected batch stays on its staging branch for inspection, and nothing was quarantined
    staged = lake.sql(f"SELECT count(*) FROM {TABLE}.branch_{result.staging_branch}").scalar()
    assert staged == 6
    assert not lake.catalog.table_exists(("iot", "readings__quarantine"))
    assert _results(lake, result.batch_id)[-1][3] == "rejected"


def test_passing_batch_is_published_by_fast_forward(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    before = main_head(lake)
    result = lake.quality.write_audit_publish(
        TABLE, "SELECT 'kitchen' AS room, TIMESTAMP '2025-03-02 09:00' AS time, 23.0 AS temperature, 50.0 AS humidity", RULESET
    )
    assert result.outcome == "published" and result.published_rows == 1
    assert main_head(lake) == result.staged_snapshot_id == result.main_after
    parent = lake.table(TABLE).iceberg.metadata.snapshot_by_id(result.staged_snapshot_id).parent_snapshot_id
    assert parent == before  # a fast-forward: main's new head is the staged snapshot itself
    assert result.staging_branch not in lake.table(TABLE).iceberg.metadata.refs  # published: its branch is gone
    assert temperatures(lake) == [19.5, 21.0, 23.0]


def test_named_staging_branch_is_reset_to_main_for_each_batch(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    first = lake.quality.write_audit_publish(TABLE, BAD, RULESET, staging_branch="stg")
    assert first.outcome == "rejected"
    second = lake.quality.write_audit_publish(TABLE, GOOD, RULESET, staging_branch="stg")
    assert second.outcome == "published"
    assert 85.0 not in temperatures(lake)  # the rejected reading never reaches main through the reused branch
    assert lake.table(TABLE).iceberg.metadata.refs["stg"].snapshot_id == main_head(lake)


def test_dataset_rule_failing_without_failing_rows_rejects_in_quarantine_mode(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    before = main_head(lake)
    result = lake.quality.write_audit_publish(TABLE, GOOD, "Rules = [ RowCount < 3 ]", on_failure="quarantine")
    assert result.outcome == "rejected" and "dataset-level" in result.message
    assert main_head(lake) == before


def test_publish_fails_with_conflict_when_main_moved(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    base = main_head(lake)
    batch_writes.position_branch(lake, TABLE, "stg", base)
    staged = batch_writes.append(lake, TABLE, GOOD, branch="stg", batch_id="b1", ruleset=RULESET, what="test")
    lake.table(TABLE).append(GOOD)  # another writer moves main
    moved = main_head(lake)
    with pytest.raises(ConflictError) as caught:
        batch_writes.publish(lake, TABLE, base, staged, batch_id="b1")
    assert caught.value.conflicting_snapshot_id == moved
    assert main_head(lake) == moved  # nothing was published


def _concurrent_writer(lake: wharf.Lakehouse, times: int) -> list[int]:
    """After each WAP staging commit (up to ``times``), another writer appends a good reading to main."""
    done: list[int] = []
    other = lake.session()

    def interfere(event: wharf.events.StatementEvent) -> None:
        if event.statement.startswith("-- write-audit-publish: stage") and event.outcome == "ok" and len(done) < times:
            done.append(1)
            other.sql(f"INSERT INTO {TABLE} VALUES ('porch', TIMESTAMP '2025-03-03 10:00', 5.0, 80.0)")

    lake.events.subscribe("on_statement", interfere)
    return done


def test_concurrent_publisher_makes_the_batch_audit_again_on_the_new_main(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    moved = _concurrent_writer(lake, times=1)
    result = lake.quality.write_audit_publish(TABLE, MIXED, RULESET, on_failure="quarantine")
    assert moved == [1] and result.attempts == 2
    assert result.outcome == "quarantined"
    assert temperatures(lake) == [5.0, 12.5, 19.5, 21.0, 22.0]  # the concurrent reading survived
    outcomes = [r[3] for r in _results(lake, result.batch_id) if r[0] == "publish"]
    assert outcomes == ["conflict", "quarantined"]
    assert lake.sql("SELECT count(*) FROM iot.readings__quarantine").scalar() == 2  # quarantined once


def test_concurrent_publisher_beyond_the_retries_raises_conflict_and_publishes_nothing(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    _concurrent_writer(lake, times=2)
    with pytest.raises(ConflictError):
        lake.quality.write_audit_publish(TABLE, GOOD, RULESET, max_attempts=2)
    assert temperatures(lake) == [5.0, 5.0, 19.5, 21.0]  # only the other writer's rows


def test_dead_letter_write_splits_rows_and_matches_the_pair_by_batch_id(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    result = lake.quality.write_with_dlq(TABLE, MIXED, RULESET)
    assert (result.written_rows, result.quarantined_rows) == (2, 2)
    assert temperatures(lake) == [12.5, 19.5, 21.0, 22.0]
    assert temperatures(lake, "iot.readings__quarantine") == [-40.0, 999.0]
    main_batch = lake.sql(
        f"SELECT summary['{BATCH_PROPERTY}'] FROM {TABLE}.snapshots WHERE snapshot_id = ?", [result.snapshot_id]
    ).scalar()
    dlq_batch = lake.sql(
        f"SELECT summary['{BATCH_PROPERTY}'] FROM iot.readings__quarantine.snapshots WHERE snapshot_id = ?",
        [result.quarantine_snapshot_id],
    ).scalar()
    assert main_batch == dlq_batch == result.batch_id
    summary = lake.sql(
        "SELECT kind, published_rows, quarantined_rows FROM system.quality_results WHERE batch_id = ? AND step = 'publish'",
        [result.batch_id],
    ).fetchall()
    assert summary == [("dlq", 2, 2)]


def test_dead_letter_takes_the_quarantined_rows_back_when_main_refuses_the_valid_ones(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    # main is gated by a ruleset the valid rows fail as a dataset (at most 3 rows in the table)
    lake.quality.create_ruleset("small", TABLE, "Rules = [ RowCount <= 3 ]")
    lake.sql(f"ALTER TABLE {TABLE} SET TBLPROPERTIES ('wharf.wap.ruleset' = 'small')")
    with pytest.raises(wharf.errors.CommitRejected):
        lake.quality.write_with_dlq(TABLE, MIXED, RULESET)
    assert temperatures(lake) == [19.5, 21.0]
    assert lake.sql("SELECT count(*) FROM iot.readings__quarantine").scalar() == 0


def test_demo_step_publishes_valid_readings_and_quarantines_the_others(lake: wharf.Lakehouse) -> None:
    from wharf import demo

    step = demo.wap_step(lake)
    outcome = step.queries[1].result.to_arrow().to_pylist()[0]
    assert (outcome["outcome"], outcome["published_rows"], outcome["quarantined_rows"]) == ("quarantined", 2, 2)
    assert step.queries[2].result.fetchall() == [("cellar", 12.5), ("lab", 20.9), ("lab", 21.4)]
    assert [r[:2] for r in step.queries[3].result.fetchall()] == [("attic", -40.0), ("hall", 999.0)]
    assert [r[0] for r in step.queries[4].result.fetchall()] == ["stage", "rows", "audit", "publish"]
    demo.wap_step(lake)  # the step runs again on a lake that already has it
    assert lake.sql("SELECT count(*) FROM iot.readings__quarantine").scalar() == 2


def test_source_may_name_a_table_and_dlq_reports_its_row_level_run(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    lake.create_table("iot.incoming", data=MIXED)
    result = lake.quality.write_with_dlq(TABLE, "iot.incoming", RULESET)
    assert (result.written_rows, result.quarantined_rows) == (2, 2)
    assert result.report is not None and [r.rule for r in result.report.failed_rules()] == [RANGE_RULE]
