"""Run the server: one process, or ``workers`` processes sharing one listening socket (uvicorn's supervisor).

Workers are separate processes that each open the lake; commits from all of them serialise in
the catalog (compare-and-swap on the metadata pointer), as commits from separate programs do.
On SIGINT/SIGTERM uvicorn stops accepting connections and lets in-flight requests — commits
included — finish for up to ``graceful_timeout_s`` seconds before the lake is closed.
"""

from __future__ import annotations

import os

from wharf.server import require_server_extra
from wharf.server.config import WORKER_CONFIG_ENV, ServerConfig
from wharf.server.logs import configure_logging, uvicorn_log_config

WORKER_HEALTHCHECK_S = 120
# How long a thread holding the interpreter runs before one waiting for it gets a turn (Python's
# default: 5 ms). A catalog request (loadTable: ~0.2 ms of work) needs the interpreter several
# times — the event loop, the thread pool, the event loop again — and each time it may wait a
# whole interval behind a thread compiling a query or committing. Measured with the server
# benchmark's load, alternating 1 ms and 5 ms every 10 s in the same servers (two runs, shared
# machine): loadTable p90 41 vs 60 ms and 31 vs 38 ms, cached queries' p90 39 vs 65 and 32 vs 47
# ms, throughput unchanged; 0.5 ms was no better than 5 ms.
SWITCH_INTERVAL_S = 0.001


def tune_interpreter() -> None:
    """Settings of a server process's interpreter (``SWITCH_INTERVAL_S``); called before it serves."""
    import sys

    sys.setswitchinterval(SWITCH_INTERVAL_S)


def serve(config: ServerConfig) -> None:
    """Serve ``config.lake`` until interrupted."""
    require_server_extra()
    import uvicorn

    from wharf.server.protocol import NO_DELAY_PROTOCOL

    configure_logging(config.log_level)
    tune_interpreter()  # this process serves with --workers 1; app_from_environment tunes each worker
    common = {
        "host": config.host,
        "port": config.port,
        "log_config": uvicorn_log_config(config.log_level),
        "access_log": False,
        "timeout_graceful_shutdown": config.graceful_timeout_s,
        "timeout_keep_alive": config.keep_alive_s,
        "server_header": False,
        "proxy_headers": False,
        # Nagle's algorithm off on accepted connections: with --workers uvicorn's own socket does
        # not get TCP_NODELAY from asyncio, which cost ~40 ms a request (wharf.server.protocol).
        "http": NO_DELAY_PROTOCOL,
    }
    if config.workers == 1:
        from wharf.server.app import create_app

        uvicorn.run(create_app(config), **common)  # type: ignore[arg-type]
        return
    os.environ[WORKER_CONFIG_ENV] = config.to_json()
    # A worker imports Wharf (and its engines) before it can answer the supervisor's health
    # check; on a busy machine that takes longer than uvicorn's 5-second default, which would
    # kill and restart workers in a loop.
    uvicorn.run(
        "wharf.server.app:app_from_environment",
        factory=True,
        workers=config.workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        **common,  # type: ignore[arg-type]
    )
