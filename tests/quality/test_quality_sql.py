"""Data quality in SQL: ruleset DDL, CALL system.evaluate_data_quality / write_audit_publish, quality_results."""

from __future__ import annotations

import pytest

import wharf
from tests.quality.sensors import RANGE_RULE, RULES, RULESET, TABLE, sensors, temperatures
from wharf.errors import AlreadyExists, DataQualityRuleError, InvalidArgument, NotFound

__all__ = ["sensors"]

BAD_INSERT = f"INSERT INTO {TABLE} VALUES ('lab', TIMESTAMP '2025-03-05 10:00', 85.0, 40.0)"


def test_ruleset_ddl(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT, price DOUBLE)")
    created = lake.sql('CREATE DATA QUALITY RULESET prices ON t AS \'Rules = [ IsComplete "id", ColumnValues "price" > 0 ]\'')
    assert created.scalar() == "Created data quality ruleset prices on default.t"
    with pytest.raises(AlreadyExists):
        lake.sql("CREATE DATA QUALITY RULESET prices ON t AS 'Rules = [ RowCount > 0 ]'")
    assert (
        "already exists"
        in lake.sql("CREATE DATA QUALITY RULESET IF NOT EXISTS prices ON t AS 'Rules = [ RowCount > 0 ]'").scalar()
    )
    lake.sql(
        "CREATE OR REPLACE DATA QUALITY RULESET prices ON default.t AS 'Rules = [ RowCount > 0 ]' "
        "WEBHOOK 'https://alerts.example.com/hook'"
    )
    rows = lake.sql("SHOW DATA QUALITY RULESETS ON t").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("prices", "default.t", "Rules = [ RowCount > 0 ]", "https://alerts.example.com/hook")
    ]
    assert lake.sql("SHOW DATA QUALITY RULESETS").fetchall() == rows
    assert lake.quality.ruleset("PRICES").name == "prices"  # names compare case-insensitively
    lake.sql("DROP DATA QUALITY RULESET prices")
    assert lake.sql("SHOW DATA QUALITY RULESETS").fetchall() == []
    with pytest.raises(NotFound):
        lake.sql("DROP DATA QUALITY RULESET prices")
    assert "does not exist" in lake.sql("DROP DATA QUALITY RULESET IF EXISTS prices").scalar()


def test_ruleset_ddl_errors(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT)")
    with pytest.raises(DataQualityRuleError) as caught:
        lake.sql("CREATE DATA QUALITY RULESET r ON t AS 'Rules = [\n  RowCount > 0,\n  Bogus \"id\"\n]'")
    assert (caught.value.line, caught.value.column) == (3, 3)
    with pytest.raises(NotFound):
        lake.sql("CREATE DATA QUALITY RULESET r ON missing AS 'Rules = [ RowCount > 0 ]'")
    with pytest.raises(InvalidArgument, match="not an http"):
        lake.sql("CREATE DATA QUALITY RULESET r ON t AS 'Rules = [ RowCount > 0 ]' WEBHOOK 'ftp://x'")
    with pytest.raises(wharf.errors.SqlParseError, match="Expected ON"):
        lake.sql("CREATE DATA QUALITY RULESET r AS 'Rules = [ RowCount > 0 ]'")
    assert lake.sql("SHOW DATA QUALITY RULESETS").fetchall() == []


