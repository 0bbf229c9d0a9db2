"""DuckDB: the in-process databases a lake runs statements on, extensions loaded from pip packages by path.

A lake has up to two DuckDB databases:

- **open**, for principals allowed external access (the lake owner): DuckDB as it comes, so the
  owner can join a lake table with ``read_csv('local.csv')``;
- **governed**, for everyone else: created with ``enable_external_access = false``, file access
  limited to the lake directory (``allowed_directories``), and the configuration locked, so no
  statement can widen it again. Wharf's own reads of the lake's Parquet files work; a file or URL
  outside the lake cannot be read or written, whatever SQL reaches the engine. The SQL guard
  (``wharf.sql.guard``) refuses file functions even inside the lake, so table data is only read
  through the reference pipeline, where policies apply.

Each statement runs on its own cursor (a DuckDB connection to the shared database), so
statements from several threads run concurrently.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import duckdb

from wharf.errors import MissingExtra
from wharf.principal import Principal
from wharf.storage import duckdb_secret_sql

# Extensions that must be loaded before others (DuckDB's iceberg extension needs avro).
_PREREQUISITES: dict[str, tuple[str, ...]] = {"iceberg": ("avro",)}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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


def configure_object_storage(con: duckdb.DuckDBPyConnection, properties: Mapping[str, str] | None) -> None:
    """Let ``con`` read and write ``s3://`` with the lake's S3 settings (``wharf.storage``).

    Loads the httpfs extension from its pip package and creates a DuckDB secret from the same
    settings PyIceberg's FileIO uses. ``properties`` None: the lake uses no object storage.
    """
    if properties is None:
        return
    load_extension(con, "httpfs")
    secret = duckdb_secret_sql(properties)
    if secret is not None:
        con.execute(secret)


def connect_governed(
    root: Path, extra: Sequence[str] = (), threads: int | None = None, storage: Mapping[str, str] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can touch no file outside ``root`` (and ``extra`` directories or
    bucket prefixes) and no other network location, with its settings locked. ``storage``: S3
    settings, for a lake with files in object storage."""
    con = connect_duckdb(threads)
    configure_object_storage(con, storage)  # before the configuration is locked
    base = str(root.resolve())
    spill = Path(base) / ".duckdb_tmp"
    allowed = ", ".join(_quote(d.rstrip(os.sep) + os.sep) for d in [base, *extra])
    # Order matters: allowed directories can only be set while external access is still on, and
    # nothing at all can be set once the configuration is locked.
    con.execute(f"SET temp_directory = {_quote(str(spill))}")
    con.execute(f"SET allowed_directories = [{allowed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


class Engines:
    """The DuckDB databases of one lake (the governed one is created on first use)."""

    def __init__(
        self,
        root: Path,
        extra_directories: Callable[[], Sequence[str]] = tuple,
        storage: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.extra_directories = extra_directories
        self.storage = storage
        self.open = connect_duckdb()
        configure_object_storage(self.open, storage)
        self._governed: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    @property
    def governed(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._governed is None:
                self._governed = connect_governed(self.root, self.extra_directories(), storage=self.storage)
            return self._governed

    def enable_object_storage(self, storage: Mapping[str, str]) -> None:
        """Let both databases reach object storage from now on (a bucket location was registered)."""
        with self._lock:
            if self.storage is None:
                self.storage = storage
                configure_object_storage(self.open, storage)
            self._governed = None

    def reset_governed(self) -> None:
        """Build the governed database anew on next use (its allowed directories changed).

        Statements already running keep their connection to the old one until they finish.
        """
        with self._lock:
            self._governed = None

    def database_for(self, principal: Principal) -> duckdb.DuckDBPyConnection:
        """The database ``principal``'s statements run on."""
        return self.open if principal.external_access else self.governed

    def cursor(self, principal: Principal) -> duckdb.DuckDBPyConnection:
        """A new connection for one statement of ``principal``."""
        return self.database_for(principal).cursor()

    def close(self) -> None:
        self.open.close()
        if self._governed is not None:
            self._governed.close()


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
    loaded = con.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = ?", [name]).fetchone()
    if loaded and loaded[0]:
        return
    con.execute(f"LOAD '{extension_path(name)}'")
