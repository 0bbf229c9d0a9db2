"""No bypass: DuckDB's own file, network and engine features only for principals allowed external access.

Two locks, each tested on its own: the guard pass refuses the SQL before it runs, and the governed
DuckDB database cannot open anything outside the lake even if SQL reached it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import wharf
from wharf.errors import AccessDenied, NotFound, UnsupportedStatement, WharfError
from wharf.sql.guard import ALLOWED_TABLE_FUNCTIONS, duckdb_table_functions


@pytest.fixture
def owner(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    lake.sql("CREATE TABLE t (id BIGINT, secret VARCHAR)")
    lake.sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    return lake


@pytest.fixture
def analyst(owner: wharf.Lakehouse) -> wharf.Lakehouse:
    """A principal other than the owner: no external access (granted every privilege: the guard is what is tested)."""
    owner.sql("GRANT ALL PRIVILEGES ON CATALOG TO USER analyst")
    return owner.session(user="analyst")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A Parquet file outside the lake."""
    path = tmp_path / "outside.parquet"
    duckdb.sql(f"COPY (SELECT 42 AS answer) TO '{path}' (FORMAT parquet)")
    return path


def _warehouse_glob(lake: wharf.Lakehouse) -> str:
    return str((lake.path / "warehouse").resolve()) + "/**/*.parquet"


def test_the_owner_may_use_duckdb_files(owner: wharf.Lakehouse, outside: Path) -> None:
    assert owner.principal.external_access
    assert owner.sql(f"SELECT answer FROM read_parquet('{outside}')").scalar() == 42
    assert owner.sql(f"SELECT count(*) FROM t JOIN read_parquet('{outside}') ON true").scalar() == 2


def test_raw_lake_files_are_not_readable_by_a_governed_principal(analyst: wharf.Lakehouse, owner: wharf.Lakehouse) -> None:
    glob = _warehouse_glob(owner)
    assert owner.sql(f"SELECT count(*) FROM read_parquet('{glob}')").scalar() == 2  # what would leak
    with pytest.raises(AccessDenied, match="read_parquet"):
        analyst.sql(f"SELECT * FROM read_parquet('{glob}')")
    assert analyst.sql("SELECT count(*) FROM t").scalar() == 2  # through the table: fine


@pytest.mark.parametrize("name", sorted(duckdb_table_functions() - ALLOWED_TABLE_FUNCTIONS))
def test_each_duckdb_table_function_is_refused(analyst: wharf.Lakehouse, name: str) -> None:
    with pytest.raises(AccessDenied, match=name):
        analyst.sql(f"SELECT * FROM {name}('x')")


def test_the_allowed_table_functions_generate_values(analyst: wharf.Lakehouse) -> None:
    assert analyst.sql("SELECT count(*) FROM range(5)").scalar() == 5
    assert analyst.sql("SELECT sum(generate_series) FROM generate_series(1, 3)").scalar() == 6
    assert analyst.sql("SELECT sum(x) FROM unnest([1, 2, 3]) AS u(x)").scalar() == 6


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM t WHERE id IN (SELECT answer FROM read_parquet('{outside}'))",
        "WITH x AS (SELECT * FROM read_csv('{outside}')) SELECT * FROM x",
        "SELECT * FROM t, LATERAL (SELECT * FROM read_text('{outside}'))",
        "SELECT (SELECT count(*) FROM glob('/etc/*'))",
        "INSERT INTO t SELECT answer, 'x' FROM read_parquet('{outside}')",
        "CREATE TABLE c AS SELECT * FROM read_parquet('{outside}')",
        "MERGE INTO t USING read_parquet('{outside}') s ON t.id = s.answer WHEN MATCHED THEN DELETE",
        "UPDATE t SET secret = (SELECT 'x' FROM read_text('{outside}')) WHERE id = 1",
        "DELETE FROM t WHERE id IN (SELECT answer FROM read_parquet('{outside}'))",
        "DESCRIBE SELECT * FROM read_parquet('{outside}')",
        "CALL system.rollback_to_snapshot('t', (SELECT answer FROM read_parquet('{outside}')))",
        "SELECT * FROM query('SELECT 1')",
        "SELECT * FROM json_execute_serialized_sql('x')",
        "SELECT * FROM information_schema.tables",
        "SET threads = 1",
        "RESET threads",
    ],
)
def test_every_statement_kind_is_guarded(analyst: wharf.Lakehouse, outside: Path, statement: str) -> None:
    before = analyst.sql("SELECT count(*) FROM t.snapshots").scalar()
    with pytest.raises(AccessDenied):
        analyst.sql(statement.format(outside=outside))
    assert analyst.sql("SELECT count(*) FROM t.snapshots").scalar() == before


@pytest.mark.parametrize(
    "statement",
    [
        "ATTACH '{outside}.db' AS other",
        "COPY t TO '{outside}.csv'",
        "COPY (SELECT 1) TO '{outside}.csv'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "PRAGMA version",
        "EXPORT DATABASE '{outside}.dir'",
        "IMPORT DATABASE '{outside}.dir'",
        "CREATE SECRET s (TYPE s3, KEY_ID 'x', SECRET 'y')",
    ],
)
def test_duckdb_statements_never_run_from_user_sql(
    analyst: wharf.Lakehouse, owner: wharf.Lakehouse, outside: Path, statement: str
) -> None:
    for who in (analyst, owner):
        with pytest.raises(WharfError) as info:
            who.sql(statement.format(outside=outside))
        assert isinstance(info.value, (UnsupportedStatement, AccessDenied)) or info.value.status == 400
    assert not Path(f"{outside}.csv").exists() and not Path(f"{outside}.db").exists()


def test_a_file_path_in_from_is_not_a_table(analyst: wharf.Lakehouse, outside: Path) -> None:
    with pytest.raises((NotFound, AccessDenied)):
        analyst.sql(f"SELECT * FROM '{outside}'")
    with pytest.raises((NotFound, AccessDenied)):
        analyst.sql(f'SELECT * FROM "{outside}"')


def test_the_governed_engine_cannot_reach_outside_the_lake(
    analyst: wharf.Lakehouse, owner: wharf.Lakehouse, outside: Path
) -> None:
    """The second lock: SQL that got past the guard still cannot open a file outside the lake."""
    governed = analyst.duckdb.cursor()
    for sql in (
        f"SELECT * FROM read_parquet('{outside}')",
        "SELECT * FROM read_text('/etc/hostname')",
        f"SELECT * FROM read_parquet('{owner.path.resolve()}/warehouse/../../{outside.name}')",
        "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
        f"ATTACH '{outside}.db' AS other",
        f"COPY (SELECT 1) TO '{outside}.csv'",
    ):
        with pytest.raises(duckdb.PermissionException):
            governed.execute(sql)
    for setting in ("SET enable_external_access = true", "SET allowed_directories = ['/']", "SET lock_configuration = false"):
        with pytest.raises(duckdb.InvalidInputException, match="locked"):
            governed.execute(setting)
    assert governed.execute(f"SELECT count(*) FROM read_parquet('{_warehouse_glob(owner)}')").fetchone() == (2,)
    assert owner.duckdb is not analyst.duckdb  # the owner's engine is a different database


def test_principals_granted_external_access_use_the_open_engine(owner: wharf.Lakehouse, outside: Path) -> None:
    from wharf.principal import Principal

    trusted = owner.session(principal=Principal("etl", kind="service", external_access=True))
    assert trusted.sql(f"SELECT answer FROM read_parquet('{outside}')").scalar() == 42
