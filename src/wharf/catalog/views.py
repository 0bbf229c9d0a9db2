"""Iceberg views in the lake's catalog: view metadata files (the Iceberg view spec) plus a catalog row.

PyIceberg's SQL catalog has the view models but no view storage; this module stores views the way
Iceberg's JDBC catalog does — a row in ``iceberg_tables`` with ``iceberg_type = 'VIEW'`` pointing at
the view's current ``metadata.json`` — so PyIceberg (through ``LakeCatalog``) and, later, REST
clients see the same views. Each change writes a new metadata file and swaps the row's location
(compare-and-swap, like a table commit); a version keeps one SQL representation per dialect.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchViewError, TableAlreadyExistsError, ViewAlreadyExistsError
from pyiceberg.io import FileIO
from pyiceberg.schema import Schema
from pyiceberg.typedef import EMPTY_DICT, Identifier, Properties
from pyiceberg.view import View
from pyiceberg.view.metadata import ViewHistoryEntry, ViewMetadata, ViewVersion
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from wharf import pyiceberg_compat as compat
from wharf.errors import ConflictError

VIEW_TYPE = "VIEW"
_TABLES = compat.SQL_CATALOG_TABLE


class ViewStore:
    """View storage for ``LakeCatalog`` (a mixin: it uses the catalog's engine, name and file IO)."""

    engine: Any
    name: str
    properties: Properties

    # --- reading -------------------------------------------------------------------------------

    def _view_row(self, identifier: Identifier) -> str | None:
        namespace, name = Catalog.namespace_to_string(identifier[:-1]), identifier[-1]
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    f"SELECT metadata_location FROM {_TABLES} WHERE catalog_name = :c AND table_namespace = :n "
                    "AND table_name = :t AND iceberg_type = :v"
                ),
                {"c": self.name, "n": namespace, "t": name, "v": VIEW_TYPE},
            ).first()
        return str(row[0]) if row else None

    def view_metadata_location(self, identifier: str | Identifier) -> str | None:
        """The view's current metadata file, or None if there is no such view."""
        return self._view_row(Catalog.identifier_to_tuple(identifier))

    def view_exists(self, identifier: str | Identifier) -> bool:
        return self._view_row(Catalog.identifier_to_tuple(identifier)) is not None

    def load_view(self, identifier: str | Identifier) -> View:
        ident = Catalog.identifier_to_tuple(identifier)
        location = self._view_row(ident)
        if location is None:
            raise NoSuchViewError(f"View does not exist: {'.'.join(ident)}")
        return View(ident, _read(self._io(location), location))

    def list_views(self, namespace: str | Identifier) -> list[Identifier]:
        ns = Catalog.namespace_to_string(Catalog.identifier_to_tuple(namespace))
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT table_name FROM {_TABLES} WHERE catalog_name = :c AND table_namespace = :n AND iceberg_type = :v"),
                {"c": self.name, "n": ns, "v": VIEW_TYPE},
            ).fetchall()
        return [(*Catalog.identifier_to_tuple(namespace), str(r[0])) for r in rows]

    # --- writing --------------------------------------------------------------------------------

    def create_view(
        self,
        identifier: str | Identifier,
        schema: Schema | Any,
        view_version: ViewVersion,
        location: str | None = None,
        properties: Properties = EMPTY_DICT,
    ) -> View:
        ident = Catalog.identifier_to_tuple(identifier)
        namespace = Catalog.namespace_to_string(ident[:-1])
        if not self.namespace_exists(namespace):  # type: ignore[attr-defined]  # SqlCatalog's
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        base = location or f"{str(self.properties['warehouse']).rstrip('/')}/{namespace}/{ident[-1]}"
        schema = Schema(*schema.fields, schema_id=0)
        version = view_version.model_copy(update={"version_id": 1, "schema_id": 0})
        metadata = ViewMetadata(
            view_uuid=str(uuid.uuid4()),
            format_version=1,
            location=base,
            schemas=[schema],
            current_version_id=1,
            versions=[version],
            version_log=[ViewHistoryEntry(timestamp_ms=version.timestamp_ms, version_id=1)],
            properties=dict(properties),
        )
        path = _metadata_path(base, 0)
        io = self._io(path)
        _write(io, path, metadata)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        f"INSERT INTO {_TABLES} (catalog_name, table_namespace, table_name, metadata_location, "
                        "previous_metadata_location, iceberg_type) VALUES (:c, :n, :t, :m, NULL, :v)"
                    ),
                    {"c": self.name, "n": namespace, "t": ident[-1], "m": path, "v": VIEW_TYPE},
                )
        except IntegrityError as exc:
            io.delete(path)
            raise ViewAlreadyExistsError(f"A table or view {'.'.join(ident)} already exists") from exc
        return View(ident, metadata)

    def replace_view(
        self, identifier: str | Identifier, schema: Schema | None, view_version: ViewVersion | None, properties: Properties
    ) -> View:
        """A new version (``CREATE OR REPLACE VIEW``, ``ALTER VIEW … AS``) and/or new properties."""
        ident = Catalog.identifier_to_tuple(identifier)
        previous = self._view_row(ident)
        if previous is None:
            raise NoSuchViewError(f"View does not exist: {'.'.join(ident)}")
        io = self._io(previous)
        metadata = _read(io, previous)
        update: dict[str, Any] = {"properties": {**metadata.properties, **properties}}
        if view_version is not None and schema is not None:
            schema_id = max(s.schema_id for s in metadata.schemas) + 1
            version_id = max(v.version_id for v in metadata.versions) + 1
            version = view_version.model_copy(update={"version_id": version_id, "schema_id": schema_id})
            update |= {
                "schemas": [*metadata.schemas, Schema(*schema.fields, schema_id=schema_id)],
                "versions": [*metadata.versions, version],
                "current_version_id": version_id,
                "version_log": [
                    *metadata.version_log,
                    ViewHistoryEntry(timestamp_ms=version.timestamp_ms, version_id=version_id),
                ],
            }
        new = metadata.model_copy(update=update)
        path = _metadata_path(metadata.location, _version_of(previous) + 1)
        _write(io, path, new)
        self._swap(ident, previous, path)
        return View(ident, new)

    def set_view_properties(self, identifier: str | Identifier, removals: set[str], updates: Properties) -> View:
        ident = Catalog.identifier_to_tuple(identifier)
        previous = self._view_row(ident)
        if previous is None:
            raise NoSuchViewError(f"View does not exist: {'.'.join(ident)}")
        io = self._io(previous)
        metadata = _read(io, previous)
        properties = {k: v for k, v in metadata.properties.items() if k not in removals} | dict(updates)
        new = metadata.model_copy(update={"properties": properties})
        path = _metadata_path(metadata.location, _version_of(previous) + 1)
        _write(io, path, new)
        self._swap(ident, previous, path)
        return View(ident, new)

    def _swap(self, ident: Identifier, previous: str, path: str) -> None:
        namespace = Catalog.namespace_to_string(ident[:-1])
        with self.engine.begin() as conn:
            swapped = conn.execute(
                text(
                    f"UPDATE {_TABLES} SET metadata_location = :m, previous_metadata_location = :p WHERE catalog_name = :c "
                    "AND table_namespace = :n AND table_name = :t AND metadata_location = :p AND iceberg_type = :v"
                ),
                {"m": path, "p": previous, "c": self.name, "n": namespace, "t": ident[-1], "v": VIEW_TYPE},
            ).rowcount
        if swapped != 1:
            self._io(path).delete(path)
            raise ConflictError(
                f"View {'.'.join(ident)} was changed concurrently", hint="nothing was changed; run the statement again"
            )

    def drop_view(self, identifier: str | Identifier) -> None:
        ident = Catalog.identifier_to_tuple(identifier)
        with self.engine.begin() as conn:
            dropped = conn.execute(
                text(
                    f"DELETE FROM {_TABLES} WHERE catalog_name = :c AND table_namespace = :n AND table_name = :t "
                    "AND iceberg_type = :v"
                ),
                {"c": self.name, "n": Catalog.namespace_to_string(ident[:-1]), "t": ident[-1], "v": VIEW_TYPE},
            ).rowcount
        if dropped != 1:
            raise NoSuchViewError(f"View does not exist: {'.'.join(ident)}")

    def rename_view(self, from_identifier: str | Identifier, to_identifier: str | Identifier) -> None:
        source, target = Catalog.identifier_to_tuple(from_identifier), Catalog.identifier_to_tuple(to_identifier)
        target_ns = Catalog.namespace_to_string(target[:-1])
        if not self.namespace_exists(target_ns):  # type: ignore[attr-defined]  # SqlCatalog's
            raise NoSuchNamespaceError(f"Namespace does not exist: {target_ns}")
        try:
            with self.engine.begin() as conn:
                renamed = conn.execute(
                    text(
                        f"UPDATE {_TABLES} SET table_namespace = :nn, table_name = :nt WHERE catalog_name = :c "
                        "AND table_namespace = :n AND table_name = :t AND iceberg_type = :v"
                    ),
                    {
                        "nn": target_ns,
                        "nt": target[-1],
                        "c": self.name,
                        "n": Catalog.namespace_to_string(source[:-1]),
                        "t": source[-1],
                        "v": VIEW_TYPE,
                    },
                ).rowcount
        except IntegrityError as exc:
            raise TableAlreadyExistsError(f"A table or view {'.'.join(target)} already exists") from exc
        if renamed != 1:
            raise NoSuchViewError(f"View does not exist: {'.'.join(source)}")

    def _io(self, location: str) -> FileIO:
        return compat.catalog_file_io(self, location)  # type: ignore[arg-type]  # a LakeCatalog


def _metadata_path(location: str, version: int) -> str:
    return f"{location.rstrip('/')}/metadata/{version:05d}-{uuid.uuid4()}.metadata.json"


def _version_of(path: str) -> int:
    name = path.rsplit("/", 1)[-1]
    try:
        return int(name.split("-", 1)[0])
    except ValueError:
        return int(time.time())


def _read(io: FileIO, location: str) -> ViewMetadata:
    with io.new_input(location).open() as f:
        return ViewMetadata.model_validate_json(f.read())


def _write(io: FileIO, location: str, metadata: ViewMetadata) -> None:
    payload = json.loads(metadata.model_dump_json(by_alias=True, exclude_none=True))
    with io.new_output(location).create(overwrite=False) as f:
        f.write(json.dumps(payload).encode())
