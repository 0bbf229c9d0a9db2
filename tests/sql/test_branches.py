"""Branch and tag DDL: ALTER TABLE … CREATE/REPLACE/DROP BRANCH|TAG, with Iceberg semantics."""

from __future__ import annotations

import pytest

import wharf
from wharf.errors import AlreadyExists, InvalidArgument, NotFound, SqlParseError, ValidationError

pytestmark = pytest.mark.metadata_backends  # SQLite and PostgreSQL metadata (tests/conftest.py)


def _refs(lake: wharf.Lakehouse, table: str = "t") -> dict[str, tuple]:
    rows = lake.sql(
        f"SELECT name, type, snapshot_id, max_reference_age_in_ms, min_snapshots_to_keep, max_snapshot_age_in_ms "
        f"FROM {table}.refs"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def _ids(lake: wharf.Lakehouse, sql: str) -> list[int]:
    return sorted(r[0] for r in lake.sql(sql).fetchall())


@pytest.fixture
def t(lake: wharf.Lakehouse) -> list[int]:
    """Table t with two snapshots; returns their ids, oldest first."""
    lake.sql("CREATE TABLE t (id BIGINT, v VARCHAR)")
    lake.sql("INSERT INTO t VALUES (1, 'a')")
    lake.sql("INSERT INTO t VALUES (2, 'b')")
    return [r[0] for r in lake.sql("SELECT snapshot_id FROM t.snapshots ORDER BY committed_at").fetchall()]


def test_create_branch_at_current_snapshot_and_write_to_it_in_isolation(lake: wharf.Lakehouse, t: list[int]) -> None:
    result = lake.sql("ALTER TABLE t CREATE BRANCH audit")
    assert result.fetchall()[0][1] == t[1]
    assert _refs(lake)["audit"][:2] == ("BRANCH", t[1])
    lake.sql("INSERT INTO t.branch_audit VALUES (3, 'c')")
    assert _ids(lake, "SELECT id FROM t.branch_audit") == [1, 2, 3]
    assert _ids(lake, "SELECT id FROM t") == [1, 2]
    assert lake.table("t").current_snapshot_id() == t[1]


def test_create_branch_as_of_version_with_retention(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"ALTER TABLE t CREATE BRANCH old AS OF VERSION {t[0]} RETAIN 7 DAYS WITH SNAPSHOT RETENTION 3 SNAPSHOTS 2 HOURS")
    assert _refs(lake)["old"] == ("BRANCH", t[0], 7 * 86_400_000, 3, 2 * 3_600_000)
    assert _ids(lake, "SELECT id FROM t.branch_old") == [1]


def test_snapshot_retention_may_give_only_an_age(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH b WITH SNAPSHOT RETENTION 30 MINUTES")
    assert _refs(lake)["b"] == ("BRANCH", t[1], None, None, 30 * 60_000)


def test_create_existing_branch_fails_if_not_exists_keeps_it(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"ALTER TABLE t CREATE BRANCH b AS OF VERSION {t[0]}")
    with pytest.raises(AlreadyExists, match="Branch 'b' already exists"):
        lake.sql("ALTER TABLE t CREATE BRANCH b")
    lake.sql("ALTER TABLE t CREATE BRANCH IF NOT EXISTS b")
    assert _refs(lake)["b"][1] == t[0]


def test_create_or_replace_and_replace_move_the_branch(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"ALTER TABLE t CREATE BRANCH b AS OF VERSION {t[0]}")
    lake.sql("ALTER TABLE t CREATE OR REPLACE BRANCH b")
    assert _refs(lake)["b"][1] == t[1]
    lake.sql(f"ALTER TABLE t REPLACE BRANCH b AS OF VERSION {t[0]}")
    assert _refs(lake)["b"][1] == t[0]
    with pytest.raises(NotFound, match="Branch 'nope' does not exist"):
        lake.sql(f"ALTER TABLE t REPLACE BRANCH nope AS OF VERSION {t[0]}")


def test_tags_are_created_replaced_read_and_read_only(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"ALTER TABLE t CREATE TAG v1 AS OF VERSION {t[0]} RETAIN 30 DAYS")
    assert _refs(lake)["v1"] == ("TAG", t[0], 30 * 86_400_000, None, None)
    assert _ids(lake, "SELECT id FROM t.tag_v1") == [1]
    assert _ids(lake, "SELECT id FROM t FOR VERSION AS OF 'v1'") == [1]
    with pytest.raises(AlreadyExists):
        lake.sql("ALTER TABLE t CREATE TAG v1")
    lake.sql("ALTER TABLE t CREATE OR REPLACE TAG v1")
    assert _ids(lake, "SELECT id FROM t.tag_v1") == [1, 2]
    with pytest.raises(InvalidArgument, match="tag"):
        lake.sql("INSERT INTO t.tag_v1 VALUES (9, 'z')")


def test_tags_have_no_snapshot_retention(lake: wharf.Lakehouse, t: list[int]) -> None:
    with pytest.raises(SqlParseError, match="Tags have no snapshot retention"):
        lake.sql("ALTER TABLE t CREATE TAG x WITH SNAPSHOT RETENTION 2 SNAPSHOTS")


def test_branch_and_tag_names_do_not_collide(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE t CREATE TAG x")
    with pytest.raises(InvalidArgument, match="'x' is a tag"):
        lake.sql("ALTER TABLE t CREATE OR REPLACE BRANCH x")
    with pytest.raises(NotFound, match="is a tag"):
        lake.sql("ALTER TABLE t DROP BRANCH x")


def test_drop_branch_and_tag(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE t CREATE BRANCH b")
    lake.sql("ALTER TABLE t CREATE TAG x")
    lake.sql("ALTER TABLE t DROP BRANCH b")
    lake.sql("ALTER TABLE t DROP TAG x")
    assert set(_refs(lake)) == {"main"}
    with pytest.raises(NotFound, match="Branch 'b' does not exist"):
        lake.sql("ALTER TABLE t DROP BRANCH b")
    lake.sql("ALTER TABLE t DROP BRANCH IF EXISTS b")
    lake.sql("ALTER TABLE t DROP TAG IF EXISTS x")
    with pytest.raises(NotFound):
        lake.sql("SELECT * FROM t.branch_b")
    # the snapshots stay: only the ref is gone
    assert len(lake.sql("SELECT * FROM t.snapshots")) == 2


def test_dropping_main_is_an_error(lake: wharf.Lakehouse, t: list[int]) -> None:
    with pytest.raises(InvalidArgument, match="Cannot drop the main branch"):
        lake.sql("ALTER TABLE t DROP BRANCH main")
    assert _refs(lake)["main"][1] == t[1]


def test_unknown_snapshot_and_table(lake: wharf.Lakehouse, t: list[int]) -> None:
    with pytest.raises(NotFound, match="Snapshot 42 does not exist"):
        lake.sql("ALTER TABLE t CREATE BRANCH b AS OF VERSION 42")
    with pytest.raises(NotFound, match="does not exist"):
        lake.sql("ALTER TABLE nope CREATE BRANCH b")


def test_branch_as_of_another_ref(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql(f"ALTER TABLE t CREATE TAG first AS OF VERSION {t[0]}")
    lake.sql("ALTER TABLE t CREATE BRANCH fix AS OF VERSION 'first'")
    assert _refs(lake)["fix"][1] == t[0]


def test_branch_on_empty_table_gets_an_empty_snapshot(lake: wharf.Lakehouse) -> None:
    """Iceberg (Java) behaviour: the new branch points at an empty snapshot; main stays empty."""
    lake.sql("CREATE TABLE e (id BIGINT)")
    lake.sql("ALTER TABLE e CREATE BRANCH dev")
    refs = _refs(lake, "e")
    assert set(refs) == {"dev"}
    assert lake.sql("SELECT count(*) FROM e.branch_dev").scalar() == 0
    lake.sql("INSERT INTO e.branch_dev VALUES (1)")
    assert lake.sql("SELECT count(*) FROM e.branch_dev").scalar() == 1
    assert lake.sql("SELECT count(*) FROM e").scalar() == 0
    # and main can then be fast-forwarded to it
    lake.sql("CALL system.fast_forward('e', 'main', 'dev')")
    assert lake.sql("SELECT count(*) FROM e").scalar() == 1


def test_tag_on_empty_table_is_a_clear_error(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE e (id BIGINT)")
    with pytest.raises(ValidationError, match="no snapshot to tag"):
        lake.sql("ALTER TABLE e CREATE TAG v1")


def test_syntax_in_other_dialects_and_quoted_names(lake: wharf.Lakehouse, t: list[int]) -> None:
    lake.sql("ALTER TABLE default.t CREATE BRANCH `x-1`", dialect="spark")
    lake.sql('ALTER TABLE "default"."t" CREATE TAG "v 2"', dialect="trino")
    assert {"x-1", "v 2"} <= set(_refs(lake))
    assert _ids(lake, "SELECT id FROM t FOR VERSION AS OF 'x-1'") == [1, 2]


def test_parse_errors_point_at_the_token(lake: wharf.Lakehouse, t: list[int]) -> None:
    with pytest.raises(SqlParseError, match="DAYS, HOURS or MINUTES") as info:
        lake.sql("ALTER TABLE t CREATE BRANCH b RETAIN 3 WEEKS")
    assert info.value.line == 1 and info.value.column == 40
    with pytest.raises(SqlParseError, match="cannot be used together"):
        lake.sql("ALTER TABLE t CREATE OR REPLACE BRANCH IF NOT EXISTS b")


def test_python_api_uses_the_same_statements(lake: wharf.Lakehouse, t: list[int]) -> None:
    table = lake.table("t")
    table.create_branch("dev", snapshot_id=t[0])
    table.create_tag("v1")
    assert _refs(lake)["dev"][1] == t[0] and _refs(lake)["v1"][1] == t[1]
    table.create_branch("dev", replace=True)
    assert table.current_snapshot_id("dev") == t[1]
    table.drop_branch("dev")
    table.drop_tag("v1")
    assert set(_refs(lake)) == {"main"}


def test_alter_table_column_statements_still_work(lake: wharf.Lakehouse, t: list[int]) -> None:
    """The branch grammar must not swallow ordinary ALTER TABLE statements."""
    lake.sql("ALTER TABLE t ADD COLUMN branch VARCHAR")
    lake.sql("ALTER TABLE t DROP COLUMN branch")
    assert lake.sql("SELECT * FROM t LIMIT 0").columns == ["id", "v"]
