"""One Wharf server per test session (per xdist worker), shared by every server test.

It runs uvicorn in a thread on a free loopback port, with ``--no-auth``, over a lake in a
temporary directory. Tests keep out of each other's way by working in their own namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import wharf
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


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("served") / "lake"
    lake = wharf.connect(root, user="owner")
    background = serve_in_background(lake)
    try:
        yield RunningServer(background.url, lake, background.config)
    finally:
        background.stop()
        lake.close()


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
