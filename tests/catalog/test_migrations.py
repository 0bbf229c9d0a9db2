"""Wharf's metadata tables are versioned with Alembic; opening a lake applies what is pending, once."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

import wharf
from wharf.catalog import lake_owner, migrations


def test_a_new_lake_is_at_the_head_revision_and_upgrading_again_changes_nothing(tmp_path: Path) -> None:
    lake = wharf.connect(tmp_path / "lake", user="ada")
    engine = lake.catalog.engine
    assert migrations.current_revision(engine) == migrations.head()
    before = _dump(tmp_path / "lake" / "wharf.db", "wharf_lake")
    assert migrations.upgrade(engine) == migrations.head()
    assert _dump(tmp_path / "lake" / "wharf.db", "wharf_lake") == before
    assert lake_owner(engine) == "ada"
    lake.close()


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
    rows = dict(_dump(root / "wharf.db", "wharf_lake"))
    assert rows["lake_id"] == "old-lake-id" and rows["created_at_ms"] == "1"
    with sqlite3.connect(root / "wharf.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "wharf_migrations" not in tables and "alembic_version" in tables
    lake.close()


def _open(path: str, user: str) -> None:
    wharf.connect(path, user=user).close()


def test_processes_opening_a_new_lake_at_once_apply_each_revision_once(tmp_path: Path) -> None:
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
    db = Path(path) / "wharf.db"
    assert _dump(db, "alembic_version") == [(migrations.head(),)]
    keys = [k for k, _ in _dump(db, "wharf_lake")]
    assert sorted(keys) == ["created_at_ms", "lake_id", "owner"]  # one identity, one owner
    assert dict(_dump(db, "wharf_lake"))["owner"] in {f"user{i}" for i in range(4)}


def test_the_migrations_run_only_through_upgrade() -> None:
    from alembic import command

    with pytest.raises(RuntimeError, match="wharf.catalog.migrations.upgrade"):
        command.upgrade(migrations.config(), "head")


def _dump(db: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall())
