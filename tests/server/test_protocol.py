"""Connection handling: ``wharf serve --workers N`` connections have Nagle's algorithm off
(wharf.server.protocol), and idle keep-alive connections outlive clients' idle timeouts.

uvicorn binds the listening socket of a multi-worker server itself, with ``proto`` 0, so asyncio
does not set ``TCP_NODELAY`` on the connections the workers accept; responses then waited for
the client's delayed ACK (~40 ms a request). These tests serve over such a socket and read the
option on the server's side of an open connection.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import wharf
from wharf.errors import InvalidArgument
from wharf.server.background import serve_in_background
from wharf.server.config import ServerConfig, load_config
from wharf.server.protocol import NO_DELAY_PROTOCOL


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


@contextmanager
def served(http: str) -> Iterator[tuple[uvicorn.Server, str]]:
    # As uvicorn's multi-worker supervisor binds it (uvicorn.Config.bind_socket): proto 0.
    sock = socket.socket(family=socket.AF_INET, type=socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(hello, http=http, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def server_side_nodelay(http: str) -> list[int]:
    with served(http) as (server, url), httpx.Client() as client:
        assert client.get(url).text == "hello"  # the keep-alive connection stays open
        return [
            protocol.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            for protocol in list(server.server_state.connections)
        ]


def test_connections_have_nagle_off() -> None:
    flags = server_side_nodelay(NO_DELAY_PROTOCOL)
    assert flags and all(flags)


def test_uvicorns_own_protocol_leaves_nagle_on_over_such_a_socket() -> None:
    """Why wharf.server.protocol exists; when this fails, uvicorn (or asyncio) sets it and the protocol can go."""
    flags = server_side_nodelay("auto")
    assert flags and not any(flags)


def _read_response(sock: socket.socket) -> None:
    """Read one whole HTTP/1.1 200 response (headers, then a Content-Length body), however it is split into segments."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before answering"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk


def _idle_connection_open(url: str, idle_s: float, wait_s: float = 0.5) -> bool:
    """Send a keep-alive request on a raw socket, stay idle ``idle_s``, then see whether the server closes it
    within ``wait_s`` more (a busy machine may run the server's idle timer late)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        _read_response(sock)  # all of it: a body byte read after the idle wait would look like an open connection
        time.sleep(idle_s)
        sock.settimeout(wait_s)
        try:
            return sock.recv(1) != b""  # b"": the server closed the connection (an idle client sees no data)
        except TimeoutError:
            return True


def test_idle_keep_alive_connections_outlive_clients_idle_timeouts(tmp_path: Path) -> None:
    """Clients close idle connections first (httpx after 5 s): a server closing as one is reused fails that request."""
    assert ServerConfig().keep_alive_s > 60
    assert load_config(None, environ={"WHARF_KEEP_ALIVE_S": "90"}).keep_alive_s == 90
    with pytest.raises(InvalidArgument, match="keep_alive_s"):
        ServerConfig(keep_alive_s=0)
    with wharf.connect(tmp_path / "lake") as lake:
        with serve_in_background(lake, keep_alive_s=1) as short:
            assert not _idle_connection_open(short.url, 1.5, wait_s=15)  # closed well before the default 75 s
        with serve_in_background(lake) as default:
            assert _idle_connection_open(default.url, 2)
