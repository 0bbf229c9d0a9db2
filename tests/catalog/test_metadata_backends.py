"""Choosing the metadata database: URLs, the guards against mixing two lakes, the CLI option, PostgreSQL's commit locks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

import wharf
from wharf.catalog.backends import parse_metadata_url
from wharf.catalog.locks import AdvisoryCommitLocks
from wharf.cli import app
from wharf.errors import CatalogUnavailable, InvalidArgument


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("mysql://u:secret@h/db", "does not support"),
        ("sqlite://", "names no SQLite file"),
    ],
)
def test_bad_metadata_urls_are_refused_with_a_hint(url: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        parse_metadata_url(url)
    assert info.value.hint
    assert "secret" not in str(info.value)  # passwords never reach a message


def test_an_unreachable_database_is_catalog_unavailable(tmp_path: Path) -> None:
    from tests.servers import free_port

    url = f"postgresql://wharf:hunter2@127.0.0.1:{free_port()}/lakes"  # nothing listens there
    with pytest.raises(CatalogUnavailable, match="Could not open the metadata database") as info:
        wharf.connect(tmp_path / "lake", metadata_url=url)
    assert "hunter2" not in str(info.value) and info.value.hint
    assert not (tmp_path / "lake" / "wharf-metadata-url").exists()  # nothing claims the directory


def test_postgresql_urls_use_psycopg() -> None:
    assert parse_metadata_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_metadata_url("postgres://u@h/db").drivername == "postgresql+psycopg"


def test_a_directory_remembers_where_its_metadata_lives(tmp_path: Path, postgres_url: str) -> None:
    with wharf.connect(tmp_path / "lake", metadata_url=postgres_url, user="ada") as lake:
        lake.sql("CREATE TABLE t AS SELECT 1 AS id")
    assert not (tmp_path / "lake" / "wharf.db").exists()
    # Without the URL the directory is refused, not opened as a new empty lake.
    with pytest.raises(InvalidArgument, match="not in the directory") as info:
        wharf.connect(tmp_path / "lake")
    assert "metadata_url" in (info.value.hint or "")
    assert not (tmp_path / "lake" / "wharf.db").exists()
    with wharf.connect(tmp_path / "lake", metadata_url=postgres_url) as lake:
        assert lake.owner == "ada"
        assert lake.sql("SELECT id FROM t").fetchall() == [(1,)]


def test_one_database_serves_one_lake(tmp_path: Path, postgres_url: str) -> None:
    wharf.connect(tmp_path / "a", metadata_url=postgres_url).close()
    with pytest.raises(InvalidArgument, match="belongs to the lake whose warehouse is"):
        wharf.connect(tmp_path / "b", metadata_url=postgres_url)
    wharf.connect(tmp_path / "sqlite-lake").close()
    with pytest.raises(InvalidArgument, match="keeps its metadata in"):
        wharf.connect(tmp_path / "sqlite-lake", metadata_url=postgres_url)


def test_the_cli_takes_the_metadata_url_as_option_or_environment(tmp_path: Path, postgres_url: str) -> None:
    runner = CliRunner()
    lake_dir = str(tmp_path / "lake")
    created = runner.invoke(app, ["--lake", lake_dir, "--metadata-url", postgres_url, "sql", "CREATE TABLE t AS SELECT 42 AS x"])
    assert created.exit_code == 0, created.output
    read = runner.invoke(app, ["--lake", lake_dir, "sql", "SELECT x FROM t"], env={"WHARF_METADATA_URL": postgres_url})
    assert read.exit_code == 0, read.output
    assert "42" in read.output
    refused = runner.invoke(app, ["--lake", lake_dir, "sql", "SELECT x FROM t"], env={"WHARF_METADATA_URL": None})
    assert refused.exit_code != 0 and "metadata" in refused.output


def test_postgresql_commit_locks_exclude_each_other(tmp_path: Path, postgres_url: str) -> None:
    with wharf.connect(tmp_path / "lake", metadata_url=postgres_url) as lake:
        locks = lake.catalog.locks
        assert isinstance(locks, AdvisoryCommitLocks)
        order: list[str] = []
        first_holds, second_waiting = threading.Event(), threading.Event()

        def second() -> None:
            first_holds.wait()
            second_waiting.set()
            with locks.hold(("default", "t")):
                order.append("second")

        worker = threading.Thread(target=second)
        worker.start()
        with locks.hold(("default", "t")):
            first_holds.set()
            second_waiting.wait()
            with locks.hold(("default", "other")):  # another table's lock is free meanwhile
                order.append("other")
            order.append("first")
        worker.join()
        assert order == ["other", "first", "second"]
