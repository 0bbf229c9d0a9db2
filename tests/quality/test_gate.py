"""The ``wharf.wap.ruleset`` commit gate: every write to main of a gated table passes the ruleset."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.catalog import load_catalog

import wharf
from tests.quality.sensors import BAD, GOOD, RANGE_RULE, RULESET, TABLE, main_head, sensors, temperatures
from wharf.errors import CommitRejected, InvalidArgument

__all__ = ["sensors"]


@pytest.fixture
def gated(sensors: wharf.Lakehouse) -> wharf.Lakehouse:
    sensors.sql(f"ALTER TABLE {TABLE} SET TBLPROPERTIES ('wharf.wap.ruleset' = '{RULESET}')")
    return sensors


def _gate_runs(lake: wharf.Lakehouse) -> list[tuple]:
    return lake.sql(
        "SELECT snapshot_id, outcome FROM system.quality_results WHERE kind = 'gate' AND rule IS NULL ORDER BY evaluated_at"
    ).fetchall()


def _data_files(lake: wharf.Lakehouse) -> set[Path]:
    return set(Path(lake.table(TABLE).location.removeprefix("file://")).rglob("*.parquet"))


def test_sql_insert_is_refused_on_bad_data_and_passes_on_good(gated: wharf.Lakehouse) -> None:
    lake = gated
    before, files = main_head(lake), _data_files(lake)
    with pytest.raises(CommitRejected) as caught:
        lake.sql(f"INSERT INTO {TABLE} VALUES ('lab', TIMESTAMP '2025-03-05 10:00', 85.0, 40.0)")
    assert RANGE_RULE in caught.value.message and caught.value.gate == f"quality:{RULESET}"
    assert main_head(lake) == before and _data_files(lake) == files  # nothing landed, nothing left behind
    lake.sql(f"INSERT INTO {TABLE} VALUES ('lab', TIMESTAMP '2025-03-05 10:00', 25.0, 40.0)")
    assert temperatures(lake) == [19.5, 21.0, 25.0]
    runs = _gate_runs(lake)
    assert [outcome for _sid, outcome in runs] == ["Failed", "Passed"]
    assert runs[-1][0] == main_head(lake)  # the passing run names the snapshot that landed


def test_python_api_writes_pass_the_gate(gated: wharf.Lakehouse) -> None:
    table = gated.table(TABLE)
    with pytest.raises(CommitRejected):
        table.append(BAD)
    with pytest.raises(CommitRejected):
        table.update({"temperature": "temperature + 100"}, where="room = 'lab'")
    table.append(GOOD)
    assert temperatures(gated) == [19.5, 19.5, 21.0, 21.0]


def test_pyiceberg_client_commits_pass_the_gate(gated: wharf.Lakehouse) -> None:
    catalog = load_catalog("lake", **{"py-catalog-impl": "wharf.catalog.LakeCatalog", "lake": str(gated.path)})
    with pytest.raises(CommitRejected):
        catalog.load_table(TABLE).append(BAD)
    catalog.load_table(TABLE).append(GOOD)
    assert temperatures(gated) == [19.5, 19.5, 21.0, 21.0]


def test_branch_writes_are_not_gated_but_publishing_them_is(gated: wharf.Lakehouse) -> None:
    lake = gated
    lake.sql(f"ALTER TABLE {TABLE} CREATE BRANCH dev")
    lake.sql(f"INSERT INTO {TABLE}.branch_dev VALUES ('lab', TIMESTAMP '2025-03-05 10:00', 85.0, 40.0)")
    with pytest.raises(CommitRejected):
        lake.sql(f"CALL system.fast_forward('{TABLE}', 'main', 'dev')")
    assert temperatures(lake) == [19.5, 21.0]


def test_a_snapshot_that_passed_the_ruleset_is_published_without_evaluating_again(gated: wharf.Lakehouse) -> None:
    lake = gated
    result = lake.quality.write_audit_publish(TABLE, GOOD, RULESET)
    assert result.outcome == "published"
    assert _gate_runs(lake) == []  # the audit recorded in quality_results let the fast-forward through


def test_gate_property_must_name_an_existing_ruleset(sensors: wharf.Lakehouse) -> None:
    with pytest.raises(InvalidArgument, match="names data quality ruleset 'nope', which does not exist"):
        sensors.sql(f"ALTER TABLE {TABLE} SET TBLPROPERTIES ('wharf.wap.ruleset' = 'nope')")
    assert "wharf.wap.ruleset" not in sensors.table(TABLE).iceberg.metadata.properties


def test_quarantine_of_a_gated_table_publishes_only_valid_rows(gated: wharf.Lakehouse) -> None:
    from tests.quality.sensors import MIXED

    result = gated.quality.write_audit_publish(TABLE, MIXED, RULESET, on_failure="quarantine")
    assert result.outcome == "quarantined"
    assert temperatures(gated) == [12.5, 19.5, 21.0, 22.0]


def test_create_table_as_with_the_property_is_gated(sensors: wharf.Lakehouse) -> None:
    create = (
        "CREATE TABLE iot.copy TBLPROPERTIES ('wharf.wap.ruleset' = 'sensor_rules') AS "
        "SELECT * FROM iot.readings UNION ALL SELECT 'lab', TIMESTAMP '2025-03-09 10:00', {t}, 40.0"
    )
    with pytest.raises(CommitRejected):
        sensors.sql(create.format(t=99.0))
    assert not sensors.catalog.table_exists(("iot", "copy"))  # CTAS: the table and its data land together or not at all
    sensors.sql(create.format(t=20.0))
    assert temperatures(sensors, "iot.copy") == [19.5, 20.0, 21.0]


def test_gate_rules_run_as_the_committing_principal(gated: wharf.Lakehouse) -> None:
    gated.sql("GRANT ALL PRIVILEGES ON CATALOG TO USER ana")
    ana = gated.session(user="ana")
    ana.sql(f"INSERT INTO {TABLE} VALUES ('lab', TIMESTAMP '2025-03-05 10:00', 25.0, 40.0)")  # a non-owner passes
    with pytest.raises(CommitRejected):
        ana.sql(f"INSERT INTO {TABLE} VALUES ('lab', TIMESTAMP '2025-03-05 11:00', 85.0, 40.0)")
    # A ruleset cannot make the gate read files for a writer who may not: its CustomSql runs as the writer.
    gated.quality.create_ruleset(
        RULESET, TABLE, """Rules = [ CustomSql "SELECT count(*) FROM read_text('/etc/hostname')" > 0 ]""", replace=True
    )
    with pytest.raises(CommitRejected, match="ana may not use the DuckDB table function read_text"):
        ana.sql(f"INSERT INTO {TABLE} VALUES ('lab', TIMESTAMP '2025-03-05 12:00', 20.0, 40.0)")
    assert temperatures(gated) == [19.5, 21.0, 25.0]
