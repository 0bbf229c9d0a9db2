"""One Wharf server per test session (per xdist worker), shared by every server test.

It runs uvicorn in a thread on a free loopback port, with ``--no-auth``, over a lake in a
temporary directory. Tests keep out of each other's way by working in their own namespace.

A module marked ``pytestmark = pytest.mark.metadata_backends`` (the catalog suites' pattern,
tests/conftest.py) runs each test twice: against that server, and against a second session server
whose lake keeps its metadata in PostgreSQL (a schema of its own on the session's throw-away
cluster). The PostgreSQL server is started only when such a test runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import wharf
from tests import servers
from wharf.server.background import BackgroundServer, free_port, serve_in_background
from wharf.server.config import ServerConfig


@dataclass
class RunningServer:
    url: str
    lake: wharf.Lakehouse
    config: ServerConfig

    def catalog(self, **properties: Any) -> Any:
        """A PyIceberg REST catalog client of this server."""
        from pyiceberg.catalog import load_catalog

        return load_catalog("wharf", **{"type": "rest", "uri": self.url, **properties})


def _serve(root: Path, metadata_url: str | None) -> Iterator[RunningServer]:
    lake = wharf.connect(root, user="owner", metadata_url=metadata_url)
    background = serve_in_background(lake)
    try:
        yield RunningServer(background.url, lake, background.config)
    finally:
        background.stop()
        lake.close()


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The session's server over a lake with its metadata in the lake directory's ``wharf.db``."""
    yield from _serve(tmp_path_factory.mktemp("served") / "lake", None)


@pytest.fixture(scope="session")
def postgres_backed_server(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[RunningServer]:
    """The session's server over a lake with its metadata in PostgreSQL (``--metadata-url``)."""
    metadata_url = servers.create_database(postgres_server)
    yield from _serve(tmp_path_factory.mktemp("served-pg") / "lake", metadata_url)


@pytest.fixture
def server(request: pytest.FixtureRequest, metadata_backend: str) -> RunningServer:
    """The session server for this test's metadata backend (SQLite unless the module is marked)."""
    name = "postgres_backed_server" if metadata_backend == "postgresql" else "sqlite_server"
    running: RunningServer = request.getfixturevalue(name)
    return running


@pytest.fixture
def namespace(server: RunningServer) -> str:
    """A fresh namespace for one test (created through Wharf SQL)."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    server.lake.sql(f"CREATE NAMESPACE {name}")
    return name


@pytest.fixture
def http(server: RunningServer) -> Iterator[Any]:
    import httpx

    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def lake_root(server: RunningServer) -> Path:
    return Path(server.config.lake)


__all__ = ["BackgroundServer", "RunningServer", "free_port"]


@pytest.fixture(scope="session")
def ray_address() -> str:
    """The session's local Ray cluster (tests/servers.py: started by the first process that asks, shared)."""
    try:
        return servers.ray_cluster()
    except servers.ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
