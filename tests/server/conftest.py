"""One Wharf server per test session (per xdist worker), shared by every server test.

It runs uvicorn in a thread on a free loopback port, with ``--no-auth``, over a lake in a
temporary directory. Tests keep out of each other's way by working in their own namespace.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import wharf
from wharf.server.config import ServerConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    lake: wharf.Lakehouse
    config: ServerConfig

    def catalog(self, **properties: Any) -> Any:
        """A PyIceberg REST catalog client of this server."""
        from pyiceberg.catalog import load_catalog

        return load_catalog("wharf", **{"type": "rest", "uri": self.url, **properties})


class ThreadedServer:
    """uvicorn serving an app in a background thread; ``stop`` is a graceful shutdown."""

    def __init__(self, app: Any, port: int, graceful_timeout_s: int = 30) -> None:
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=graceful_timeout_s
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    from wharf.server import create_app

    root = tmp_path_factory.mktemp("served") / "lake"
    lake = wharf.connect(root, user="owner")
    port = free_port()
    config = ServerConfig(lake=str(root), port=port, no_auth=True)
    threaded = ThreadedServer(create_app(config, lake=lake), port)
    threaded.start()
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", lake, config)
    finally:
        threaded.stop()
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
