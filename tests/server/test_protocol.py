"""``wharf serve --workers N`` connections have Nagle's algorithm off (wharf.server.protocol).

uvicorn binds the listening socket of a multi-worker server itself, with ``proto`` 0, so asyncio
does not set ``TCP_NODELAY`` on the connections the workers accept; responses then waited for
the client's delayed ACK (~40 ms a request). These tests serve over such a socket and read the
option on the server's side of an open connection.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

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
