"""DuckDB: one in-process database per lakehouse, extensions loaded from pip packages by path."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import duckdb

from wharf.errors import MissingExtra

# Extensions that must be loaded before others (DuckDB's iceberg extension needs avro).
_PREREQUISITES: dict[str, tuple[str, ...]] = {"iceberg": ("avro",)}


def connect_duckdb(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB configured for Wharf: UTC session time zone, no auto-install."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
    }
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET TimeZone = 'UTC'")
    if threads or os.environ.get("WHARF_THREADS"):
        con.execute(f"SET threads = {int(threads or os.environ['WHARF_THREADS'])}")
    return con


def extension_path(name: str) -> Path:
    """Return the ``.duckdb_extension`` file shipped by the pip package ``duckdb-extension-<name>``."""
    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError as exc:
        raise MissingExtra(
            f"DuckDB extension '{name}' is not installed",
            hint=f"pip install 'duckdb-extension-{name}=={duckdb.__version__}'",
        ) from exc
    root = Path(module.__file__ or "").parent
    found = sorted(root.rglob(f"{name}.duckdb_extension"))
    if not found:
        raise MissingExtra(f"The package duckdb-extension-{name} ships no {name}.duckdb_extension file")
    return found[0]


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load a DuckDB extension from its pip package (never downloads)."""
    for dep in _PREREQUISITES.get(name, ()):
        load_extension(con, dep)
    loaded = con.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = ?", [name]
    ).fetchone()
    if loaded and loaded[0]:
        return
    con.execute(f"LOAD '{extension_path(name)}'")
