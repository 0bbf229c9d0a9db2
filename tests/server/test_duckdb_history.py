"""History of a table DuckDB changes through the REST catalog with delete files (issue 11's last case).

DuckDB 1.5.5's iceberg extension, ATTACHed to ``wharf serve``, writes the product example of
docs/history.md — its UPDATE, DELETE and the update half of its MERGE as positional delete files
(merge-on-read), its MERGE as two snapshots in one transaction. Wharf's changelog (``t.changes``,
``system.create_changelog_view``) and SCD2 (``t.scd2``) must tell that history right.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from tests.conftest import past_last_commit
from tests.server.conftest import RunningServer
from wharf.engine import extension_path

STATEMENTS = [  # each DuckDB statement, and the changes it makes
    (
        "INSERT INTO {t} VALUES ('00001', 'desk', 250), ('00002', 'lamp', 40), ('00003', 'chair', 120), "
        "('00004', 'shelf', 80), ('00005', 'rug', 60)",
        [
            ("00001", 250, "INSERT"),
            ("00002", 40, "INSERT"),
            ("00003", 120, "INSERT"),
            ("00004", 80, "INSERT"),
            ("00005", 60, "INSERT"),
        ],
    ),
    (
        "MERGE INTO {t} AS t USING (SELECT '00001' AS product_id, 'desk' AS name, 500 AS price "
        "UNION ALL SELECT '00006', 'stool', 30) AS s ON t.product_id = s.product_id "
        "WHEN MATCHED THEN UPDATE SET price = s.price WHEN NOT MATCHED THEN INSERT VALUES (s.product_id, s.name, s.price)",
        [("00001", 250, "UPDATE_BEFORE"), ("00001", 500, "UPDATE_AFTER"), ("00006", 30, "INSERT")],
    ),
    ("DELETE FROM {t} WHERE product_id = '00003'", [("00003", 120, "DELETE")]),
    ("UPDATE {t} SET price = 45 WHERE product_id = '00002'", [("00002", 40, "UPDATE_BEFORE"), ("00002", 45, "UPDATE_AFTER")]),
]


@pytest.fixture
def duck(server: RunningServer) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for extension in ("avro", "iceberg", "httpfs"):
        con.execute(f"LOAD '{extension_path(extension)}'")
    con.execute(f"ATTACH 'wharf' AS lake (TYPE iceberg, ENDPOINT '{server.url}', AUTHORIZATION_TYPE 'none')")
    yield con
    con.close()


def by_statement(lake: Any, namespace: str, relation: str) -> list[list[tuple[Any, ...]]]:
    """The changes in ``relation``, grouped by the Wharf statement (one DuckDB statement) that committed them."""
    rows = lake.sql(
        f"SELECT s.summary['wharf.statement-id'], c.product_id, c.price, c._change_type "
        f"FROM {relation} c JOIN {namespace}.products.snapshots s ON c._commit_snapshot_id = s.snapshot_id "
        "ORDER BY c._change_ordinal, c.product_id, c._change_type DESC"
    ).fetchall()
    order = list(dict.fromkeys(r[0] for r in rows))
    return [[r[1:] for r in rows if r[0] == statement] for statement in order]


def test_changes_and_scd2_of_duckdb_merge_on_read_writes(
    server: RunningServer, namespace: str, duck: duckdb.DuckDBPyConnection
) -> None:
    lake = server.lake
    lake.sql(f"CREATE TABLE {namespace}.products (product_id VARCHAR NOT NULL, name VARCHAR, price INT)")
    lake.sql(f"ALTER TABLE {namespace}.products SET IDENTIFIER FIELDS product_id")
    for sql, _ in STATEMENTS:
        duck.execute(sql.format(t=f"lake.{namespace}.products"))
        past_last_commit(lake, f"{namespace}.products")  # distinct commit times, as separate jobs would have

    # DuckDB wrote merge-on-read: position delete files for the MERGE's update, the DELETE and the UPDATE.
    deletes = lake.sql(
        f"SELECT count(*) FROM {namespace}.products.snapshots WHERE summary['added-position-deletes'] = '1'"
    ).scalar()
    assert deletes == 3
    expected = [sorted(changes, key=lambda c: (c[0], c[2] != "UPDATE_BEFORE")) for _, changes in STATEMENTS]
    # t.changes: the full history, updates paired by the identifier field, in commit order.
    assert [
        sorted(g, key=lambda c: (c[0], c[2] != "UPDATE_BEFORE"))
        for g in by_statement(lake, namespace, f"{namespace}.products.changes")
    ] == expected
    # The procedure's view says the same.
    lake.sql(
        f"CALL system.create_changelog_view(table => '{namespace}.products', changelog_view => 'duck_changes', "
        "identifier_columns => array('product_id'))"
    )
    assert [
        sorted(g, key=lambda c: (c[0], c[2] != "UPDATE_BEFORE")) for g in by_statement(lake, namespace, "duck_changes")
    ] == expected

    # SCD2: desk 250 then 500, lamp 40 then 45, chair closed; current versions are the table, as DuckDB reads it.
    versions = lake.sql(
        f"SELECT product_id, price, effective_end IS NULL, is_current FROM {namespace}.products.scd2 "
        "ORDER BY product_id, effective_start"
    ).fetchall()
    assert versions == [
        ("00001", 250, False, False),
        ("00001", 500, True, True),
        ("00002", 40, False, False),
        ("00002", 45, True, True),
        ("00003", 120, False, False),
        ("00004", 80, True, True),
        ("00005", 60, True, True),
        ("00006", 30, True, True),
    ]
    current = lake.sql(f"SELECT product_id, name, price FROM {namespace}.products.scd2 WHERE is_current ORDER BY 1").fetchall()
    assert current == duck.sql(f"SELECT * FROM lake.{namespace}.products ORDER BY 1").fetchall()
    # The defining property: the versions valid at each commit time are the table as of that time.
    for (at,) in lake.sql(f"SELECT committed_at FROM {namespace}.products.snapshots").fetchall():
        valid = lake.sql(
            f"SELECT product_id, name, price FROM {namespace}.products.scd2 WHERE ? >= effective_start "
            "AND (effective_end IS NULL OR ? < effective_end) ORDER BY 1",
            [at, at],
        ).fetchall()
        travelled = lake.sql(
            f"SELECT product_id, name, price FROM {namespace}.products FOR TIMESTAMP AS OF ? ORDER BY 1", [at]
        ).fetchall()
        assert valid == travelled, at
