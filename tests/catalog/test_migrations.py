"""Wharf's metadata tables are versioned with Alembic; opening a lake applies what is pending, once."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

import wharf
from wharf.catalog import lake_owner, migrations

pytestmark = pytest.mark.metadata_backends  # SQLite and PostgreSQL metadata (tests/conftest.py)


def test_a_new_lake_is_at_the_head_revision_and_upgrading_again_changes_nothing(tmp_path: Path) -> None:
    lake = wharf.connect(tmp_path / "lake", user="ada")
    engine = lake.catalog.engine
    assert migrations.current_revision(engine) == migrations.head()
    before = _dump(engine, "wharf_lake")
    assert migrations.upgrade(engine) == migrations.head()
    assert _dump(engine, "wharf_lake") == before
    assert lake_owner(engine) == "ada"
    lake.close()


@pytest.mark.metadata_backends("sqlite")  # such lakes were SQLite only
def test_a_lake_from_before_alembic_is_adopted_with_its_identity(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    root.mkdir()
    # The layout the versioned-list migrations wrote: wharf_lake plus their own bookkeeping table.
    with sqlite3.connect(root / "wharf.db") as db:
        db.execute(
            "CREATE TABLE wharf_migrations (version INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, "
            "applied_at_ms INTEGER NOT NULL)"
        )
        db.execute("INSERT INTO wharf_migrations VALUES (1, 'lake_info', 1)")
        db.execute("CREATE TABLE wharf_lake (key VARCHAR(200) PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO wharf_lake VALUES ('lake_id', 'old-lake-id'), ('created_at_ms', '1')")
    lake = wharf.connect(root, user="ada")
    assert migrations.current_revision(lake.catalog.engine) == migrations.head()
    rows = dict(_dump(lake.catalog.engine, "wharf_lake"))
    assert rows["lake_id"] == "old-lake-id" and rows["created_at_ms"] == "1"
    with sqlite3.connect(root / "wharf.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "wharf_migrations" not in tables and "alembic_version" in tables
    lake.close()


def _open(path: str, user: str) -> None:
    wharf.connect(path, user=user).close()


def test_processes_opening_a_new_lake_at_once_apply_each_revision_once(tmp_path: Path, metadata_backend: str) -> None:
    path = str(tmp_path / "lake")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_open, args=(path, f"user{i}")) for i in range(4)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    with wharf.connect(path) as lake:
        engine = lake.catalog.engine
        assert _dump(engine, "alembic_version") == [(migrations.head(),)]
        rows = dict(_dump(engine, "wharf_lake"))
    # One identity, one owner (and, for a database outside the lake directory, one warehouse).
    assert sorted(rows) == sorted(["created_at_ms", "lake_id", "owner", *(["warehouse"] if metadata_backend != "sqlite" else [])])
    assert rows["owner"] in {f"user{i}" for i in range(4)}


@pytest.mark.metadata_backends("sqlite")  # opens no database
def test_the_migrations_run_only_through_upgrade() -> None:
    from alembic import command

    with pytest.raises(RuntimeError, match="wharf.catalog.migrations.upgrade"):
        command.upgrade(migrations.config(), "head")


def _dump(engine: Engine, table: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {table}")))
