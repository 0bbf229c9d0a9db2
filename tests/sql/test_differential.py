"""Differential tests: the same DML on a Wharf table and on a plain DuckDB table gives the same rows.

DuckDB (in memory, 1.5 has MERGE INTO with every clause kind) is the reference. Fixed scripts
cover the statement shapes; a hypothesis generator runs random INSERT/UPDATE/DELETE/MERGE sequences.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wharf

_names = itertools.count()


class Pair:
    """A Wharf lake and a DuckDB database that receive the same statements."""

    def __init__(self, lake: wharf.Lakehouse, partitioned: bool = False) -> None:
        self.lake = lake
        self.duck = duckdb.connect()
        n = next(_names)
        self.t, self.s = f"t{n}", f"s{n}"
        parts = " PARTITIONED BY (grp)" if partitioned else ""
        lake.sql(f"CREATE TABLE {self.t} (id INT, grp VARCHAR, v INT){parts}")
        self.duck.execute(f"CREATE TABLE {self.t} (id INT, grp VARCHAR, v INT)")
        self.both("CREATE TABLE {s} (id INT, grp VARCHAR, v INT)")

    def both(self, template: str) -> tuple[int, int]:
        """Run on both sides; returns (wharf rowcount, duckdb rowcount)."""
        sql = template.format(t=self.t, s=self.s)
        result = self.lake.sql(sql)
        cursor = self.duck.execute(sql)
        try:
            row = cursor.fetchone()
        except duckdb.Error:
            row = None
        return result.rowcount, (row[0] if row and isinstance(row[0], int) else -1)

    def check(self, statement: str = "") -> None:
        for name in (self.t, self.s):
            mine = self.lake.sql(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
            theirs = self.duck.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
            assert mine == theirs, f"{name} differs after: {statement}"

    def run(self, template: str, *, counts: bool = True) -> None:
        mine, theirs = self.both(template)
        self.check(template)
        if counts and theirs >= 0:
            assert mine == theirs, f"row counts differ for {template}: wharf {mine}, duckdb {theirs}"


@pytest.fixture
def pair(lake: wharf.Lakehouse) -> Iterator[Pair]:
    p = Pair(lake, partitioned=True)
    p.both("INSERT INTO {t} VALUES (1, 'a', 10), (2, 'a', NULL), (3, 'b', 30), (4, 'c', 40), (5, NULL, 50)")
    p.both("INSERT INTO {t} VALUES (6, 'b', 60), (7, 'c', NULL), (1, 'c', 11)")
    p.both("INSERT INTO {s} VALUES (1, 'z', 100), (3, 'b', NULL), (8, 'a', 80), (9, NULL, 90)")
    yield p
    p.duck.close()


SCRIPTS = [
    "UPDATE {t} SET v = v + 1 WHERE v > 20",
    "UPDATE {t} SET v = NULL WHERE grp = 'a'",
    "UPDATE {t} SET grp = 'moved', v = coalesce(v, -1) WHERE id % 2 = 0",
    "UPDATE {t} SET v = id * 100",
    "UPDATE {t} SET v = (SELECT max(v) FROM {s}) WHERE id IN (SELECT id FROM {s})",
    "UPDATE {t} SET v = (SELECT max(v) FROM {s} WHERE {s}.id = {t}.id) WHERE EXISTS (SELECT 1 FROM {s} WHERE {s}.id = {t}.id)",
    "DELETE FROM {t} WHERE NOT EXISTS (SELECT 1 FROM {s} WHERE {s}.grp = {t}.grp)",
    "DELETE FROM {t} WHERE v > 35",
    "DELETE FROM {t} WHERE NOT (v > 35)",
    "DELETE FROM {t} WHERE grp IS NULL OR v IS NULL",
    "DELETE FROM {t} WHERE grp = 'c'",
    "DELETE FROM {t}",
    "DELETE FROM {t} WHERE id IN (SELECT id FROM {s} WHERE v IS NOT NULL)",
    "MERGE INTO {t} USING {s} ON {t}.id = {s}.id WHEN MATCHED THEN UPDATE SET v = {s}.v",
    "MERGE INTO {t} USING {s} ON {t}.id = {s}.id WHEN MATCHED THEN DELETE",
    "MERGE INTO {t} USING {s} ON {t}.id = {s}.id WHEN NOT MATCHED THEN INSERT VALUES ({s}.id, {s}.grp, {s}.v)",
    "MERGE INTO {t} USING {s} ON {t}.id = {s}.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
    "MERGE INTO {t} AS x USING {s} AS y ON x.id = y.id AND x.grp = y.grp "
    "WHEN MATCHED AND y.v IS NULL THEN DELETE WHEN MATCHED THEN UPDATE SET v = x.v + y.v "
    "WHEN NOT MATCHED AND y.v > 85 THEN INSERT (id, v) VALUES (y.id, y.v)",
    "MERGE INTO {t} USING {s} ON {t}.id = {s}.id WHEN NOT MATCHED BY SOURCE THEN DELETE",
    "MERGE INTO {t} USING {s} ON {t}.id = {s}.id WHEN NOT MATCHED BY SOURCE AND {t}.v > 40 THEN UPDATE SET v = 0 "
    "WHEN NOT MATCHED BY SOURCE AND {t}.v IS NULL THEN DELETE",
    "MERGE INTO {t} USING (SELECT id + 1 AS id, grp, v FROM {s}) AS q ON {t}.id = q.id "
    "WHEN MATCHED AND q.grp = 'z' THEN UPDATE SET grp = 'zz' WHEN MATCHED THEN UPDATE SET v = -q.v "
    "WHEN NOT MATCHED BY TARGET THEN INSERT * WHEN NOT MATCHED BY SOURCE AND {t}.grp = 'a' THEN DELETE",
    "MERGE INTO {t} USING {s} ON false WHEN NOT MATCHED THEN INSERT * WHEN NOT MATCHED BY SOURCE AND ({t}.v > 20) THEN DELETE",
    "MERGE INTO {t} USING {s} ON {t}.v < {s}.v AND {t}.id = 4 WHEN MATCHED THEN DELETE",
]


# DuckDB counts a target row once per matching source row; Wharf counts rows of the table.
MANY_MATCHES = {SCRIPTS[-1]}


@pytest.mark.parametrize("statement", SCRIPTS)
def test_statement_agrees_with_duckdb(pair: Pair, statement: str) -> None:
    pair.check("setup")
    pair.run(statement, counts=statement not in MANY_MATCHES)


def test_sequence_agrees_with_duckdb(pair: Pair) -> None:
    for statement in SCRIPTS:
        pair.run(statement, counts=statement not in MANY_MATCHES)
        pair.both("INSERT INTO {t} SELECT id + 20, grp, v FROM {s}")


# --- random sequences ------------------------------------------------------------------------

ids = st.integers(min_value=0, max_value=12)
groups = st.sampled_from(["'a'", "'b'", "'c'", "NULL"])
values = st.one_of(st.integers(min_value=-5, max_value=60).map(str), st.just("NULL"))
row = st.tuples(ids, groups, values).map(lambda r: f"({r[0]}, {r[1]}, {r[2]})")

predicates = st.one_of(
    st.integers(-5, 60).map(lambda n: f"v > {n}"),
    st.integers(-5, 60).map(lambda n: f"NOT (v <= {n})"),
    st.integers(0, 2).map(lambda k: f"id % 3 = {k}"),
    groups.map(lambda g: f"grp = {g}" if g != "NULL" else "grp IS NULL"),
    st.just("v IS NULL"),
    st.tuples(ids, ids).map(lambda p: f"id BETWEEN {min(p)} AND {max(p)} OR grp = 'b'"),
)

assignments = st.sampled_from(
    ["v = v + 1", "v = NULL", "grp = 'b'", "v = id * 2, grp = 'c'", "grp = coalesce(grp, 'x')", "v = -v"]
)

matched_actions = st.sampled_from(["UPDATE SET v = src.v", "UPDATE SET v = tgt.v + 1, grp = src.grp", "UPDATE SET *", "DELETE"])
matched_conditions = st.sampled_from(["", " AND src.v > 20", " AND tgt.v IS NULL", " AND src.grp = tgt.grp"])
insert_actions = st.sampled_from(["INSERT *", "INSERT (id, v) VALUES (src.id, src.v)", "INSERT VALUES (src.id, 'new', 0)"])
insert_conditions = st.sampled_from(["", " AND src.v > 10", " AND src.grp IS NOT NULL"])
by_source_actions = st.sampled_from(["DELETE", "UPDATE SET v = 0", "UPDATE SET grp = 'orphan'"])
by_source_conditions = st.sampled_from(["", " AND tgt.v > 30", " AND tgt.grp = 'a'", " AND tgt.v IS NULL"])


@st.composite
def merges(draw: st.DrawFn) -> tuple[list[str], str]:
    source_ids = draw(st.lists(ids, max_size=6, unique=True))
    source = [f"({i}, {draw(groups)}, {draw(values)})" for i in source_ids]
    clauses = []
    for kind, conditions, actions in (
        ("MATCHED", matched_conditions, matched_actions),
        ("NOT MATCHED", insert_conditions, insert_actions),
        ("NOT MATCHED BY SOURCE", by_source_conditions, by_source_actions),
    ):
        count = draw(st.integers(0, 2))
        for k in range(count):
            # As in Spark, only the last clause of a kind may omit its condition.
            condition = draw(conditions if k == count - 1 else conditions.filter(bool))
            clauses.append(f"WHEN {kind}{condition} THEN {draw(actions)}")
    if not clauses:
        clauses.append("WHEN MATCHED THEN DELETE")
    on = draw(st.sampled_from(["tgt.id = src.id", "tgt.id = src.id AND tgt.grp = src.grp", "tgt.id = src.id + 1"]))
    statement = f"MERGE INTO {{t}} AS tgt USING {{s}} AS src ON {on} " + " ".join(clauses)
    return source, statement


statements = st.one_of(
    st.lists(row, min_size=1, max_size=5).map(lambda rs: ("INSERT INTO {t} VALUES " + ", ".join(rs), None)),
    st.tuples(assignments, predicates).map(lambda p: (f"UPDATE {{t}} SET {p[0]} WHERE {p[1]}", None)),
    predicates.map(lambda p: (f"DELETE FROM {{t}} WHERE {p}", None)),
    merges().map(lambda m: (m[1], m[0])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(statements, min_size=1, max_size=6), partitioned=st.booleans())
def test_random_dml_sequences_agree_with_duckdb(lake: wharf.Lakehouse, steps: list, partitioned: bool) -> None:
    pair = Pair(lake, partitioned=partitioned)
    try:
        pair.both("INSERT INTO {t} VALUES (1, 'a', 10), (2, 'b', NULL), (3, NULL, 30), (4, 'c', 40), (1, 'c', 5)")
        for statement, source in steps:
            if source is not None:
                pair.both("DELETE FROM {s}")
                if source:
                    pair.both("INSERT INTO {s} VALUES " + ", ".join(source))
            pair.run(statement)
    finally:
        pair.duck.close()
