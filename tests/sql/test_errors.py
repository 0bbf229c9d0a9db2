"""Bad input: typed errors that say what and where, and nothing half-written."""

from __future__ import annotations

import pytest
from sqlglot import exp

import wharf
from wharf.errors import (
    AlreadyExists,
    NotFound,
    SchemaMismatch,
    SqlError,
    SqlParseError,
    UnsupportedStatement,
    WharfError,
)


def test_parse_error_points_at_line_and_column(lake: wharf.Lakehouse) -> None:
    with pytest.raises(SqlParseError) as info:
        lake.sql("SELECT *\nFROM t\nWHERE a = = 1")
    assert info.value.line == 3
    assert info.value.column == 11
    assert "^" in str(info.value)


def test_parse_error_line_counts_from_script_start(lake: wharf.Lakehouse) -> None:
    with pytest.raises(SqlParseError) as info:
        lake.sql("CREATE TABLE t (a INT);\n\nSELECT 1 +")
    assert info.value.line == 3
    # the first statement ran before the second failed to parse? No: parsing happens first.
    assert lake.tables() == []


def test_unknown_table_is_not_found_with_hint(lake: wharf.Lakehouse) -> None:
    with pytest.raises(NotFound) as info:
        lake.sql("SELECT * FROM sales.nope")
    assert "sales.nope" in str(info.value)
    assert info.value.hint


def test_insert_type_mismatch_names_the_column(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id INT, name VARCHAR)")
    with pytest.raises(SchemaMismatch, match="'id'"):
        lake.sql("INSERT INTO t VALUES ('abc', 'x')")


def test_insert_not_null_violation_names_the_column(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id INT NOT NULL, name VARCHAR)")
    with pytest.raises(SchemaMismatch, match="'id'.*NOT NULL"):
        lake.sql("INSERT INTO t VALUES (1, 'a'), (NULL, 'b')")
    assert lake.sql("SELECT count(*) FROM t").scalar() == 0
    assert lake.sql("SELECT count(*) FROM t.snapshots").scalar() == 0


def test_insert_wrong_arity(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id INT)")
    with pytest.raises(SchemaMismatch, match="2 value"):
        lake.sql("INSERT INTO t VALUES (1, 2)")


def test_insert_unknown_column(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id INT)")
    with pytest.raises(SchemaMismatch, match="'nope'"):
        lake.sql("INSERT INTO t (nope) VALUES (1)")


def test_create_existing_table(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id INT)")
    with pytest.raises(AlreadyExists):
        lake.sql("CREATE TABLE t (id INT)")
    lake.sql("CREATE TABLE IF NOT EXISTS t (id INT)")


def test_illegal_type_change_is_refused(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id INT)")
    with pytest.raises(SchemaMismatch, match="widening"):
        lake.sql("ALTER TABLE t ALTER COLUMN id TYPE VARCHAR")
    lake.sql("ALTER TABLE t ALTER COLUMN id TYPE BIGINT")
    assert str(lake.table("t").schema.find_field("id").field_type) == "long"


def test_duckdb_binder_error_is_wrapped(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (a INT)")
    with pytest.raises(SqlError, match='"b"') as info:
        lake.sql("SELECT b FROM t")
    assert "read_parquet" not in str(info.value)


def test_unsupported_statement_says_what_is_supported(lake: wharf.Lakehouse) -> None:
    with pytest.raises(UnsupportedStatement) as info:
        lake.sql("CREATE MATERIALIZED VIEW v AS SELECT 1")
    assert info.value.hint
    assert lake.sql("SHOW VIEWS").fetchall() == []


def test_failed_statement_in_script_keeps_earlier_statements(lake: wharf.Lakehouse) -> None:
    """Each statement commits on its own: the first INSERT stays, the failing one adds nothing."""
    lake.sql("CREATE TABLE t (id INT NOT NULL)")
    with pytest.raises(SchemaMismatch):
        lake.sql("INSERT INTO t VALUES (1); INSERT INTO t VALUES (NULL)")
    assert lake.sql("SELECT id FROM t").fetchall() == [(1,)]


def test_a_ctas_whose_query_fails_creates_nothing(lake: wharf.Lakehouse) -> None:
    # The query fails before anything is written; a CTAS refused at commit time (after its data
    # files exist) is tested in tests/catalog/test_commit_path.py.
    with pytest.raises(WharfError):
        lake.sql("CREATE TABLE t AS SELECT CAST('x' AS INT) AS a")
    assert lake.tables() == []


def test_errors_are_one_tree() -> None:
    for name in wharf.errors.__all__:
        assert issubclass(getattr(wharf.errors, name), WharfError)
    assert SqlParseError.status == 400
    assert NotFound.status == 404


def test_repeated_statement_gets_a_fresh_ast_each_time(lake: wharf.Lakehouse) -> None:
    """The parse cache hands out copies: a handler rewriting its AST cannot poison the next run."""
    from wharf.sql.parser import parse

    first = parse("SELECT a FROM t WHERE a = 1")[0].node
    first.find(exp.Column).set("this", exp.to_identifier("zzz"))
    again = parse("SELECT a FROM t WHERE a = 1")[0].node
    assert again.sql() == "SELECT a FROM t WHERE a = 1"
    lake.sql("CREATE TABLE t (a INT)")
    lake.sql("MERGE INTO t USING (SELECT 1 AS a) s ON t.a = s.a WHEN NOT MATCHED THEN INSERT *")
    lake.sql("MERGE INTO t USING (SELECT 1 AS a) s ON t.a = s.a WHEN NOT MATCHED THEN INSERT *")
    assert lake.sql("SELECT count(*) FROM t").scalar() == 1
