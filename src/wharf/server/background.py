"""A server in a background thread of this process: for notebooks, tests and demos.

>>> from wharf.server.background import serve_in_background
>>> with serve_in_background("my-lake") as server:  # doctest: +SKIP
...     print(server.url)                        # a free port on loopback, --no-auth
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from wharf.errors import WharfError
from wharf.server import create_app, require_server_extra
from wharf.server.config import ServerConfig

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class BackgroundServer:
    """uvicorn serving a lake from a daemon thread; ``stop()`` (or leaving the ``with``) shuts it down gracefully."""

    def __init__(self, app: Any, config: ServerConfig) -> None:
        import uvicorn

        self.app = app
        self.config = config
        self.url = f"http://{config.host}:{config.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=config.graceful_timeout_s,
                timeout_keep_alive=config.keep_alive_s,
            )
        )
        self._thread = threading.Thread(target=self._server.run, name=f"wharf-server-{config.port}", daemon=True)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def start(self, timeout_s: float = 60) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise WharfError(f"The server on port {self.config.port} did not start", hint="is the port in use?")
            time.sleep(0.01)
        return self

    def request_stop(self) -> None:
        """Begin a graceful shutdown (what SIGTERM does) without waiting for it."""
        self._server.should_exit = True

    def stop(self, timeout_s: float = 60) -> None:
        self.request_stop()
        self._thread.join(timeout=timeout_s)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def serve_in_background(
    lake: str | Lakehouse, *, port: int | None = None, no_auth: bool = True, **settings: Any
) -> BackgroundServer:
    """Start serving ``lake`` (a path, or an open ``Lakehouse`` to share) on loopback; returns once it accepts requests.

    ``settings`` are ``ServerConfig`` fields (``authenticator``, ``warehouse`` …); pass
    ``authenticator=`` an ``Authenticator`` object to use it directly.
    """
    require_server_extra()
    from wharf.lakehouse import Lakehouse

    authenticator = settings.pop("authenticator", None)
    path = str(lake.location) if isinstance(lake, Lakehouse) else str(lake)
    config = ServerConfig(lake=path, port=port or free_port(), no_auth=no_auth, **settings)
    app = create_app(config, lake=lake if isinstance(lake, Lakehouse) else None, authenticator=authenticator)
    return BackgroundServer(app, config).start()


__all__ = ["BackgroundServer", "free_port", "serve_in_background"]
