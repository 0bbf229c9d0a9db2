"""Every rule type evaluated on a small table against hand-computed expectations.

The orders table (now = 2026-01-10 12:00 UTC)::

    id  customer_id  status    price  code   created
    1   10           'open'    10.0   'A1'   2026-01-10 00:00
    2   20           'closed'  20.0   'B2'   2026-01-09 12:00
    3   30           NULL      30.0   '  '   2026-01-05 00:00
    4   99           'open'    NULL   ''     NULL
    4   NULL         'void'    40.0   'C33'  2026-01-10 06:00

customers: id 10, 20, 30, 40.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

import wharf
from wharf.errors import DataQualityRuleError, NotFound
from wharf.quality import InMemoryHistory, QualityResult, evaluate, parse

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[wharf.Lakehouse]:
    path: Path = tmp_path_factory.mktemp("quality") / "lake"
    with wharf.connect(path, user="tester") as lh:
        lh.sql("CREATE NAMESPACE db")
        lh.sql("CREATE TABLE db.orders (id INT, customer_id INT, status VARCHAR, price DOUBLE, code VARCHAR, created TIMESTAMP)")
        lh.sql(
            """INSERT INTO db.orders VALUES
            (1, 10, 'open', 10.0, 'A1', TIMESTAMP '2026-01-10 00:00:00'),
            (2, 20, 'closed', 20.0, 'B2', TIMESTAMP '2026-01-09 12:00:00'),
            (3, 30, NULL, 30.0, '  ', TIMESTAMP '2026-01-05 00:00:00'),
            (4, 99, 'open', NULL, '', NULL),
            (4, NULL, 'void', 40.0, 'C33', TIMESTAMP '2026-01-10 06:00:00')"""
        )
        lh.sql("CREATE TABLE db.customers (id INT, name VARCHAR)")
        lh.sql("INSERT INTO db.customers VALUES (10, 'a'), (20, 'b'), (30, 'c'), (40, 'd')")
        yield lh


def run(lake: wharf.Lakehouse, rules: list[str], source: str = "db.orders", **kwargs: object) -> QualityResult:
    text = "Rules = [\n" + ",\n".join(rules) + "\n]"
    return evaluate(lake, source, text, now=NOW, **kwargs)  # type: ignore[arg-type]


def outcomes(lake: wharf.Lakehouse, expected: dict[str, str], **kwargs: object) -> QualityResult:
    """Evaluate all rules at once and compare each outcome; returns the result for more checks."""
    result = run(lake, list(expected), **kwargs)
    got = {r.rule: r.outcome for r in result.rules}
    wrong = {
        rule: (got[str(parse(f"Rules = [ {rule} ]").rules[0])], want)
        for rule, want in expected.items()
        if got[str(parse(f"Rules = [ {rule} ]").rules[0])] != want
    }
    assert not wrong, f"(got, expected): {wrong}\n{result}"
    return result


def metric(result: QualityResult, rule_prefix: str) -> float:
    (found,) = [r for r in result.rules if r.rule.startswith(rule_prefix)]
    (value,) = found.evaluated_metrics.values()
    return value


def test_dataset_metrics(lake: wharf.Lakehouse) -> None:
    result = outcomes(
        lake,
        {
            "RowCount = 5": "Passed",
            "RowCount between 4 and 5": "Failed",  # between is exclusive
            "RowCount between 4 and 6": "Passed",
            "RowCount not between 5 and 9": "Passed",  # 5 is not strictly inside
            "RowCount in [5, 6]": "Passed",
            "RowCount not in [5, 6]": "Failed",
            "RowCount != 5": "Failed",
            "RowCount >= 5": "Passed",
            "RowCount < 5": "Failed",
            "RowCount <= 5": "Passed",
            "RowCount = 2 where \"status = 'open'\"": "Passed",
            "ColumnCount = 6": "Passed",
            'Completeness "status" = 0.8': "Passed",
            'Completeness "price" > 0.8': "Failed",
            'Completeness "price" = 0.5 where "status = \'open\'"': "Passed",
            'IsComplete "id"': "Passed",
            'IsComplete "status"': "Failed",
            'Uniqueness "id" = 0.6': "Passed",
            'IsUnique "id"': "Failed",
            'IsUnique "code"': "Passed",
            'Uniqueness "id" "customer_id" = 1': "Passed",
            'IsPrimaryKey "code"': "Passed",
            'IsPrimaryKey "id" "customer_id"': "Failed",  # a NULL key part
            'DistinctValuesCount "id" = 4': "Passed",
            'UniqueValueRatio "id" = 0.75': "Passed",
            'Entropy "status" between 1.0397 and 1.0398': "Passed",
            'Mean "price" = 25': "Passed",
            'Sum "price" = 100': "Passed",
            'Variance "price" = 125': "Passed",
            'StandardDeviation "price" between 11.18 and 11.19': "Passed",
            'ColumnCorrelation "id" "price" > 0.999': "Passed",
            'Mean "price" > 25 where "id > 1"': "Passed",  # (20 + 30 + 40) / 3
            "DuplicateRowCount = 0": "Passed",
        },
    )
    assert result.metrics["Dataset.*.RowCount"] == 5
    assert result.metrics["Column.id.Uniqueness"] == pytest.approx(0.6)
    assert result.metrics["Column.status.Entropy"] == pytest.approx(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25)))
    assert result.metrics["Column.price.StandardDeviation"] == pytest.approx(math.sqrt(125))
    assert result.metrics["Multicolumn.id,price.ColumnCorrelation"] == pytest.approx(1.0)
    # All of it in two scans: one aggregate pass and one GROUPING SETS pass.
    assert result.scans == 2
    assert len(result.queries) == 2


def test_column_values_and_null_semantics(lake: wharf.Lakehouse) -> None:
    result = outcomes(
        lake,
        {
            'ColumnValues "status" in ["open", "closed"]': "Failed",
            'ColumnValues "status" in ["open", "closed"] with threshold > 0.5': "Passed",
            'ColumnValues "status" in ["open", "closed"] with threshold > 0.6': "Failed",
            'ColumnValues "status" != "void"': "Failed",
            'ColumnValues "status" != "void" with threshold >= 0.8': "Passed",
            'ColumnValues "status" not in ["void"] with threshold = 0.8': "Passed",
            'ColumnValues "status" in ["open", "closed", "void", NULL]': "Passed",
            'ColumnValues "status" = NULL with threshold = 0.2': "Passed",
            'ColumnValues "status" != NULL with threshold = 0.8': "Passed",
            'ColumnValues "code" = EMPTY with threshold = 0.2': "Passed",
            'ColumnValues "code" = WHITESPACES_ONLY with threshold = 0.2': "Passed",
            'ColumnValues "code" in [EMPTY, WHITESPACES_ONLY] with threshold = 0.4': "Passed",
            'ColumnValues "code" matches "[A-Z][0-9]" with threshold = 0.4': "Passed",
            'ColumnValues "code" matches "[A-Z][0-9]+" with threshold = 0.6': "Passed",
            'ColumnValues "code" not matches "[A-Z][0-9]+" with threshold = 0.4': "Passed",
            'ColumnValues "price" between 10 and 40 with threshold = 0.4': "Passed",
            'ColumnValues "price" not between 10 and 40 with threshold = 0.4': "Passed",
            'ColumnValues "price" > 0': "Failed",
            'ColumnValues "price" > 0 with threshold = 0.8': "Passed",
            'ColumnValues "price" in [10, 20, 30, 40, NULL]': "Passed",
            'ColumnValues "price" > 15 where "status = \'open\'"': "Failed",
            'ColumnValues "price" <= 10 where "status = \'open\'" with threshold = 0.5': "Passed",
            'ColumnValues "created" > "2026-01-06" with threshold = 0.6': "Passed",
            'ColumnValues "created" > (now() - 1 days) with threshold = 0.4': "Passed",
            'ColumnValues "created" between "2026-01-01" and now() with threshold = 0.8': "Passed",
        },
    )
    failed = next(r for r in result.rules if r.rule == 'ColumnValues "price" > 0')
    assert failed.failure_reason is not None and "20.00% of rows failed" in failed.failure_reason
    # Several ColumnValues rules on "price": the first gets Glue's metric name, the others add their condition.
    assert failed.evaluated_metrics == {"Column.price.ColumnValues.Compliance[> 0]": pytest.approx(0.8)}


def test_length_freshness_and_types(lake: wharf.Lakehouse) -> None:
    result = outcomes(
        lake,
        {
            'ColumnLength "code" <= 3': "Passed",
            'ColumnLength "code" <= 2': "Failed",  # C33
            'ColumnLength "status" > 0': "Failed",  # NULL counts as length 0
            'ColumnLength "code" between 0 and 4': "Failed",  # '' has length 0: exclusive bounds
            'DataFreshness "created" <= 24 hours': "Failed",  # 2026-01-05 and NULL fail
            'DataFreshness "created" <= 6 days where "id <> 4"': "Passed",
            'DataFreshness "created" <= 12 hours where "id = 1"': "Passed",
            'DataFreshness "created" < 12 hours where "id = 1"': "Failed",
            'ColumnDataType "price" = "DOUBLE"': "Passed",
            'ColumnDataType "price" = "INTEGER"': "Failed",
            'ColumnDataType "id" in ["INTEGER", "LONG"]': "Passed",
            'ColumnDataType "code" = "INTEGER"': "Failed",
            'ColumnDataType "code" = "STRING"': "Passed",
            'ColumnExists "price"': "Passed",
            'ColumnExists "nope"': "Failed",
            'ColumnNamesMatchPattern "[a-z_]+"': "Passed",
            'ColumnNamesMatchPattern "[a-z]+"': "Failed",  # customer_id
        },
    )
    assert metric(result, 'DataFreshness "created" <= 24 hours') == pytest.approx(0.6)
    length = next(r for r in result.rules if r.rule == 'ColumnLength "code" <= 2')
    assert length.evaluated_metrics["Column.code.MaximumLength"] == 3
    assert length.evaluated_metrics["Column.code.MinimumLength"] == 0


def test_data_type_of_string_values(lake: wharf.Lakehouse) -> None:
    lake.register("texts", pa.table({"v": ["1", "22", None, "x"]}))
    result = run(lake, ['ColumnDataType "v" = "INTEGER" with threshold >= 0.75', 'ColumnDataType "v" = "INTEGER"'], "texts")
    assert [r.outcome for r in result.rules] == ["Passed", "Failed"]  # NULL counts as valid, "x" does not cast


def test_other_datasets(lake: wharf.Lakehouse) -> None:
    result = outcomes(
        lake,
        {
            'ReferentialIntegrity "customer_id" "db.customers.id" = 0.75': "Passed",  # 99 missing, NULL ignored
            'ReferentialIntegrity "customer_id" "reference.id" > 0.75': "Failed",
            'ReferentialIntegrity "id" "reference.id" = 0': "Passed",  # same reference, other column: own metric
            'DatasetMatch "changed" "id" "price" = 0.8': "Passed",
            'DatasetMatch "changed" "id->id" = 0.8': "Passed",  # all other common columns compared
            'RowCountMatch "db.customers" = 1.25': "Passed",
            'SchemaMatch "db.orders" = 1': "Passed",
            'SchemaMatch "db.customers" < 0.2': "Passed",  # only id INT matches, 1 of 6
            'AggregateMatch "sum(price)" "sum(db.customers.id)" = 1': "Passed",
            'AggregateMatch "avg(price)" "avg(reference.id)" = 1': "Passed",
            'CustomSql "select count(*) from primary where price > 15" = 3': "Passed",
            'CustomSql "select id from primary where price > 15" with threshold >= 0.6': "Passed",
            'CustomSql "select id from primary where price > 15"': "Failed",
        },
        aliases={"reference": "db.customers", "changed": "SELECT * FROM db.orders WHERE id <> 2"},
    )
    assert result.metrics["Column.reference.id.ReferentialIntegrity"] == pytest.approx(0.75)
    assert result.metrics["Column.reference.id.ReferentialIntegrity#2"] == 0


def test_aliases_from_data_sources(lake: wharf.Lakehouse) -> None:
    text = """DataSources = { "Primary": "orders", "reference": "db.customers" }
    Rules = [ RowCountMatch "reference" = 1.25, ReferentialIntegrity "{customer_id}" "reference.{id}" = 0.75 ]"""
    result = evaluate(lake, "db.orders", text)
    assert result.passed, result


def test_duplicates_on_a_query(lake: wharf.Lakehouse) -> None:
    query = "SELECT * FROM db.orders UNION ALL SELECT * FROM db.orders WHERE id <= 2"
    result = run(lake, ["DuplicateRowCount = 2", "RowCount = 7", 'IsUnique "code"'], query)
    assert [r.outcome for r in result.rules] == ["Passed", "Passed", "Failed"]


def test_composites_dataset_wise_and_row_wise(lake: wharf.Lakehouse) -> None:
    rules = [
        '(IsComplete "id") and (RowCount = 5)',
        '(IsComplete "status") or (RowCount = 5)',
        '(IsComplete "status") and (RowCount = 5)',
        '(RowCount = 1) or ((IsComplete "id") and (Mean "price" = 25))',
        '(ColumnValues "status" = "open") or (ColumnValues "price" > 15)',
    ]
    column = run(lake, rules)
    assert [r.outcome for r in column.rules] == ["Passed", "Passed", "Failed", "Passed", "Failed"]
    assert column.rules[2].failure_reason and "0.8" in column.rules[2].failure_reason
    # Row-wise, every row is open or priced above 15: the last composite passes.
    row = evaluate(
        lake,
        "db.orders",
        'Metadata = { "compositeRuleEvaluation.method": "ROW" }\nRules = [\n' + ",\n".join(rules) + "]",
        now=NOW,
    )
    assert row.rules[4].outcome == "Passed"
    # RowCount has no row-level form: row-wise evaluation of its composites is an error, not a guess.
    assert row.rules[0].outcome == "Error" and "row-level" in (row.rules[0].failure_reason or "")
    both = evaluate(
        lake,
        "db.orders",
        'Metadata = { "compositeRuleEvaluation.method": "ROW" }\n'
        'Rules = [ (ColumnValues "status" = "open") and (ColumnValues "price" > 15) ]',
    )
    assert both.rules[0].outcome == "Failed"  # no row is both
    with pytest.raises(Exception, match="compositeRuleEvaluation.method"):
        evaluate(lake, "db.orders", 'Metadata = { "compositeRuleEvaluation.method": "DIAGONAL" }\nRules = [ RowCount > 0 ]')


def test_dynamic_rules(lake: wharf.Lakehouse) -> None:
    history = InMemoryHistory({"Dataset.*.RowCount": [6.0, 6.0, 6.0, 10.0], "Column.price.Mean": [20.0, 30.0]})
    result = run(
        lake,
        [
            "RowCount > avg(last(3)) * 0.8",  # 5 > 4.8
            "RowCount > avg(last(4)) * 0.8",  # 5 > 5.6 fails
            "RowCount < index(last(4), 3)",  # the 4th newest: 10
            "RowCount = index(last(4), 0) - 1",
            "RowCount between min(last(4)) - 2 and max(last(4))",
            "RowCount <= avg(last(3)) + std(last(3))",  # 6 + 0
            'Mean "price" between min(last(2)) and max(last(2))',  # 25 in (20, 30)
            "RowCount > last()",  # 5 > 6 fails
            "RowCount > index(last(10), 7)",  # not enough history: passes with a note
        ],
        history=history,
    )
    assert [r.outcome for r in result.rules] == [
        "Passed",
        "Failed",
        "Passed",
        "Passed",
        "Passed",
        "Passed",
        "Passed",
        "Failed",
        "Passed",
    ]
    assert "5.6" in (result.rules[1].failure_reason or "")
    assert result.rules[8].note and "needs 8 earlier runs" in result.rules[8].note
    fresh = run(lake, ["RowCount > avg(last(3))"])
    assert fresh.rules[0].outcome == "Passed" and fresh.rules[0].note


def test_detect_anomalies(lake: wharf.Lakehouse) -> None:
    steady = InMemoryHistory({"Dataset.*.RowCount": [100, 101, 99, 100, 102], "Column.price.Mean": [25, 24, 26, 25]})
    result = run(lake, ['DetectAnomalies "RowCount"', 'DetectAnomalies "Mean" "price"'], history=steady)
    assert [r.outcome for r in result.rules] == ["Failed", "Passed"]
    assert "Anomaly detected on Dataset.*.RowCount" in (result.rules[0].failure_reason or "")
    assert result.rules[0].evaluated_metrics["Dataset.*.RowCount.UpperBound"] > 100
    short = run(lake, ['DetectAnomalies "RowCount"'], history=InMemoryHistory({"Dataset.*.RowCount": [100, 100]}))
    assert short.rules[0].outcome == "Passed" and "needs 3 earlier runs" in (short.rules[0].note or "")
    # A history built by recording runs: the same table stays normal.
    recorded = InMemoryHistory()
    for _ in range(4):
        outcome = run(lake, ['DetectAnomalies "RowCount"'], history=recorded)
        recorded.record(outcome.metrics)
    assert outcome.rules[0].outcome == "Passed" and outcome.rules[0].note is None


def test_errors_stay_per_rule(lake: wharf.Lakehouse) -> None:
    result = run(
        lake,
        [
            'Mean "nope" > 1',
            'ColumnValues "price" > 1 where "nope > 1"',
            "FileSize < 1 MB",
            'Mean "status" > 1',  # avg of text
            'CustomSql "select * from primary" > 1',  # not one value
            'ReferentialIntegrity "customer_id" "db.nothere.id" = 1',
            "RowCount = 5",
        ],
    )
    outcomes_ = [r.outcome for r in result.rules]
    assert outcomes_ == ["Error"] * 6 + ["Passed"]
    reasons = [r.failure_reason or "" for r in result.rules]
    assert 'Column "nope" does not exist' in reasons[0]
    assert "Invalid where clause" in reasons[1]
    assert "not applicable to tables" in reasons[2]
    assert "one row with one number" in reasons[4]
    assert not result.passed
    with pytest.raises(DataQualityRuleError):
        evaluate(lake, "db.orders", "Rules = [ RowCount > ]")
    with pytest.raises(NotFound):
        evaluate(lake, "db.missing", "Rules = [ RowCount > 0 ]")


def test_sources_branch_snapshot_registered_query(lake: wharf.Lakehouse) -> None:
    first = lake.sql("SELECT snapshot_id FROM db.customers.snapshots ORDER BY committed_at LIMIT 1").scalar()
    lake.sql("ALTER TABLE db.customers CREATE BRANCH stg")
    lake.sql("INSERT INTO db.customers.branch_stg VALUES (50, 'e')")
    assert evaluate(lake, "db.customers.branch_stg", "Rules = [ RowCount = 5 ]").passed
    assert evaluate(lake, "db.customers", "Rules = [ RowCount = 4 ]").passed
    assert evaluate(lake, f"db.customers FOR VERSION AS OF {first}", "Rules = [ RowCount = 4 ]").passed
    lake.register("frame", pa.table({"x": [1, 2, 3]}))
    assert evaluate(lake, "frame", 'Rules = [ Sum "x" = 6 ]').passed
    assert evaluate(lake, "SELECT x * 2 AS y FROM frame", 'Rules = [ Sum "y" = 12 ]').passed
    assert evaluate(lake, "WITH a AS (SELECT 1 AS z) SELECT * FROM a", 'Rules = [ Mean "z" = 1 ]').passed


def test_row_level_outcomes(lake: wharf.Lakehouse) -> None:
    rules = [
        'IsComplete "status"',
        'ColumnValues "price" > 15',
        "RowCount = 5",
        'ColumnValues "code" matches "[A-Z][0-9]" where "status = \'open\'"',
        'IsUnique "id"',
        '(ColumnValues "status" = "open") or (ColumnValues "price" > 15)',
        'ReferentialIntegrity "customer_id" "db.customers.id" >= 0.7',
    ]
    result = run(lake, rules, row_level=True)
    assert result.row_level_sql is not None
    rows = result.rows().sort_by("price").to_pylist()
    by_code = {r["code"]: r for r in rows}
    first = by_code["A1"]  # open, 10.0, unique id, customer 10
    assert first["DataQualityRulesPass"] == [rules[0], rules[3], rules[4], rules[5], rules[6]]
    assert first["DataQualityRulesFail"] == [rules[1]]
    assert first["DataQualityRulesSkip"] == [rules[2]]
    assert first["DataQualityEvaluationResult"] == "Failed"
    second = by_code["B2"]  # closed 20.0: outside the where of rule 3
    assert second["DataQualityRulesFail"] == []
    assert set(second["DataQualityRulesSkip"]) == {rules[2], rules[3]}
    assert second["DataQualityEvaluationResult"] == "Passed"
    empty = by_code[""]  # id 4 twice, NULL price, customer 99 missing
    assert set(empty["DataQualityRulesFail"]) == {rules[1], rules[3], rules[4], rules[6]}
    assert result.rows("passed").num_rows == 1
    assert result.rows("failed").num_rows == 4
    assert result.rows().num_rows == 5
    # The SQL is runnable by lake.sql as it is (WAP writes from it).
    assert lake.sql(result.row_level_sql).to_arrow().num_rows == 5
    assert list(result.rows().schema.names[-4:]) == [
        "DataQualityRulesPass",
        "DataQualityRulesFail",
        "DataQualityRulesSkip",
        "DataQualityEvaluationResult",
    ]
    with pytest.raises(Exception, match="row_level=True"):
        run(lake, ["RowCount > 0"]).rows()


def test_result_object(lake: wharf.Lakehouse) -> None:
    text = """DefaultLabels = ["team"="core"]
    Rules = [ RowCount = 5 labels=["severity"="high"], Mean "price" > 100 ]
    Analyzers = [ AllStatistics "price", RowCount, Completeness "status" ]"""
    result = evaluate(lake, "db.orders", text)
    assert not result.passed and result.score == 0.5
    assert result.rules[0].labels == {"team": "core", "severity": "high"}
    assert result.rules[1].labels == {"team": "core"}
    table = result.to_arrow()
    assert table.schema.field("evaluated_metrics").type == pa.map_(pa.string(), pa.float64())
    assert table.column("outcome").to_pylist() == ["Passed", "Failed"]
    assert dict(table.column("evaluated_metrics")[1].as_py()) == {"Column.price.Mean": 25.0}
    stats = result.analyzers[0].metrics
    assert stats["Column.price.Minimum"] == 10 and stats["Column.price.Maximum"] == 40
    assert stats["Column.price.Completeness"] == pytest.approx(0.8)
    assert result.analyzers[2].metrics == {"Column.status.Completeness": pytest.approx(0.8)}
    text_repr = repr(result)
    assert "FAILED: 1/2 rules passed" in text_repr and 'Mean "price" > 100' in text_repr
    assert result.as_dict()["rules"][1]["outcome"] == "Failed"
