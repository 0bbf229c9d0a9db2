"""Shared fixtures: a fresh lake per test, on a real SQLite catalog in a temp directory.

Modules marked ``pytestmark = pytest.mark.metadata_backends`` run every test twice: with the
lake's metadata in SQLite and in PostgreSQL (a database of its own per test, on the session's
throw-away server: ``tests/servers.py``). The PostgreSQL run sets ``$WHARF_METADATA_URL``, so
every ``wharf.connect`` in the test — and in processes it starts — uses that database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import wharf
from tests import servers

BACKENDS = ("sqlite", "postgresql")
# Nothing phones home from a test run: Daft's import-time telemetry, Ray's usage statistics.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "metadata_backends: run the module's tests on SQLite and on PostgreSQL metadata")
    owned = servers.begin_session()  # the controller (or a run without xdist) owns the servers
    if owned is not None:
        config.stash[_SERVERS] = owned


def pytest_unconfigure(config: pytest.Config) -> None:
    owned = config.stash.get(_SERVERS, None)
    if owned is not None:
        servers.end_session(owned)


_SERVERS = pytest.StashKey[Path]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test's own @pytest.mark.metadata_backends("sqlite") narrows its module's mark.
    marker = metafunc.definition.get_closest_marker("metadata_backends")
    if marker is not None and "metadata_backend" in metafunc.fixturenames:
        metafunc.parametrize("metadata_backend", marker.args or BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The session's PostgreSQL server (started on first use, shared by the xdist workers)."""
    try:
        return servers.postgres_server()
    except servers.ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty PostgreSQL metadata database (a schema of its own) for one test."""
    return servers.create_database(postgres_server)


@pytest.fixture(autouse=True)
def metadata_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where this test's lakes keep their metadata: ``sqlite`` (the default) or ``postgresql``."""
    backend: str = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        monkeypatch.setenv("WHARF_METADATA_URL", request.getfixturevalue("postgres_url"))
    elif os.environ.get("WHARF_METADATA_URL"):
        monkeypatch.delenv("WHARF_METADATA_URL")
    return backend


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[wharf.Lakehouse]:
    """An empty lake in a temporary directory."""
    with wharf.connect(tmp_path / "lake", user="tester") as lh:
        yield lh


def past_last_commit(lake: wharf.Lakehouse, table: str) -> None:
    """Return once the clock has moved past ``table``'s newest snapshot, so the next one gets a later timestamp.

    Tests of time travel by timestamp need distinct commit times; waiting on the observed commit
    time (not a fixed sleep) is exact however slow or fast the machine is.
    """
    import time

    newest = max((s.timestamp_ms for s in lake.table(table).iceberg.metadata.snapshots), default=0)
    while time.time() * 1000 <= newest:
        time.sleep(0.0005)
