"""Where a lake's files may live: the warehouse, plus external locations the owner registered.

Every location Wharf would write to — a table's location, its ``write.data.path`` and
``write.metadata.path`` properties, a namespace's location, the files a client commits — must
resolve inside one of these roots. Paths are normalised first (``..`` segments collapsed, ``file:``
URIs unquoted), so ``warehouse/db/../../elsewhere`` is outside; relative paths are refused (they
would depend on the writer's working directory).
"""

from __future__ import annotations

import os
import posixpath
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from sqlalchemy import column, delete, insert, select, table
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from wharf.errors import AccessDenied, InvalidArgument

if TYPE_CHECKING:
    from wharf.catalog.freshness import ChangeToken

# Table properties that redirect where a table's files are written (Iceberg's, current and legacy).
PATH_PROPERTIES = (
    "write.data.path",
    "write.metadata.path",
    "write.object-storage.path",
    "write.folder-storage.path",
)

_LOCATIONS = table("wharf_locations", column("location"), column("registered_by"), column("registered_at_ms"))


def normalize(location: str) -> str:
    """A comparable form of a location: ``file:///a/b/../c`` and ``/a/c`` are both ``file:///a/c``.

    Raises ``InvalidArgument`` for a relative path.
    """
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme == "file" else location
        if not os.path.isabs(path):
            raise InvalidArgument(
                f"Location '{location}' is a relative path", hint="give an absolute path or a URI (file:///…, s3://…)"
            )
        return "file://" + posixpath.normpath(path).rstrip("/")
    # One leading slash: normpath keeps a leading "//" (POSIX gives it a meaning), which would
    # make s3://b//x and s3://b/x different roots.
    path = posixpath.normpath("/" + unquote(parsed.path).lstrip("/")) if parsed.path else ""
    return f"{parsed.scheme}://{parsed.netloc}{path}".rstrip("/")


def inside(location: str, root: str) -> bool:
    """Whether normalised ``location`` is ``root`` or below it."""
    return location == root or location.startswith(root + "/")


class Locations:
    """The allowed roots of one lake: its warehouse and the registered external locations."""

    def __init__(self, engine: Engine, warehouse: str) -> None:
        self.engine = engine
        self.warehouse = normalize(warehouse)
        self.freshness: ChangeToken | None = None
        self._known: tuple[int, tuple[str, ...]] | None = None

    def registered(self) -> list[str]:
        """External locations, as registered (normalised).

        Every commit checks its files against them: reused while the catalog database is
        unchanged (``freshness``, set by the catalog), read again after any change.
        """
        token = self.freshness.current() if self.freshness is not None else None
        if token is not None and self._known is not None and self._known[0] == token:
            return list(self._known[1])
        with self.engine.connect() as conn:
            found = sorted(str(r[0]) for r in conn.execute(select(_LOCATIONS.c.location)))
        if token is not None:
            self._known = (token, tuple(found))
        return found

    def roots(self) -> list[str]:
        return [self.warehouse, *self.registered()]

    def register(self, location: str, by: str) -> str:
        """Allow tables to use ``location`` (idempotent); returns its normalised form."""
        normal = normalize(location)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(_LOCATIONS).values(location=normal, registered_by=by, registered_at_ms=int(time.time() * 1000))
                )
        except IntegrityError:
            pass  # registered already
        return normal

    def unregister(self, location: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(_LOCATIONS).where(_LOCATIONS.c.location == normalize(location)))

    def check(self, location: str, what: str, roots: list[str] | None = None) -> None:
        """Raise ``AccessDenied`` unless ``location`` lies inside an allowed root."""
        normal = normalize(location)
        allowed = roots if roots is not None else self.roots()
        if not any(inside(normal, root) for root in allowed):
            raise AccessDenied(
                f"{what} '{location}' is outside the lake's warehouse and its registered locations",
                hint="write inside the warehouse, or have the lake owner register the location: "
                f"lake.register_location('{location}')",
            )
