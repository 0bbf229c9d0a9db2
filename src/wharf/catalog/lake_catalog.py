"""``LakeCatalog``: the lake's Iceberg catalog, and the one commit path every table change takes.

Every change to a table reaches the catalog as ``commit_table`` (snapshots, ref moves, schema,
spec and property changes, expiry — PyIceberg's ``Transaction`` always ends there), or as
``create_table`` / ``drop_table`` / ``rename_table`` / ``register_table``. This class overrides
each of them to:

1. build a ``TableChange`` and run the ``before_commit`` gates (quality, governance); a gate that
   raises refuses the change: nothing is committed and the manifests and data files written for
   it are removed;
2. stamp the snapshot summary properties Wharf owns (``wharf.user``, ``wharf.statement-id``,
   ``wharf.statement``, ``wharf.inputs``) from the current statement — overwriting whatever a
   client put there, so a client cannot claim to be someone else;
3. commit through PyIceberg's SQL catalog (compare-and-swap on the metadata location);
4. emit one ``on_commit`` event and record the write on the current statement.

Because the override sits in the catalog, clients that commit through it directly pass the same
gates: ``lake.catalog`` in-process, or PyIceberg in another process with
``load_catalog("lake", **{"py-catalog-impl": "wharf.catalog.LakeCatalog", "lake": "<path>"})``.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    NoSuchViewError,
    TableAlreadyExistsError,
)
from pyiceberg.manifest import ManifestEntryStatus
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import CommitTableResponse, CreateTableTransaction, StagedTable, Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot, Summary
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    AssertCreate,
    SetLocationUpdate,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
    TableRequirement,
    TableUpdate,
)
from pyiceberg.typedef import EMPTY_DICT, Identifier, Properties
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from wharf import pyiceberg_compat as compat
from wharf.catalog.backends import engine_options, redact
from wharf.catalog.changes import TableChange
from wharf.catalog.freshness import ChangeToken
from wharf.catalog.layout import LakeLayout, mark, prepare, resolve_layout
from wharf.catalog.locations import PATH_PROPERTIES, Locations
from wharf.catalog.locks import AdvisoryCommitLocks, CommitLocks, TableLocks
from wharf.catalog.names import NameFolding, storable
from wharf.catalog.views import ViewStore
from wharf.errors import AlreadyExists, CatalogUnavailable, CommitRejected, InvalidArgument, WharfError
from wharf.events import CommitEvent, Events, SnapshotAdded
from wharf.identifiers import check_identifier
from wharf.principal import Principal, default_user
from wharf.statement import Statement, TableWrite, current
from wharf.storage import storage_properties

CATALOG_NAME = "wharf"
# Seconds a writer waits for SQLite's lock before failing; commits are short, so a generous
# timeout turns contention between processes into waiting rather than errors.
SQLITE_BUSY_TIMEOUT_S = 60
STATEMENT_LIMIT = 4096  # bytes of statement text kept in a snapshot summary

# Summary properties the commit path owns: always written from the statement, never from a client.
USER_PROPERTY = "wharf.user"
STATEMENT_ID_PROPERTY = "wharf.statement-id"
STATEMENT_PROPERTY = "wharf.statement"
INPUTS_PROPERTY = "wharf.inputs"
OWNED_PROPERTIES = (USER_PROPERTY, STATEMENT_ID_PROPERTY, STATEMENT_PROPERTY, INPUTS_PROPERTY)
# A snapshot that re-commits files another snapshot wrote (a cherry-pick) names its source here:
# its data files are never removed when the commit is refused.
SOURCE_SNAPSHOT_PROPERTY = "source-snapshot-id"
# A snapshot that adopts files written elsewhere, in place (CALL system.add_files, snapshot,
# migrate), says how many here: its data files are never removed when the commit is refused.
ADOPTED_FILES_PROPERTY = "wharf.adopted-files"

_ENGINE_PATCH_LOCK = threading.Lock()
_LOOKUP = text(
    f"SELECT metadata_location FROM {compat.SQL_CATALOG_TABLE} "
    "WHERE catalog_name = :catalog AND table_namespace = :namespace AND table_name = :name "
    "AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)"  # not a view
)
_SWAP = text(
    f"UPDATE {compat.SQL_CATALOG_TABLE} SET metadata_location = :new, previous_metadata_location = :old "
    "WHERE catalog_name = :catalog AND table_namespace = :namespace AND table_name = :name "
    "AND metadata_location = :old AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)"
)
METADATA_CACHE_ENTRIES = 32
"""Parsed metadata files kept per catalog (a long history's is several MB in memory)."""
# Metadata files the catalog wrote during the current commit_table call (removed if it fails).
_WRITTEN_METADATA: contextvars.ContextVar[list[tuple[Any, str]] | None] = contextvars.ContextVar(
    "wharf_written_metadata", default=None
)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()


def lake_properties(layout: LakeLayout | Path) -> dict[str, str]:
    """The SQL-catalog properties of a lake: its metadata database and its warehouse."""
    if isinstance(layout, Path):
        layout = resolve_layout(layout)
    return {"uri": layout.metadata_url, "warehouse": layout.warehouse, "schema_version": "v1"}


def truncate_statement(text: str) -> str:
    if len(text.encode()) <= STATEMENT_LIMIT:
        return text
    return text.encode()[: STATEMENT_LIMIT - 3].decode(errors="ignore") + "..."


class LakeCatalog(NameFolding, ViewStore, SqlCatalog):
    """PyIceberg's SQL catalog, tuned for several processes (SQLite WAL, busy timeout), with gates and events.

    ``properties`` are PyIceberg's SQL-catalog properties, or ``lake=<directory or s3://bucket/prefix>``
    for a Wharf lake (``wharf.catalog.layout``), with ``metadata_url=…`` when its metadata database
    is not the directory's ``wharf.db`` (default ``$WHARF_METADATA_URL``). S3 settings
    (``s3.endpoint`` …) default to the AWS environment variables (``wharf.storage``).
    ``wharf.user`` names the principal that commits made outside any Wharf statement run as
    (default: ``$WHARF_USER`` or the OS user).
    """

    def __init__(self, name: str = CATALOG_NAME, **properties: str) -> None:
        lake = properties.pop("lake", None)
        metadata_url = properties.pop("metadata_url", None)
        self.layout: LakeLayout | None = None
        if lake is not None:
            # One lake is one catalog: its tables are registered under the name "wharf". The
            # catalog's tables are created by Wharf's migrations, under their lock, not by PyIceberg.
            self.layout = resolve_layout(lake, metadata_url)
            prepare(self.layout)
            name = CATALOG_NAME
            properties = {
                **lake_properties(self.layout),
                "init_catalog_tables": "false",
                **storage_properties(properties),
                **properties,
            }
        self.events = Events()
        self.principal = Principal(properties.get("wharf.user") or default_user(), kind="external")
        try:
            self._open(name, properties)
            if lake is not None:
                from wharf.catalog import migrations

                migrations.upgrade(self.engine)
                if self.layout is not None:
                    mark(self.layout)
        except OperationalError as exc:  # the server is down, the host unknown, the password wrong …
            raise CatalogUnavailable(
                f"Could not open the metadata database {redact(properties.get('uri', ''))}: "
                f"{str(getattr(exc, 'orig', exc)).strip()}",
                hint="check the metadata URL (host, port, database, user, password) and that the server is running",
            ) from exc
        warehouse = self.properties.get("warehouse")
        # Containment: a Wharf lake's files stay in its warehouse or registered locations.
        self.locations = Locations(self.engine, warehouse) if lake is not None and warehouse else None
        # Metadata locations looked up while the catalog database was unchanged (see catalog.freshness).
        self.freshness = ChangeToken(self.engine)
        self._locations: dict[tuple[str, ...], tuple[int, tuple[tuple[str, ...], str] | None]] = {}
        # Names found to be no view, with the token they were looked up under (``load_view``).
        self._not_views: dict[tuple[str, ...], int] = {}
        # Parsed metadata files by location: a metadata file never changes once written, and
        # parsing one costs O(history) (a tenth of a second at a few thousand snapshots).
        self._metadata: OrderedDict[str, TableMetadata] = OrderedDict()
        self._metadata_lock = threading.Lock()
        if self.locations is not None:
            self.locations.freshness = self.freshness
        # A catalog dropped without close() still returns its database connections cleanly (a
        # server counts them; psycopg warns about connections garbage-collected while open).
        weakref.finalize(self, self.engine.dispose)
        self.locks: TableLocks | None = None
        if self.layout is not None:
            lock_directory = self.layout.lock_directory
            self.locks = CommitLocks(lock_directory) if lock_directory is not None else AdvisoryCommitLocks(self.engine)

    def metadata_location(self, identifier: tuple[str, ...]) -> str | None:
        """The table's current metadata file (one indexed query: cheaper than loading the table).

        Reused without a query while no connection, in any process, has changed the catalog
        database since it was read (``catalog.freshness``): every statement looks its tables up.
        """
        found = self._locate(identifier)
        return found[1] if found is not None else None

    def _locate(self, identifier: tuple[str, ...]) -> tuple[tuple[str, ...], str] | None:
        """(the catalog's spelling of the name, the current metadata location), or None: no such table."""
        token = self.freshness.current()  # read before the query: a commit after it changes the token
        if token is not None:
            known = self._locations.get(identifier)
            if known is not None and known[0] == token:
                return known[1]
        location = self._lookup(identifier)
        found = (identifier, location) if location is not None else None
        if found is None and (stored := self.canonical(identifier)) != identifier:
            location = self._lookup(stored)
            found = (stored, location) if location is not None else None
        if token is not None:
            if len(self._locations) > 10_000:
                self._locations.clear()
            self._locations[identifier] = (token, found)
        return found

    def metadata_at(self, location: str) -> TableMetadata:
        """The parsed metadata file at ``location`` (read once per process: metadata files are immutable)."""
        with self._metadata_lock:
            cached = self._metadata.get(location)
            if cached is not None:
                self._metadata.move_to_end(location)
                return cached
        from pyiceberg.io import load_file_io
        from pyiceberg.serializers import FromInputFile

        metadata = FromInputFile.table_metadata(load_file_io(properties=self.properties, location=location).new_input(location))
        self._remember(location, metadata)
        return metadata

    def _remember(self, location: str, metadata: TableMetadata) -> None:
        with self._metadata_lock:
            self._metadata[location] = metadata
            self._metadata.move_to_end(location)
            while len(self._metadata) > METADATA_CACHE_ENTRIES:
                self._metadata.popitem(last=False)

    def _lookup(self, identifier: tuple[str, ...]) -> str | None:
        if not storable(identifier):
            return None
        namespace, name = Catalog.namespace_to_string(identifier[:-1]), identifier[-1]
        with self.engine.connect() as conn:
            row = conn.execute(_LOOKUP, {"catalog": self.name, "namespace": namespace, "name": name}).first()
        return str(row[0]) if row else None

    # --- names resolve case-insensitively (catalog.names): every entry point takes any spelling ----

    def load_table(self, identifier: str | Identifier) -> Table:
        ident = Catalog.identifier_to_tuple(identifier)
        found = self._locate(ident) if len(ident) >= 2 else None
        if found is not None:
            stored, location = found
            metadata = self.metadata_at(location)
            io = self._load_file_io(metadata.properties, location)
            return Table(identifier=stored, metadata=metadata, metadata_location=location, io=io, catalog=self)
        try:
            return super().load_table(identifier)
        except NoSuchTableError:
            stored = self.canonical(identifier)
            if stored == Catalog.identifier_to_tuple(identifier):
                raise
            return super().load_table(stored)

    def load_view(self, identifier: str | Identifier) -> Any:
        """The view (any spelling of its name). A name that is no view is asked again only once the
        catalog database changed (``catalog.freshness``): every statement checks each name it reads
        for a view, and most are not (registered data, ``Table.append``'s own frame, DuckDB objects)."""
        ident = Catalog.identifier_to_tuple(identifier)
        token = self.freshness.current()  # read before the queries: a view created after it changes it
        if token is not None and self._not_views.get(ident) == token:
            raise NoSuchViewError(f"View does not exist: {'.'.join(ident)}")
        try:
            try:
                return super().load_view(identifier)
            except NoSuchViewError:
                stored = self.canonical(identifier)
                if stored == ident:
                    raise
                return super().load_view(stored)
        except NoSuchViewError:
            if token is not None:
                if len(self._not_views) > 10_000:
                    self._not_views.clear()
                self._not_views[ident] = token
            raise

    def view_exists(self, identifier: str | Identifier) -> bool:
        return super().view_exists(self.canonical(identifier))

    def namespace_exists(self, namespace: str | Identifier) -> bool:
        return super().namespace_exists(self.canonical_namespace(namespace))

    def list_tables(self, namespace: str | Identifier) -> list[Identifier]:
        return super().list_tables(self.canonical_namespace(namespace))

    def list_views(self, namespace: str | Identifier) -> list[Identifier]:
        return super().list_views(self.canonical_namespace(namespace))

    def drop_namespace(self, namespace: str | Identifier) -> None:
        super().drop_namespace(self.canonical_namespace(namespace))

    def load_namespace_properties(self, namespace: str | Identifier) -> Properties:
        return super().load_namespace_properties(self.canonical_namespace(namespace))

    @contextmanager
    def commit_lock(self, identifier: tuple[str, ...]) -> Iterator[None]:
        """Take the table's commit lock (Wharf's own writers do; see ``wharf.catalog.locks``)."""
        if self.locks is None:
            yield
            return
        with self.locks.hold(identifier):
            yield

    def _open(self, name: str, properties: dict[str, str]) -> None:
        import pyiceberg.catalog.sql as sql_module
        import sqlalchemy

        original = sqlalchemy.create_engine

        # SqlCatalog builds its engine in __init__ and immediately creates tables; the connect
        # hook must exist before that first connection, so wrap create_engine for that call.
        def create_engine(*args: Any, **kwargs: Any) -> Engine:
            # The backend's pool settings win over PyIceberg's defaults (it turns pre-ping off).
            engine = original(*args, **{**kwargs, **engine_options(args[0] if args else kwargs["url"])})
            if engine.dialect.name == "sqlite":
                _configure_sqlite(engine)
            return engine

        # The swap is module-wide: serialise it so a catalog opened concurrently in another
        # thread cannot pick up (or restore) the wrong function.
        with _ENGINE_PATCH_LOCK:
            sql_module.create_engine = create_engine  # type: ignore[attr-defined]  # PyIceberg's own import of it
            try:
                super().__init__(name, **properties)
            finally:
                sql_module.create_engine = original  # type: ignore[attr-defined]  # PyIceberg's own import of it

    def create_namespace(self, namespace: str | Identifier, properties: Properties = EMPTY_DICT) -> None:
        check_identifier(Catalog.identifier_to_tuple(namespace), "namespace")
        if self.canonical_namespace(namespace) != Catalog.identifier_to_tuple(namespace):
            raise NamespaceAlreadyExistsError(f"Namespace {namespace} already exists (spelled differently)")
        self._check_namespace_properties(properties)
        try:
            super().create_namespace(namespace, properties)
        except IntegrityError as exc:  # created by another process since PyIceberg checked
            raise NamespaceAlreadyExistsError(f"Namespace {namespace} already exists") from exc

    def update_namespace_properties(
        self, namespace: str | Identifier, removals: set[str] | None = None, updates: Properties = EMPTY_DICT
    ) -> Any:
        self._check_namespace_properties(updates)
        return super().update_namespace_properties(self.canonical_namespace(namespace), removals, updates)

    def _check_namespace_properties(self, properties: Properties) -> None:
        if self.locations is not None and properties.get("location"):
            self.locations.check(properties["location"], "Namespace location")

    def create_table_transaction(
        self,
        identifier: str | Identifier,
        schema: Schema | Any,
        location: str | None = None,
        partition_spec: PartitionSpec = UNPARTITIONED_PARTITION_SPEC,
        sort_order: SortOrder = UNSORTED_SORT_ORDER,
        properties: Properties = EMPTY_DICT,
    ) -> CreateTableTransaction:
        """Check the name and the locations *before* anything is written (a CTAS writes its data first)."""
        check_identifier(Catalog.identifier_to_tuple(identifier))
        identifier = self.canonical(identifier)
        if self.locations is not None:
            roots = self.locations.roots()
            if location:
                self.locations.check(location, "Table location", roots)
            for key in PATH_PROPERTIES:
                if properties.get(key):
                    self.locations.check(properties[key], f"Table property {key}", roots)
        return super().create_table_transaction(identifier, schema, location, partition_spec, sort_order, properties)

    def register_location(self, location: str, by: str) -> str:
        """Allow tables in ``location`` (a directory or bucket prefix outside the warehouse)."""
        if self.locations is None:
            raise InvalidArgument("This catalog is not a Wharf lake: it has no locations to register")
        return self.locations.register(location, by)

    # --- the commit path ------------------------------------------------------------------------

    def _who(self) -> tuple[Principal, Statement | None]:
        statement = current()
        return (statement.principal if statement is not None else self.principal), statement

    def commit_table(
        self, table: Table, requirements: tuple[TableRequirement, ...], updates: tuple[TableUpdate, ...]
    ) -> CommitTableResponse:
        principal, statement = self._who()
        creating = isinstance(table, StagedTable) or any(isinstance(r, AssertCreate) for r in requirements)
        updates = _stamp(updates, principal, statement)
        if not creating:
            updates = _keep_ref_retention(table.metadata, updates)
        if self.locations is not None:
            self._contain(table, creating, updates, statement is None or statement.client_files)
        change = TableChange(
            kind="create" if creating else "update",
            table=_label(table.name()),
            principal=principal,
            statement=statement,
            base=None if creating else table.metadata,
            updates=updates,
            requirements=requirements,
            io=table.io,
            start=compat.empty_table_metadata(self) if creating else None,
            catalog=self,
        )
        self._check_proposal(change, table)
        self._gate(change)
        written: list[tuple[Any, str]] = []
        token = _WRITTEN_METADATA.set(written)
        try:
            if creating:
                response = super().commit_table(table, requirements, updates)
            else:
                response = self._commit_update(table, requirements, updates)
        except (TableAlreadyExistsError, CommitFailedException, OperationalError) as exc:
            # These guarantee the commit did not land: the metadata file written for it is nobody's.
            # (After any other exception the outcome is unknown, and the file stays for maintenance.)
            for io, path in written:
                _delete(io, path)
            if not creating or isinstance(exc, OperationalError):
                raise  # PyIceberg retries an update on a fresh base, reusing its data files
            # Another client created the table first: this creation never lands (it is not retried).
            discard_written_files(change)
            raise AlreadyExists(
                f"Table {change.table} already exists: another statement created it concurrently",
                hint="nothing was committed; use CREATE TABLE IF NOT EXISTS, or write to the existing table",
            ) from exc
        finally:
            _WRITTEN_METADATA.reset(token)
        self._announce(change, response.metadata_location, None if creating else table.metadata_location)
        return response

    def commit_tables(
        self, changes: Sequence[tuple[Identifier, tuple[TableRequirement, ...], tuple[TableUpdate, ...]]]
    ) -> list[CommitTableResponse]:
        """Commit changes to several tables atomically: every change lands, or none does.

        Each change gets what ``commit_table`` gives one: its requirements are checked, the
        summary properties stamped, its files contained, the gates run (one refusal refuses the
        whole transaction) and its event emitted. A change whose requirements include
        ``AssertCreate`` creates its table. The tables' metadata pointers are then swapped in one
        database transaction, each compare-and-swap on the location its change was checked
        against: a concurrent commit to any of them fails the whole transaction with
        ``CommitFailedException`` and nothing is committed.
        """
        from pyiceberg.catalog.sql import IcebergTables
        from sqlalchemy import insert, update

        principal, statement = self._who()
        external = statement is None or statement.client_files
        prepared: list[tuple[TableChange, Table | None, StagedTable]] = []
        written: list[tuple[Any, str]] = []
        token = _WRITTEN_METADATA.set(written)
        swapping = False
        try:
            for identifier, requirements, updates in changes:
                ident = self.canonical(identifier)
                creating = any(isinstance(r, AssertCreate) for r in requirements)
                current = None if creating else self.load_table(ident)
                if creating and self.metadata_location(ident) is not None:
                    raise CommitFailedException(f"Requirement failed: table {_label(ident)} already exists")
                for requirement in requirements:
                    requirement.validate(current.metadata if current is not None else None)
                updates = _stamp(updates, principal, statement)
                if current is not None:
                    updates = _keep_ref_retention(current.metadata, updates)
                try:
                    staged = self._update_and_stage_table(current, ident, (), updates)
                except ValueError as exc:
                    raise InvalidArgument(
                        f"The updates to {_label(ident)} cannot be applied: {exc}",
                        hint="nothing was committed; check the update against the table's current metadata",
                    ) from None
                if self.locations is not None:
                    self._contain(current if current is not None else staged, creating, updates, external)
                change = TableChange(
                    kind="create" if creating else "update",
                    table=_label(ident),
                    principal=principal,
                    statement=statement,
                    base=current.metadata if current is not None else None,
                    updates=updates,
                    requirements=requirements,
                    io=staged.io,
                    start=compat.empty_table_metadata(self) if creating else None,
                )
                prepared.append((change, current, staged))
            for change, _, _ in prepared:
                try:
                    self._gate(change)
                except BaseException:
                    for other, _, _ in prepared:
                        if other is not change:
                            discard_written_files(other)
                    raise
            for _, _, staged in prepared:
                self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
            swapping = True
            with self.engine.begin() as conn:
                for change, current, staged in prepared:
                    ident = Catalog.identifier_to_tuple(staged.name())
                    namespace, name = Catalog.namespace_to_string(ident[:-1]), ident[-1]
                    if current is None:
                        try:
                            with conn.begin_nested():
                                conn.execute(
                                    insert(IcebergTables).values(
                                        **self._create_table_row(namespace, name, staged.metadata_location)
                                    )
                                )
                        except IntegrityError as exc:
                            raise CommitFailedException(f"Table {change.table} was created concurrently") from exc
                        continue
                    swapped = conn.execute(
                        update(IcebergTables)
                        .where(
                            IcebergTables.catalog_name == self.name,
                            IcebergTables.table_namespace == namespace,
                            IcebergTables.table_name == name,
                            IcebergTables.metadata_location == current.metadata_location,
                        )
                        .values(metadata_location=staged.metadata_location, previous_metadata_location=current.metadata_location)
                    ).rowcount
                    if swapped != 1:
                        raise CommitFailedException(f"Table {change.table} has been updated by another process")
        except BaseException as exc:
            # Before the swap nothing can have landed; during it, only a failed compare-and-swap
            # is certain to have rolled back. Otherwise the metadata files stay for maintenance.
            if not swapping or isinstance(exc, CommitFailedException):
                for io, path in written:
                    _delete(io, path)
            raise
        finally:
            _WRITTEN_METADATA.reset(token)
        responses = []
        for change, current, staged in prepared:
            self._announce(change, staged.metadata_location, current.metadata_location if current is not None else None)
            responses.append(CommitTableResponse(metadata=staged.metadata, metadata_location=staged.metadata_location))
        return responses

    def _commit_update(
        self, table: Table, requirements: tuple[TableRequirement, ...], updates: tuple[TableUpdate, ...]
    ) -> CommitTableResponse:
        """``SqlCatalog.commit_table`` for an existing table, doing only what a commit needs.

        The same steps and the same files as PyIceberg's: validate the requirements on the
        current metadata, apply the updates (with the metadata log entry), write the new metadata
        file, compare-and-swap the catalog row on the previous location. What it leaves out is
        O(history) work that changes nothing: re-reading and re-parsing the current metadata file
        (kept parsed, by location), the deep copy of the whole metadata after applying the updates
        (metadata objects are immutable: the updates build new ones), and the ORM around one UPDATE.
        """
        identifier = table.name()
        found = self._locate(identifier)
        if found is None:
            raise NoSuchTableError(f"Table does not exist: {'.'.join(identifier)}")
        stored, location = found
        current = self.metadata_at(location)
        for requirement in requirements:
            requirement.validate(current)
        metadata = compat.update_metadata(current, updates, location)
        if metadata == current:
            return CommitTableResponse(metadata=current, metadata_location=location)
        staged = self._update_and_stage_location(metadata, location)
        self._write_metadata(metadata, self._load_file_io(metadata.properties, staged), staged)
        namespace = Catalog.namespace_to_string(stored[:-1])
        with self.engine.begin() as conn:
            result = conn.execute(
                _SWAP,
                {"new": staged, "old": location, "catalog": self.name, "namespace": namespace, "name": stored[-1]},
            )
            if result.rowcount < 1:
                raise CommitFailedException(f"Table has been updated by another process: {namespace}.{stored[-1]}")
        self._remember(staged, metadata)
        return CommitTableResponse(metadata=metadata, metadata_location=staged)

    def _update_and_stage_location(self, metadata: TableMetadata, previous: str) -> str:
        """Where the next metadata file goes (PyIceberg's numbering: the previous version + 1)."""
        from pyiceberg.table.locations import load_location_provider

        version = self._parse_metadata_version(previous) + 1
        provider = load_location_provider(metadata.location, metadata.properties)
        return provider.new_table_metadata_file_location(version)

    def _write_metadata(self, metadata: Any, io: Any, metadata_path: str) -> None:  # type: ignore[override]
        """PyIceberg's metadata writer, remembering the file for ``commit_table`` to remove if the commit fails."""
        compat.write_metadata_file(metadata, io, metadata_path)
        written = _WRITTEN_METADATA.get()
        if written is not None:
            written.append((io, metadata_path))

    def create_table(
        self,
        identifier: str | Identifier,
        schema: Schema | Any,
        location: str | None = None,
        partition_spec: PartitionSpec = UNPARTITIONED_PARTITION_SPEC,
        sort_order: SortOrder = UNSORTED_SORT_ORDER,
        properties: Properties = EMPTY_DICT,
    ) -> Table:
        """Create a table as one catalog commit (the same path, gates and event as any other change)."""
        identifier = self.canonical(identifier)
        self.create_table_transaction(identifier, schema, location, partition_spec, sort_order, properties).commit_transaction()
        return self.load_table(identifier)

    def _contain(self, table: Table, creating: bool, updates: tuple[TableUpdate, ...], external: bool) -> None:
        """Refuse a change that would put any of the table's files outside the allowed roots."""
        assert self.locations is not None
        roots = self.locations.roots()
        check = self.locations.check
        if creating:
            check(table.metadata.location, "Table location", roots)
            for key in PATH_PROPERTIES:
                if table.metadata.properties.get(key):
                    check(table.metadata.properties[key], f"Table property {key}", roots)
        for u in updates:
            if isinstance(u, SetLocationUpdate):
                check(u.location, "Table location", roots)
            elif isinstance(u, SetPropertiesUpdate):
                for key in PATH_PROPERTIES:
                    if u.updates.get(key):
                        check(u.updates[key], f"Table property {key}", roots)
            elif isinstance(u, AddSnapshotUpdate) and external:
                # A client writes its own files: each must lie inside the allowed roots too.
                check(u.snapshot.manifest_list, "Manifest list", roots)
                for manifest in u.snapshot.manifests(table.io):
                    check(manifest.manifest_path, "Manifest", roots)
                    if manifest.added_snapshot_id != u.snapshot.snapshot_id:
                        continue
                    for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                        if entry.snapshot_id == u.snapshot.snapshot_id:
                            check(entry.data_file.file_path, "Data file", roots)

    def drop_table(self, identifier: str | Identifier) -> None:
        identifier = self.canonical(identifier)
        table = self.load_table(identifier)
        principal, statement = self._who()
        change = TableChange("drop", _label(table.name()), principal, statement, base=table.metadata, io=table.io)
        self._gate(change)
        super().drop_table(identifier)
        self._announce(change, None, table.metadata_location)

    def rename_table(self, from_identifier: str | Identifier, to_identifier: str | Identifier) -> Table:
        check_identifier(Catalog.identifier_to_tuple(to_identifier))
        from_identifier = self.canonical(from_identifier)
        to = Catalog.identifier_to_tuple(to_identifier)
        to_identifier = (*self.canonical_namespace(to[:-1]), to[-1])
        table = self.load_table(from_identifier)
        principal, statement = self._who()
        new_name = _label(Catalog.identifier_to_tuple(to_identifier))
        change = TableChange(
            "rename", _label(table.name()), principal, statement, base=table.metadata, io=table.io, new_name=new_name
        )
        self._gate(change)
        renamed = super().rename_table(from_identifier, to_identifier)
        self._announce(change, renamed.metadata_location, table.metadata_location)
        return renamed

    def register_table(self, identifier: str | Identifier, metadata_location: str, overwrite: bool = False) -> Table:
        from pyiceberg.serializers import FromInputFile

        principal, statement = self._who()
        check_identifier(Catalog.identifier_to_tuple(identifier))
        identifier = self.canonical(identifier)
        roots = self.locations.roots() if self.locations is not None else []
        if self.locations is not None:
            # Before the file is read: a client must not make the server read files outside the lake.
            self.locations.check(metadata_location, "Metadata file", roots)
        io = compat.catalog_file_io(self, metadata_location)
        metadata = FromInputFile.table_metadata(io.new_input(metadata_location))
        if self.locations is not None:
            self.locations.check(metadata.location, "Table location", roots)
            for key in PATH_PROPERTIES:
                if metadata.properties.get(key):
                    self.locations.check(metadata.properties[key], f"Table property {key}", roots)
        label = _label(Catalog.identifier_to_tuple(identifier))
        change = TableChange("register", label, principal, statement, base=metadata, io=io)
        self._gate(change)
        registered = super().register_table(identifier, metadata_location, overwrite)
        self._announce(change, metadata_location, None)
        return registered

    # --- views: the same gates and events as tables ------------------------------------------------

    def _view_change(self, kind: str, identifier: str | Identifier, new_name: str | None = None) -> TableChange:
        principal, statement = self._who()
        return TableChange(kind, _label(Catalog.identifier_to_tuple(identifier)), principal, statement, new_name=new_name)

    def create_view(
        self,
        identifier: str | Identifier,
        schema: Schema | Any,
        view_version: Any,
        location: str | None = None,
        properties: Properties = EMPTY_DICT,
    ) -> Any:
        check_identifier(Catalog.identifier_to_tuple(identifier), "view")
        identifier = self.canonical(identifier)
        if location and self.locations is not None:
            self.locations.check(location, "View location")
        change = self._view_change("create_view", identifier)
        self._gate(change)
        view = super().create_view(identifier, schema, view_version, location, properties)
        self._announce(change, None, None)
        return view

    def replace_view(self, identifier: str | Identifier, schema: Schema | None, view_version: Any, properties: Properties) -> Any:
        identifier = self.canonical(identifier)
        change = self._view_change("replace_view", identifier)
        self._gate(change)
        view = super().replace_view(identifier, schema, view_version, properties)
        self._announce(change, None, None)
        return view

    def set_view_properties(self, identifier: str | Identifier, removals: set[str], updates: Properties) -> Any:
        identifier = self.canonical(identifier)
        change = self._view_change("replace_view", identifier)
        self._gate(change)
        view = super().set_view_properties(identifier, removals, updates)
        self._announce(change, None, None)
        return view

    def drop_view(self, identifier: str | Identifier) -> None:
        identifier = self.canonical(identifier)
        change = self._view_change("drop_view", identifier)
        self._gate(change)
        super().drop_view(identifier)
        self._announce(change, None, None)

    def rename_view(self, from_identifier: str | Identifier, to_identifier: str | Identifier) -> None:
        check_identifier(Catalog.identifier_to_tuple(to_identifier), "view")
        from_identifier = self.canonical(from_identifier)
        to = Catalog.identifier_to_tuple(to_identifier)
        to_identifier = (*self.canonical_namespace(to[:-1]), to[-1])
        change = self._view_change("rename_view", from_identifier, _label(Catalog.identifier_to_tuple(to_identifier)))
        self._gate(change)
        super().rename_view(from_identifier, to_identifier)
        self._announce(change, None, None)

    @staticmethod
    def _check_proposal(change: TableChange, table: Table) -> None:
        """Refuse a change that cannot apply before any gate sees it.

        Gates read ``change.metadata``; a stale or invalid proposal must fail as what it is — a
        failed requirement (``CommitFailedException``: a conflict the client retries on a fresh
        base) or an update that does not apply (``InvalidArgument``) — not as a broken gate.
        """
        if change.base is not None:
            for requirement in change.requirements:
                requirement.validate(table.metadata)
        try:
            change.metadata  # noqa: B018  (computed and cached here, where its failure is the client's)
        except ValueError as exc:
            raise InvalidArgument(
                f"The updates to {change.table} cannot be applied: {exc}",
                hint="nothing was committed; check the update against the table's current metadata",
            ) from None

    def _gate(self, change: TableChange) -> None:
        """Run the gates; on refusal remove what was written for the change and raise a typed error."""
        try:
            self.events.run_gates(change)
        except BaseException as exc:
            discard_written_files(change)
            if isinstance(exc, WharfError):
                raise
            if not isinstance(exc, Exception):
                raise
            # Fail closed: a gate that breaks refuses the change, and says so.
            raise CommitRejected(
                f"A commit gate failed on {change.kind} of {change.table}, so the change was refused: "
                f"{type(exc).__name__}: {exc}",
                table=change.table,
                gate=getattr(exc, "gate", None),
                hint="nothing was committed; fix the gate or the data and run the statement again",
            ) from exc

    def _announce(self, change: TableChange, location: str | None, previous: str | None) -> None:
        snapshots = tuple(
            SnapshotAdded(s.snapshot_id, s.summary.operation.value if s.summary else "", _properties(s))
            for s in change.added_snapshots
        )
        statement = change.statement
        if statement is not None:
            branch_moves = {r: sid for r, sid in change.ref_moves.items() if sid is not None}
            if snapshots:
                for s in snapshots:
                    branch = next((r for r, sid in branch_moves.items() if sid == s.snapshot_id), None)
                    statement.record_write(TableWrite(change.table, change.kind, s.snapshot_id, branch, s.operation))
            elif branch_moves:
                for ref, sid in branch_moves.items():
                    statement.record_write(TableWrite(change.table, change.kind, sid, ref, None))
            else:
                statement.record_write(TableWrite(change.new_name or change.table, change.kind))
        self.events.emit(
            "on_commit",
            CommitEvent(
                principal=change.principal.name,
                statement_id=statement.id if statement is not None else None,
                statement=statement.text if statement is not None else "",
                table=change.new_name or change.table,
                kind=change.kind,
                snapshots=snapshots,
                refs=change.ref_moves,
                metadata_location=location,
                previous_metadata_location=previous,
            ),
        )


def _properties(snapshot: Snapshot) -> dict[str, str]:
    return dict(snapshot.summary.additional_properties) if snapshot.summary is not None else {}


def _label(identifier: tuple[str, ...]) -> str:
    return ".".join(identifier)


_RETENTION = ("max_ref_age_ms", "max_snapshot_age_ms", "min_snapshots_to_keep")


def _keep_ref_retention(base: TableMetadata, updates: tuple[TableUpdate, ...]) -> tuple[TableUpdate, ...]:
    """Moving a branch or tag keeps its retention (``RETAIN …``, ``WITH SNAPSHOT RETENTION …``).

    PyIceberg's snapshot producers move a branch with a ref update that carries no retention,
    which would reset it on every write; Iceberg (Java) keeps the ref's settings when it moves.
    """
    kept: list[TableUpdate] = []
    for update in updates:
        existing = base.refs.get(update.ref_name) if isinstance(update, SetSnapshotRefUpdate) else None
        if (
            isinstance(update, SetSnapshotRefUpdate)
            and existing is not None
            and existing.snapshot_ref_type == update.type
            and all(getattr(update, f) is None for f in _RETENTION)
            and any(getattr(existing, f) is not None for f in _RETENTION)
        ):
            update = update.model_copy(update={f: getattr(existing, f) for f in _RETENTION})
        kept.append(update)
    return tuple(kept)


def _stamp(updates: tuple[TableUpdate, ...], principal: Principal, statement: Statement | None) -> tuple[TableUpdate, ...]:
    """Write the summary properties the commit path owns into every snapshot the updates add."""
    if not any(isinstance(u, AddSnapshotUpdate) for u in updates):
        return updates
    owned = {USER_PROPERTY: principal.name}
    if statement is not None:
        owned[STATEMENT_ID_PROPERTY] = statement.id
        owned[STATEMENT_PROPERTY] = truncate_statement(statement.text)
        if statement.reads:
            owned[INPUTS_PROPERTY] = statement.inputs_property()
    stamped: list[TableUpdate] = []
    for u in updates:
        if isinstance(u, AddSnapshotUpdate):
            u = AddSnapshotUpdate(snapshot=_with_summary(u.snapshot, owned))
        stamped.append(u)
    return tuple(stamped)


def _with_summary(snapshot: Snapshot, owned: dict[str, str]) -> Snapshot:
    summary = snapshot.summary
    if summary is None:
        return snapshot
    kept = {k: v for k, v in summary.additional_properties.items() if k not in OWNED_PROPERTIES}
    return snapshot.model_copy(update={"summary": Summary(operation=summary.operation, **kept, **owned)})


def discard_written_files(change: TableChange) -> None:
    """Remove the manifest lists, manifests and data files written for a change that will not land.

    Only files that belong to the refused snapshots are removed: their manifest list, the
    manifests they created, and the data and delete files they added — except for a snapshot
    that re-commits another snapshot's files (``source-snapshot-id``, a cherry-pick) or adopts
    files in place (``wharf.adopted-files``).
    """
    io = change.io
    if io is None:
        return
    for snapshot in change.added_snapshots:
        properties = _properties(snapshot)
        owns_files = SOURCE_SNAPSHOT_PROPERTY not in properties and ADOPTED_FILES_PROPERTY not in properties
        try:
            manifests = snapshot.manifests(io)
        except Exception:  # noqa: BLE001 - nothing readable was written: nothing to remove
            manifests = []
        for manifest in manifests:
            if manifest.added_snapshot_id != snapshot.snapshot_id:
                continue
            if owns_files:
                for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                    if entry.status == ManifestEntryStatus.ADDED and entry.snapshot_id == snapshot.snapshot_id:
                        _delete(io, entry.data_file.file_path)
            _delete(io, manifest.manifest_path)
        _delete(io, snapshot.manifest_list)


def _delete(io: Any, path: str) -> None:
    try:
        io.delete(path)
    except Exception:  # noqa: BLE001 - already gone, or an orphan for maintenance to collect
        pass


__all__ = ["CATALOG_NAME", "LakeCatalog", "TableChange", "discard_written_files", "lake_properties"]
