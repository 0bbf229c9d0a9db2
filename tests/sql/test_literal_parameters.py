"""Queries that differ only in the literals they compare with share one compiled form (``wharf.sql.literals``),
and still give each literal's own answer: pruning, time travel, LIMIT and the recorded text follow the values."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

import wharf
from wharf.sql import statement_cache
from wharf.sql.literals import parametrize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT * FROM t WHERE id = 5", "SELECT * FROM t WHERE id = ?"),
        ("SELECT * FROM t WHERE id = 5 LIMIT 3 OFFSET 2", "SELECT * FROM t WHERE id = ? LIMIT 3 OFFSET 2"),
        ("SELECT * FROM t WHERE v <> 'it''s' AND id >= 2.5", "SELECT * FROM t WHERE v <> ? AND id >= ?"),
        ("SELECT * FROM t WHERE id BETWEEN 7 AND 7 + 5", "SELECT * FROM t WHERE id BETWEEN ? AND ? + 5"),
        ("SELECT * FROM t WHERE 10 > id OR (3 = id)", "SELECT * FROM t WHERE ? > id OR (? = id)"),
        ("SELECT * FROM a JOIN b ON a.id = b.id AND b.k = 'x'", "SELECT * FROM a JOIN b ON a.id = b.id AND b.k = ?"),
        ("SELECT k, count(*) FROM t GROUP BY 1 HAVING count(*) > 2", "SELECT k, count(*) FROM t GROUP BY 1 HAVING count(*) > ?"),
        (
            "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE n < 4)",
            "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE n < ?)",
        ),
        ("WITH c AS (SELECT * FROM t WHERE id = 1) SELECT * FROM c", "WITH c AS (SELECT * FROM t WHERE id = ?) SELECT * FROM c"),
        ("SELECT * FROM t WHERE d > '2024-01-01'::DATE", "SELECT * FROM t WHERE d > ?::DATE"),
        # left as written: no comparison literal in a filter, or a literal whose value compilation uses
        ("SELECT id = 5, 3 FROM t", None),  # select list: an unnamed column is named after its text
        ("SELECT (SELECT max(y) FROM u WHERE u.id = 5), count(*) FILTER (WHERE x = 3) FROM t", None),
        ("SELECT * FROM t WHERE x = 0x1F OR y = 'a' 'b' OR l[1] = [2]", None),
        ("SELECT * FROM t WHERE CAST(x AS INT) = 5 AND l[1] = 1.5e3", "SELECT * FROM t WHERE CAST(x AS INT) = ? AND l[1] = ?"),
        ("SELECT * FROM t LIMIT 5", None),
        ("SELECT * FROM t ORDER BY 2", None),
        ("SELECT * FROM t FOR VERSION AS OF 123 WHERE id IN (1, 2)", None),
        ("SELECT * FROM t FOR TIMESTAMP AS OF '2024-01-01 00:00:00'", None),
        ("SELECT * FROM t WHERE id = -5", None),  # negative numbers are expressions
        ("SELECT * FROM t WHERE d = DATE '2024-01-01' AND f(id, 5) AND x = INTERVAL 1 DAY", None),
        ("SELECT CAST(x AS DECIMAL(10, 2)) FROM t WHERE s = $$x$$", None),
        ("SELECT * FROM t WHERE id = ?", None),  # parameters of its own
        ("SELECT * FROM t WHERE id = 5; SELECT 1", None),  # a script
        ("SELECT * FROM t WHERE id = 5 -- five", None),  # comments stay with the text
        ("SELECT * FROM t QUALIFY row_number() OVER (ORDER BY id) = 1", None),
        ("INSERT INTO t SELECT * FROM u WHERE id = 5", None),  # not a query
    ],
)
def test_which_literals_become_parameters(text: str, expected: str | None) -> None:
    made = parametrize(text)
    assert (made[0] if made is not None else None) == expected


@pytest.fixture
def events(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    """A table partitioned by day (three days, a file each) and the same rows in a plain DuckDB table."""
    lake.sql("CREATE TABLE ev (id BIGINT, day DATE, kind VARCHAR, amount DOUBLE) PARTITIONED BY (day)")
    for d in (1, 2, 3):
        lake.sql(
            f"INSERT INTO ev SELECT range, DATE '2024-01-0{d}', CASE WHEN range % 3 = 0 THEN 'a' ELSE 'b' END, "
            f"range * {d} * 0.5 FROM range({d * 100}, {d * 100 + 30})"
        )
    return lake


QUERIES = [
    "SELECT id, kind FROM ev WHERE day = '{day}' AND id < {n} ORDER BY id",
    "SELECT kind, count(*) AS n, sum(amount) AS s FROM ev WHERE day >= '{day}' GROUP BY kind HAVING count(*) > {n} ORDER BY kind",
    "SELECT e.id, f.id AS fid FROM ev e JOIN ev f ON e.id = f.id - 100 AND f.kind = '{kind}' "
    "WHERE e.day BETWEEN '{day}' AND '2024-01-03' AND e.id > {n} ORDER BY e.id, fid",
    "SELECT id FROM ev WHERE {n} > id - 200 AND kind <> '{kind}' ORDER BY id",
]
VALUES = [
    {"day": "2024-01-01", "n": 110, "kind": "a"},
    {"day": "2024-01-02", "n": 5, "kind": "b"},
    {"day": "2024-01-03", "n": 320, "kind": "a"},
    {"day": "2023-12-31", "n": 0, "kind": "zz"},
]


def test_literal_variants_share_a_compiled_form_and_answer_like_duckdb(events: wharf.Lakehouse) -> None:
    plain = duckdb.connect()
    plain.register("arrow_ev", events.sql("SELECT * FROM ev").to_arrow())
    plain.execute("CREATE TABLE ev AS SELECT * FROM arrow_ev")
    statement_cache.clear()
    for template in QUERIES:
        for values in VALUES:
            sql = template.format(**values)
            mine = events.sql(sql).fetchall()
            assert mine == plain.execute(sql).fetchall(), sql
    assert len(statement_cache._cache) == len(QUERIES)  # one compiled form per query, whatever the literals


def test_partition_pruning_uses_each_literal(events: wharf.Lakehouse) -> None:
    reads: list[int | None] = []
    events.events.subscribe("on_statement", lambda e: reads.extend(r.files for r in e.inputs))
    for day, first in (("2024-01-02", 200), ("2024-01-03", 300), ("2024-01-01", 100)):
        assert events.sql(f"SELECT min(id) FROM ev WHERE day = '{day}'").scalar() == first
    assert events.sql("SELECT count(*) FROM ev WHERE day = '2025-01-01'").scalar() == 0
    assert reads == [1, 1, 1, 0]  # each value opens its own partition's file, and only it


def test_time_travel_and_limit_literals_keep_their_meaning(events: wharf.Lakehouse) -> None:
    snapshots = [r[0] for r in events.sql("SELECT snapshot_id FROM ev.snapshots ORDER BY committed_at").fetchall()]
    counts = [events.sql(f"SELECT count(*) FROM ev FOR VERSION AS OF {s} WHERE id > 0").scalar() for s in snapshots]
    assert counts == [30, 60, 90]
    assert [len(events.sql(f"SELECT id FROM ev WHERE id > 0 ORDER BY id LIMIT {n}").fetchall()) for n in (1, 7, 3)] == [1, 7, 3]


def test_the_statement_records_the_text_as_written(events: wharf.Lakehouse) -> None:
    seen: list[str] = []
    events.events.subscribe("on_statement", lambda e: seen.append(e.statement))
    events.sql("SELECT id FROM ev WHERE id = 101")
    events.sql("  SELECT id FROM ev WHERE id = 202  ")
    assert seen == ["SELECT id FROM ev WHERE id = 101", "SELECT id FROM ev WHERE id = 202"]


def test_a_bad_literal_fails_as_it_would_without_the_rewrite(events: wharf.Lakehouse) -> None:
    with pytest.raises(wharf.errors.WharfError, match="(?i)conver"):
        events.sql("SELECT id FROM ev WHERE day = 'not a date'").fetchall()
    assert events.sql("SELECT count(*) FROM ev WHERE day = '2024-01-02'").scalar() == 30


def test_positional_parameters_bind_in_text_order(lake: wharf.Lakehouse) -> None:
    """``find_all`` walks breadth-first: a ``?`` nested deeper came after a later, shallower one."""
    lake.sql("CREATE TABLE t (a INT, b INT)")
    lake.table("t").append(pa.table({"a": pa.array([1, 2], pa.int32()), "b": pa.array([10, 20], pa.int32())}))
    assert lake.sql("SELECT a, b FROM t WHERE a = ? + 1 AND b = ?", [1, 20]).fetchall() == [(2, 20)]
    assert lake.sql("SELECT a FROM t WHERE a BETWEEN ? AND ? + 1 AND ? > ?", [1, 0, 5, 4]).fetchall() == [(1,)]
    assert lake.sql("SELECT count(*) FROM t.snapshots WHERE snapshot_id > ? + 0 AND ? = 1", [0, 1]).scalar() == 1
    lake.sql("UPDATE t SET b = ? * 100 WHERE a = ? + 1", [7, 0])
    assert lake.sql("SELECT a, b FROM t ORDER BY a").fetchall() == [(1, 700), (2, 20)]
