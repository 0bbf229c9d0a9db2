"""Where a lake's metadata database lives: SQLite inside the lake directory, or PostgreSQL for a served lake.

A lake's metadata (the Iceberg catalog's tables plus Wharf's own) is one SQLAlchemy database. By
default it is ``wharf.db`` in the lake directory; ``wharf.connect(path, metadata_url=…)``,
``wharf --metadata-url …`` or ``$WHARF_METADATA_URL`` put it elsewhere:

- ``postgresql://user:password@host:5432/dbname`` — PostgreSQL through psycopg 3 (the
  ``postgres`` extra); several processes and machines share it;
- ``sqlite:////absolute/path/wharf.db`` — a SQLite file outside the lake directory (for an S3
  warehouse with local metadata).

Dialect differences are data here (``BACKENDS``), not ``if`` chains elsewhere: how to spell the
URL for SQLAlchemy and how to size the connection pool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from wharf.errors import InvalidArgument, MissingExtra

METADATA_URL_ENV = "WHARF_METADATA_URL"


@dataclass(frozen=True)
class Backend:
    """What Wharf needs to know about one kind of metadata database."""

    name: str
    driver: str  # the SQLAlchemy driver Wharf uses for it
    module: str  # the Python module that driver needs (checked before connecting)
    extra: str | None  # the pip extra that installs it
    # create_engine keywords. PostgreSQL: a small pool per process (a server runs several worker
    # processes, each with a few threads) that checks connections before use, so a restarted
    # database or a connection closed by a proxy costs a reconnect, not a failed statement.
    engine_options: dict[str, Any] = field(default_factory=dict)


BACKENDS: dict[str, Backend] = {
    "sqlite": Backend("sqlite", "pysqlite", "sqlite3", None),
    "postgresql": Backend(
        "postgresql",
        "psycopg",
        "psycopg",
        "postgres",
        {"pool_size": 5, "max_overflow": 10, "pool_pre_ping": True, "pool_recycle": 1800, "pool_timeout": 60},
    ),
}
_ALIASES = {"postgres": "postgresql", "pgsql": "postgresql"}


def metadata_url_from_env() -> str | None:
    """``$WHARF_METADATA_URL``, if set and not empty."""
    return os.environ.get(METADATA_URL_ENV) or None


def parse_metadata_url(url: str) -> URL:
    """The SQLAlchemy URL for a metadata URL as a user writes it (``postgresql://…`` uses psycopg 3).

    Raises ``InvalidArgument`` for something that is not a database URL Wharf supports, and
    ``MissingExtra`` when the backend's driver is not installed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidArgument(
            f"Metadata URL '{redact(url)}' is not a database URL",
            hint="use postgresql://user:password@host:5432/dbname or sqlite:////absolute/path/wharf.db",
        ) from exc
    dialect = _ALIASES.get(parsed.get_backend_name(), parsed.get_backend_name())
    backend = BACKENDS.get(dialect)
    if backend is None:
        raise InvalidArgument(
            f"Metadata URL '{redact(url)}' names the database '{dialect}', which Wharf does not support",
            hint="supported: " + ", ".join(f"{name}://…" for name in BACKENDS),
        )
    if dialect == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise InvalidArgument(
            f"Metadata URL '{url}' names no SQLite file",
            hint="give a file, e.g. sqlite:////absolute/path/wharf.db (an in-memory catalog would lose the lake)",
        )
    _require(backend)
    return parsed.set(drivername=f"{dialect}+{backend.driver}")


def backend_of(url: URL | str) -> Backend:
    """The ``Backend`` of a (parsed) metadata URL."""
    parsed = make_url(url) if isinstance(url, str) else url
    name = parsed.get_backend_name()
    return BACKENDS[_ALIASES.get(name, name)]


def engine_options(url: URL | str) -> dict[str, Any]:
    """``create_engine`` keywords for a metadata URL's backend (none for a database Wharf does not know)."""
    name = (make_url(url) if isinstance(url, str) else url).get_backend_name()
    backend = BACKENDS.get(_ALIASES.get(name, name))
    return dict(backend.engine_options) if backend is not None else {}


def redact(url: URL | str) -> str:
    """The URL without its password: safe for messages and logs."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<not a URL>"
    return parsed.render_as_string(hide_password=True)


def _require(backend: Backend) -> None:
    import importlib.util

    if importlib.util.find_spec(backend.module) is None:
        raise MissingExtra(
            f"The {backend.name} metadata backend needs the Python package '{backend.module}', which is not installed",
            hint=f"pip install 'wharf-lakehouse[{backend.extra}]'" if backend.extra else f"pip install {backend.module}",
        )
