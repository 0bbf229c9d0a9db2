"""A principal and a session on every statement; no process-wide session; reads run concurrently."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import wharf
from wharf.errors import InvalidArgument
from wharf.events import StatementEvent


def test_the_creator_owns_the_lake_and_connect_without_user_is_the_owner(tmp_path: Path) -> None:
    with wharf.connect(tmp_path / "lake", user="ada") as first:
        assert first.owner == "ada" and first.principal.is_owner and first.principal.external_access
    with wharf.connect(tmp_path / "lake") as again:
        assert again.principal.name == "ada" and again.principal.is_owner
    with wharf.connect(tmp_path / "lake", user="bob") as other:
        assert other.principal.name == "bob" and not other.principal.is_owner and not other.principal.external_access
        assert other.owner == "ada"


def test_each_statement_runs_as_its_handles_principal(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (x INT)")
    lake.sql("GRANT ALL PRIVILEGES ON CATALOG TO USER bob")
    bob = lake.session(user="bob")
    bob.sql("INSERT INTO t VALUES (1)")
    lake.sql("INSERT INTO t VALUES (2)")
    users = lake.sql("SELECT summary['wharf.user'] FROM t.snapshots ORDER BY committed_at").fetchall()
    assert users == [("bob",), ("tester",)]
    assert bob.sql("SET wharf.user").fetchone() == ("wharf.user", "bob")
    with pytest.raises(InvalidArgument, match="cannot be changed"):
        bob.sql("SET wharf.user = 'tester'")


def test_session_settings_belong_to_the_handle(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (x INT)")
    lake.sql("INSERT INTO t VALUES (1)")
    lake.sql("ALTER TABLE t CREATE BRANCH dev")
    other = lake.session()
    other.sql("SET wharf.branch = 'dev'")
    other.sql("INSERT INTO t VALUES (2)")
    assert other.settings.branch == "dev" and lake.settings.branch is None
    assert lake.sql("SELECT count(*) FROM t").scalar() == 1
    assert other.sql("SELECT count(*) FROM t").scalar() == 2
    assert other.principal == lake.principal  # same principal unless another user is named


def test_statement_ids_are_unique_and_sortable(lake: wharf.Lakehouse) -> None:
    events: list[StatementEvent] = []
    lake.events.subscribe("on_statement", events.append)
    for _ in range(20):
        lake.sql("SELECT 1")
    ids = [e.statement_id for e in events]
    assert len(set(ids)) == 20 and ids == sorted(ids)


def test_reads_run_concurrently_on_one_handle(lake: wharf.Lakehouse, tmp_path: Path) -> None:
    """A read blocked inside DuckDB must not stop another thread's statements on the same handle."""
    lake.sql("CREATE TABLE t AS SELECT range AS x FROM range(10)")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    blocked_result: list[object] = []

    def blocked_reader() -> None:
        # DuckDB blocks opening the FIFO until a writer appears: this statement is in flight.
        blocked_result.append(lake.sql(f"SELECT count(*) FROM read_csv('{fifo}', header = true)").scalar())

    reader = threading.Thread(target=blocked_reader)
    reader.start()
    try:
        # If statements were serialised on one lock these would wait forever for the blocked one.
        for _ in range(5):
            assert lake.sql("SELECT sum(x) FROM t").scalar() == 45
        lake.sql("INSERT INTO t VALUES (100)")
        assert lake.sql("SELECT count(*) FROM t").scalar() == 11
        assert reader.is_alive(), "the reader should still be waiting on the pipe"
    finally:
        with open(fifo, "w") as pipe:
            pipe.write("a\n1\n2\n")
        reader.join(timeout=60)
    assert blocked_result == [2]


def test_many_threads_read_and_write_one_table(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (worker INT, i INT)")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        session = lake.session()
        try:
            for i in range(5):
                session.sql("INSERT INTO t VALUES (?, ?)", [worker, i])
                assert session.sql("SELECT count(*) FROM t WHERE worker = ?", [worker]).scalar() == i + 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert lake.sql("SELECT count(*), count(DISTINCT (worker, i)) FROM t").fetchone() == (20, 20)
