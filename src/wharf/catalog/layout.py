"""Where one lake's parts live: its metadata database, its warehouse, its commit locks.

Three shapes, chosen by what ``wharf.connect`` is given:

=============================================  ======================================  ==========================
``connect(…)``                                 metadata                                warehouse
=============================================  ======================================  ==========================
``"/data/lake"``                               ``/data/lake/wharf.db`` (SQLite)        ``/data/lake/warehouse``
``"/data/lake", metadata_url="postgresql://…"``  PostgreSQL                              ``/data/lake/warehouse``
``"s3://bucket/prefix", metadata_url=…``       PostgreSQL, or SQLite at ``sqlite:///…``  ``s3://bucket/prefix``
=============================================  ======================================  ==========================

A metadata database outside the lake directory records the warehouse it belongs to (so two
directories cannot share one database by mistake), and a lake directory whose metadata is
elsewhere holds a marker naming it (so opening the directory without the URL is refused rather
than silently starting an empty lake beside the real one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wharf.catalog.backends import backend_of, metadata_url_from_env, parse_metadata_url, redact
from wharf.errors import InvalidArgument
from wharf.storage import is_object_store

DATABASE_FILE = "wharf.db"
WAREHOUSE_DIR = "warehouse"
# In a lake directory whose metadata database lives elsewhere: the database's URL, password removed.
MARKER_FILE = "wharf-metadata-url"


@dataclass(frozen=True)
class LakeLayout:
    """The resolved parts of one lake."""

    location: str  # what the user named: the lake directory, or the warehouse URL
    warehouse: str  # URI: file:///…/warehouse or s3://bucket/prefix
    metadata_url: str  # SQLAlchemy URL (driver included)
    directory: Path | None  # the local lake directory (None for a lake in object storage)
    external_metadata: bool  # the metadata database is not the lake directory's wharf.db

    @property
    def dialect(self) -> str:
        return backend_of(self.metadata_url).name

    @property
    def lock_directory(self) -> Path | None:
        """Where file-based commit locks go (None: the database provides the locks)."""
        if self.dialect != "sqlite":
            return None
        if self.directory is not None:
            return self.directory
        from sqlalchemy.engine import make_url

        return Path(make_url(self.metadata_url).database or ".").resolve().parent


def resolve_layout(lake: str | Path, metadata_url: str | None = None) -> LakeLayout:
    """The layout of the lake at ``lake`` (a directory or ``s3://bucket/prefix``).

    ``metadata_url`` defaults to ``$WHARF_METADATA_URL``; without either, a directory's metadata is
    its ``wharf.db``. Raises ``InvalidArgument`` when the combination cannot be right.
    """
    url = metadata_url or metadata_url_from_env()
    location = str(lake)
    if is_object_store(location):
        if url is None:
            raise InvalidArgument(
                f"The lake at {location} is in object storage and needs a metadata database",
                hint="pass metadata_url='postgresql://…' (or a local 'sqlite:////path/wharf.db'), "
                "or set $WHARF_METADATA_URL; see docs/storage.md",
            )
        parsed = parse_metadata_url(url)
        return LakeLayout(location, location.rstrip("/"), parsed.render_as_string(hide_password=False), None, True)
    directory = Path(location).expanduser()
    warehouse = (directory / WAREHOUSE_DIR).resolve().as_uri()
    marker = directory / MARKER_FILE
    if url is None:
        if marker.exists() and not (directory / DATABASE_FILE).exists():
            raise InvalidArgument(
                f"The metadata of the lake at {directory} is not in the directory: it lives in {marker.read_text().strip()}",
                hint="pass metadata_url=… (wharf --metadata-url …, or $WHARF_METADATA_URL) to open it",
            )
        sqlite = f"sqlite:///{directory / DATABASE_FILE}"
        return LakeLayout(location, warehouse, sqlite, directory, False)
    parsed = parse_metadata_url(url)
    if (directory / DATABASE_FILE).exists():
        raise InvalidArgument(
            f"The lake at {directory} keeps its metadata in {directory / DATABASE_FILE}, not in {redact(parsed)}",
            hint="open it without a metadata URL (unset $WHARF_METADATA_URL), or start the lake in a new directory",
        )
    return LakeLayout(location, warehouse, parsed.render_as_string(hide_password=False), directory, True)


def prepare(layout: LakeLayout) -> None:
    """Create the lake directory and its warehouse if this is a local lake."""
    if layout.directory is None:
        return
    layout.directory.mkdir(parents=True, exist_ok=True)
    (layout.directory / WAREHOUSE_DIR).mkdir(exist_ok=True)


def mark(layout: LakeLayout) -> None:
    """Record in a local lake directory where its metadata lives (once the database was opened)."""
    if layout.directory is not None and layout.external_metadata:
        marker = layout.directory / MARKER_FILE
        if not marker.exists():
            marker.write_text(redact(layout.metadata_url) + "\n")
