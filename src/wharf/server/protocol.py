"""The HTTP protocol ``wharf serve --workers N`` runs: uvicorn's, with Nagle's algorithm off on every connection.

asyncio turns on ``TCP_NODELAY`` only for sockets whose ``proto`` is ``IPPROTO_TCP``. With
``--workers``, uvicorn binds the listening socket itself as ``socket.socket(AF_INET, SOCK_STREAM)``
(``proto`` 0) and hands it to the worker processes, so the connections they accept keep Nagle's
algorithm on. A response is written in two sends (headers, then body), the second waits for the
client's delayed ACK, and every request took ~40 ms more on an idle server (found by
``python -m bench server``: ``/healthz`` answered in 44 ms with two workers, 3 ms with one).
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol

# What uvicorn's ``http=`` setting takes to use this protocol (an import string, so worker processes load it).
NO_DELAY_PROTOCOL = "wharf.server.protocol:NoDelayHTTPProtocol"


class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]  # uvicorn picks h11 or httptools at import
    """uvicorn's HTTP/1.1 protocol (h11, or httptools when installed) with ``TCP_NODELAY`` set on connect."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # the peer already went away: uvicorn handles the closed connection
                pass
        super().connection_made(transport)


__all__ = ["NO_DELAY_PROTOCOL", "NoDelayHTTPProtocol"]
