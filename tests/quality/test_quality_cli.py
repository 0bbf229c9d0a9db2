"""``wharf quality check | history | rulesets`` and ``wharf wap``: output and exit status (usable in CI)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

import wharf
from tests.quality.sensors import MIXED, RANGE_RULE, RULES, RULESET, TABLE, sensors, temperatures
from wharf.cli import app

__all__ = ["sensors"]


@pytest.fixture
def cli(sensors: wharf.Lakehouse):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    path = str(sensors.path)

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--lake", path, *args], env={"COLUMNS": None})

    return invoke


def test_check_exits_zero_when_every_rule_passes(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "rules.dqdl"
    rules.write_text(RULES)
    result = cli("quality", "check", TABLE, "--ruleset", str(rules))
    assert result.exit_code == 0, result.output
    assert "PASSED: 3/3 rules passed on iot.readings" in result.output


def test_check_exits_one_when_a_rule_fails_and_shows_the_failing_rows(cli, sensors: wharf.Lakehouse) -> None:  # type: ignore[no-untyped-def]
    sensors.sql(f"INSERT INTO {TABLE} VALUES ('lab', TIMESTAMP '2025-03-05 10:00', 85.0, 40.0)")
    result = cli("quality", "check", TABLE, "--ruleset", RULESET, "--rows", "failed", "--format", "json")
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    rules = {line["rule"]: line["outcome"] for line in lines if "rule" in line}
    assert rules[RANGE_RULE] == "Failed"
    rows = [line for line in lines if "DataQualityEvaluationResult" in line]
    assert [(r["temperature"], r["DataQualityRulesFail"]) for r in rows] == [(85.0, [RANGE_RULE])]


def test_check_csv_and_errors(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("quality", "check", TABLE, "--ruleset", RULESET, "--format", "csv")
    assert result.exit_code == 0 and result.output.startswith('"rule","outcome","failure_reason"')
    missing = cli("quality", "check", TABLE, "--ruleset", "no_such_ruleset")
    assert missing.exit_code == 1 and "neither a stored data quality ruleset nor DQDL text" in missing.output


def test_history_and_rulesets(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("quality", "check", TABLE, "--ruleset", RULESET).exit_code == 0
    history = cli("quality", "history", TABLE)
    assert history.exit_code == 0 and "Quality score of iot.readings: 100%" in history.output
    assert "RowCount > 0" in history.output
    listed = cli("quality", "rulesets")
    assert listed.exit_code == 0 and RULESET in listed.output and TABLE in listed.output


def test_wap_from_a_parquet_file(cli, sensors: wharf.Lakehouse, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    batch = tmp_path / "batch.parquet"
    pq.write_table(MIXED, batch)
    rejected = cli("wap", TABLE, "--from", str(batch), "--ruleset", RULESET)
    assert rejected.exit_code == 1 and "REJECTED" in rejected.output
    assert temperatures(sensors) == [19.5, 21.0]
    quarantined = cli("wap", TABLE, "--from", str(batch), "--ruleset", RULESET, "--on-failure", "quarantine")
    assert quarantined.exit_code == 0, quarantined.output
    assert "QUARANTINED" in quarantined.output
    assert temperatures(sensors) == [12.5, 19.5, 21.0, 22.0]


def test_wap_from_a_query(cli, sensors: wharf.Lakehouse) -> None:  # type: ignore[no-untyped-def]
    query = "SELECT 'lab' AS room, TIMESTAMP '2025-03-07 10:00' AS time, 20.0 AS temperature, 30.0 AS humidity"
    result = cli("wap", TABLE, "--from", query, "--ruleset", RULESET)
    assert result.exit_code == 0 and "PUBLISHED" in result.output
    assert temperatures(sensors) == [19.5, 20.0, 21.0]


def test_sql_writes_from_the_cli_pass_the_gate(cli, sensors: wharf.Lakehouse) -> None:  # type: ignore[no-untyped-def]
    sensors.sql(f"ALTER TABLE {TABLE} SET TBLPROPERTIES ('wharf.wap.ruleset' = '{RULESET}')")
    refused = cli("sql", f"INSERT INTO {TABLE} VALUES ('lab', TIMESTAMP '2025-03-08 10:00', 90.0, 40.0)")
    assert refused.exit_code == 1 and f"Data quality gate '{RULESET}' refused" in refused.output
    accepted = cli("sql", f"INSERT INTO {TABLE} VALUES ('lab', TIMESTAMP '2025-03-08 10:00', 24.0, 40.0)")
    assert accepted.exit_code == 0, accepted.output
    assert temperatures(sensors) == [19.5, 21.0, 24.0]