def test_evaluate_data_quality_returns_one_row_per_rule_and_is_recorded(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    lake.sql(BAD_INSERT)
    rows = lake.sql(f"CALL system.evaluate_data_quality(table => '{TABLE}', ruleset_name => '{RULESET}')").to_arrow()
    assert rows.column_names == ["rule", "outcome", "failure_reason", "evaluated_metrics"]
    outcomes = dict(zip(rows.column("rule").to_pylist(), rows.column("outcome").to_pylist(), strict=True))
    assert outcomes == {RANGE_RULE: "Failed", 'IsComplete "room"': "Passed", "RowCount > 0": "Passed"}
    inline = lake.sql(f"CALL system.evaluate_data_quality(table => '{TABLE}', ruleset => 'Rules = [ RowCount = 3 ]')").fetchall()
    assert [(r[0], r[1]) for r in inline] == [("RowCount = 3", "Passed")]
    recorded = lake.sql(
        "SELECT ruleset, table_name, ref, snapshot_id, outcome FROM system.quality_results WHERE rule = ? ORDER BY evaluated_at",
        [RANGE_RULE],
    ).fetchall()
    assert recorded == [(RULESET, TABLE, "main", lake.table(TABLE).current_snapshot_id(), "Failed")]
    assert lake.quality.score(TABLE) == 1.0  # the latest run (the inline one) passed its one rule


def test_evaluate_data_quality_row_level_on_a_branch(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    lake.sql(f"ALTER TABLE {TABLE} CREATE BRANCH stg")
    lake.sql(BAD_INSERT.replace(TABLE, f"{TABLE}.branch_stg"))
    rows = lake.sql(
        f"CALL system.evaluate_data_quality(table => '{TABLE}.branch_stg', ruleset => '{RULES}', row_level => true)"
    ).to_arrow()
    assert {"room", "temperature", "DataQualityRulesFail", "DataQualityEvaluationResult"} <= set(rows.column_names)
    failed = [r for r in rows.to_pylist() if r["DataQualityEvaluationResult"] == "Failed"]
    assert [(r["temperature"], r["DataQualityRulesFail"]) for r in failed] == [(85.0, [RANGE_RULE])]
    stg = lake.table(TABLE).current_snapshot_id("stg")
    assert lake.sql("SELECT DISTINCT ref, snapshot_id FROM system.quality_results").fetchall() == [("stg", stg)]


def test_evaluate_data_quality_argument_errors(sensors: wharf.Lakehouse) -> None:
    with pytest.raises(InvalidArgument, match="exactly one of ruleset"):
        sensors.sql(f"CALL system.evaluate_data_quality(table => '{TABLE}')")
    with pytest.raises(NotFound, match="does not exist"):
        sensors.sql(f"CALL system.evaluate_data_quality(table => '{TABLE}', ruleset_name => 'nope')")
    with pytest.raises(NotFound):
        sensors.sql("CALL system.evaluate_data_quality(table => 'iot.missing', ruleset => 'Rules = [ RowCount > 0 ]')")


def test_write_audit_publish_procedure(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    source = (
        "SELECT * FROM (VALUES ('lab', TIMESTAMP '2025-03-06 10:00', 23.0, 40.0), "
        "('hall', TIMESTAMP '2025-03-06 10:00', 90.0, 40.0)) AS v(room, time, temperature, humidity)"
    )
    escaped = source.replace("'", "''")
    rejected = (
        lake.sql(f"CALL system.write_audit_publish(table => '{TABLE}', source => '{escaped}', ruleset_name => '{RULESET}')")
        .to_arrow()
        .to_pylist()[0]
    )
    assert rejected["outcome"] == "rejected" and rejected["main_after"] == rejected["main_before"]
    assert rejected["failed_rules"] == [RANGE_RULE]
    row = (
        lake.sql(
            f"CALL system.write_audit_publish(table => '{TABLE}', source => '{escaped}', ruleset_name => '{RULESET}', "
            "on_failure => 'quarantine')"
        )
        .to_arrow()
        .to_pylist()[0]
    )
    assert (row["outcome"], row["published_rows"], row["quarantined_rows"]) == ("quarantined", 1, 1)
    assert temperatures(lake) == [19.5, 21.0, 23.0]
    assert temperatures(lake, "iot.readings__quarantine") == [90.0]
    with pytest.raises(InvalidArgument, match="on_failure"):
        lake.sql(
            f"CALL system.write_audit_publish(table => '{TABLE}', source => '{escaped}', ruleset => '{RULES}', "
            "on_failure => 'drop')"
        )


def test_dynamic_rules_read_the_stored_history(sensors: wharf.Lakehouse) -> None:
    lake = sensors
    lake.quality.create_ruleset("steady", TABLE, "Rules = [ RowCount >= avg(last(3)) ]")
    first = lake.quality.evaluate(TABLE, "steady")  # no history yet: nothing to compare with
    assert first.passed
    assert lake.quality.evaluate(TABLE, "steady").passed  # 2 rows vs the history [2]
    lake.sql(f"DELETE FROM {TABLE} WHERE room = 'hall'")
    shrunk = lake.quality.evaluate(TABLE, "steady")
    assert not shrunk.passed  # 1 row vs avg of [2, 2]
