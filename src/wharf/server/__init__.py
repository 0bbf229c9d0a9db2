"""``wharf serve``: the lake behind HTTP — the Iceberg REST catalog for every engine (see docs/server.md).

FastAPI and uvicorn are the ``server`` extra (``pip install 'wharf-lakehouse[server]'``); this
package imports them only when a server is built, so the embedded lake never needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wharf.errors import MissingExtra

if TYPE_CHECKING:
    from fastapi import FastAPI

    from wharf.server.config import ServerConfig


def require_server_extra() -> None:
    """Raise ``MissingExtra`` naming the install command when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(
            f"wharf serve needs the server extra ({exc.name} is not installed)",
            hint="pip install 'wharf-lakehouse[server]'",
        ) from exc


def create_app(config: ServerConfig, **kwargs: Any) -> FastAPI:
    """The FastAPI application for ``config`` (see ``wharf.server.app.create_app``)."""
    require_server_extra()
    from wharf.server.app import create_app as build

    return build(config, **kwargs)


__all__ = ["create_app", "require_server_extra"]
