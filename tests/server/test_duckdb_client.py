"""DuckDB 1.5.5's iceberg extension attached to ``wharf serve``: what it writes Wharf reads, and the reverse.

What DuckDB 1.5.5 cannot do against an Iceberg REST catalog is pinned by
``test_what_duckdb_cannot_do`` (so a DuckDB upgrade that adds it shows up here).
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from tests.server.conftest import RunningServer
from wharf.engine import extension_path


@pytest.fixture(scope="module")
def duck(sqlite_server: RunningServer) -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB attached to the (SQLite-backed) server for the module (loading the extensions takes a second)."""
    server = sqlite_server
    con = duckdb.connect()
    con.execute(f"LOAD '{extension_path('avro')}'")
    con.execute(f"LOAD '{extension_path('iceberg')}'")
    con.execute(f"LOAD '{extension_path('httpfs')}'")  # the iceberg extension speaks HTTP through it
    con.execute(f"ATTACH 'wharf' AS lake (TYPE iceberg, ENDPOINT '{server.url}', AUTHORIZATION_TYPE 'none')")
    yield con
    con.close()


def test_duckdb_writes_wharf_reads(server: RunningServer, namespace: str, duck: duckdb.DuckDBPyConnection) -> None:
    t = f"lake.{namespace}.orders"
    duck.execute(f"CREATE TABLE {t} (id INTEGER, city VARCHAR, amount DOUBLE)")
    duck.execute(f"INSERT INTO {t} VALUES (1, 'Oslo', 10.0), (2, 'Lima', 20.0), (3, 'Pune', 30.0)")
    duck.execute(f"UPDATE {t} SET amount = amount * 2 WHERE id = 1")
    duck.execute(f"DELETE FROM {t} WHERE id = 2")
    duck.execute(
        f"MERGE INTO {t} AS o USING (SELECT 3 AS id, 'Pune' AS city, 33.0 AS amount UNION ALL SELECT 4, 'Kyiv', 40.0) AS s "
        "ON o.id = s.id WHEN MATCHED THEN UPDATE SET amount = s.amount "
        "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.city, s.amount)"
    )
    expected = [(1, "Oslo", 20.0), (3, "Pune", 33.0), (4, "Kyiv", 40.0)]
    assert duck.sql(f"SELECT * FROM {t} ORDER BY id").fetchall() == expected
    # Every row DuckDB wrote (and every row it deleted, as positional delete files) is what Wharf sees.
    assert server.lake.sql(f"SELECT * FROM {namespace}.orders ORDER BY id").fetchall() == expected
    operations = server.lake.sql(
        f"SELECT operation, summary['wharf.user'] FROM {namespace}.orders.snapshots ORDER BY committed_at"
    ).fetchall()
    assert len(operations) >= 4 and {user for _, user in operations} == {"owner"}


def test_wharf_writes_duckdb_reads_and_time_travels(
    server: RunningServer, namespace: str, duck: duckdb.DuckDBPyConnection
) -> None:
    lake = server.lake
    lake.sql(f"CREATE TABLE {namespace}.sales (id BIGINT, amount DECIMAL(10, 2)) PARTITIONED BY (bucket(4, id))")
    lake.sql(f"INSERT INTO {namespace}.sales VALUES (1, 1.50), (2, 2.50)")
    first = lake.sql(f"SELECT snapshot_id FROM {namespace}.sales.snapshots").scalar()
    lake.sql(f"UPDATE {namespace}.sales SET amount = 9.99 WHERE id = 2")
    lake.sql(f"INSERT INTO {namespace}.sales VALUES (3, 3.50)")
    t = f"lake.{namespace}.sales"
    assert duck.sql(f"SELECT id, amount::VARCHAR FROM {t} ORDER BY id").fetchall() == [(1, "1.50"), (2, "9.99"), (3, "3.50")]
    travelled = duck.sql(f"SELECT id, amount::VARCHAR FROM {t} AT (VERSION => {first}) ORDER BY id").fetchall()
    assert travelled == [(1, "1.50"), (2, "2.50")]
    # DuckDB appends to the partitioned table Wharf made; Wharf reads it.
    duck.execute(f"INSERT INTO {t} VALUES (4, 4.50)")
    assert lake.sql(f"SELECT count(*), sum(amount)::VARCHAR FROM {namespace}.sales").fetchone() == (4, "19.49")


def test_duckdb_ddl_ctas_truncate_drop(server: RunningServer, namespace: str, duck: duckdb.DuckDBPyConnection) -> None:
    # CREATE TABLE … AS stages the table, writes its files, then commits the creation (assert-create).
    duck.execute(f"CREATE TABLE lake.{namespace}.copy AS SELECT range AS n FROM range(5)")
    duck.execute(f"ALTER TABLE lake.{namespace}.copy ADD COLUMN label VARCHAR")
    duck.execute(f"ALTER TABLE lake.{namespace}.copy RENAME TO numbers")
    assert server.lake.sql(f"SELECT count(*), count(label) FROM {namespace}.numbers").fetchone() == (5, 0)
    duck.execute(f"TRUNCATE lake.{namespace}.numbers")
    assert server.lake.sql(f"SELECT count(*) FROM {namespace}.numbers").fetchone() == (0,)
    duck.execute(f"DROP TABLE lake.{namespace}.numbers")
    assert f"{namespace}.numbers" not in server.lake.tables(namespace)


def test_what_duckdb_cannot_do(server: RunningServer, namespace: str, duck: duckdb.DuckDBPyConnection) -> None:
    """DuckDB 1.5.5 against an Iceberg REST catalog: no branches or tags, no views, no procedures."""
    lake = server.lake
    lake.sql(f"CREATE TABLE {namespace}.t (id BIGINT)")
    lake.sql(f"INSERT INTO {namespace}.t VALUES (1)")
    lake.sql(f"ALTER TABLE {namespace}.t CREATE TAG v1")
    lake.sql(f"ALTER TABLE {namespace}.t CREATE BRANCH dev")
    lake.sql(f"CREATE VIEW {namespace}.v AS SELECT id FROM {namespace}.t")
    t = f"lake.{namespace}.t"
    with pytest.raises(duckdb.InvalidInputException, match="Could not convert string 'v1'"):
        duck.sql(f"SELECT * FROM {t} AT (VERSION => 'v1')").fetchall()  # a tag is not a version
    with pytest.raises(duckdb.ParserException):
        duck.sql(f"SELECT * FROM {t} AT (BRANCH => 'dev')").fetchall()  # no branch reads (or writes)
    with pytest.raises(duckdb.NotImplementedException, match="Create View"):
        duck.execute(f"CREATE VIEW lake.{namespace}.w AS SELECT 1")
    with pytest.raises(duckdb.Error):
        duck.sql(f"SELECT * FROM lake.{namespace}.v").fetchall()  # Iceberg views are not read either
    with pytest.raises(duckdb.CatalogException):
        duck.execute(f"CALL lake.system.rollback_to_snapshot('{namespace}.t', 1)")
