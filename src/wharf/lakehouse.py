"""The façade: ``connect()`` opens a lake; a ``Lakehouse`` runs SQL as one principal and hands out ``Table``s.

A lake opened once is a ``Runtime``: the catalog (and its commit path), the table loader, the
scan planner, the DuckDB databases, the hooks. A ``Lakehouse`` is a handle on a runtime bound to
a principal, with its own session settings (``SET wharf.branch`` …); ``lake.session(user=…)``
gives another handle on the same runtime, for another principal (the server makes one per
request). Every statement runs as its handle's principal, with a statement id, on its own
DuckDB cursor: statements from several threads run concurrently; commits serialise in the catalog.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from wharf.auth import LakeAuth
from wharf.catalog import LakeCatalog, lake_owner, open_catalog
from wharf.engine import Engines
from wharf.errors import AccessDenied, AlreadyExists, AuditUnavailable, InvalidArgument
from wharf.events import Events, StatementEvent
from wharf.governance import GovernancePolicy, store_for
from wharf.governance.audit import Audit, audit_log_for, record_statement
from wharf.governance.hooks import commit_subscriber
from wharf.principal import Principal, default_user
from wharf.quality.gate import set_lake_opener
from wharf.result import Result
from wharf.sql import execute, parse, statement_cache
from wharf.sql.context import Context, Session
from wharf.sql.executor import statement_kind
from wharf.sql.literals import parametrize
from wharf.sql.policy import Policy
from wharf.sql.query import run_cached_query
from wharf.sql.statement_cache import Params
from wharf.sql.translate import translate
from wharf.statement import Statement, running
from wharf.storage import STORAGE_PROPERTIES, is_object_store
from wharf.tables.loader import TableLoader, split_name
from wharf.tables.scan import ScanPlanner

if TYPE_CHECKING:
    import duckdb
    from pyiceberg.table import Table as IcebergTable

    from wharf.governance.lake_governance import Governance
    from wharf.quality.lake_quality import Quality
    from wharf.table import Table

log = logging.getLogger(__name__)


def working_directory(warehouse: str) -> Path:
    """A local directory for a lake without one (its warehouse is in object storage)."""
    import hashlib

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = cache / "wharf" / "lakes" / hashlib.sha256(warehouse.encode()).hexdigest()[:16]
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def default_path() -> Path:
    """``$WHARF_HOME`` if set, else ``./lake``."""
    return Path(os.environ.get("WHARF_HOME") or "lake")


class Runtime:
    """The shared parts of one open lake (one per process and lake; handles share it)."""

    def __init__(
        self,
        path: Path | str,
        user: str | None = None,
        *,
        metadata_url: str | None = None,
        storage: dict[str, str] | None = None,
        catalog: LakeCatalog | None = None,
        audit: bool = True,
    ) -> None:
        # An already open catalog (a commit gate that reads the lake) is shared, not opened again.
        self.catalog: LakeCatalog = (
            catalog if catalog is not None else open_catalog(path, user=user, metadata_url=metadata_url, storage=storage)
        )
        layout = self.catalog.layout
        assert layout is not None  # open_catalog always opens a lake
        self.location = layout.location
        # A lake in object storage has no directory: its local state (shell history, DuckDB's
        # spill files) goes to a working directory of its own.
        self.path = layout.directory if layout.directory is not None else working_directory(layout.warehouse)
        self.owner = lake_owner(self.catalog.engine) or self.catalog.principal.name
        self.loader = TableLoader(self.catalog)
        self.planner = ScanPlanner()
        uses_object_store = is_object_store(layout.warehouse) or any(map(is_object_store, self._registered()))
        self.engines = Engines(
            self.path, self._allowed_locations, storage=self.storage_properties() if uses_object_store else None
        )
        self.policies: list[Policy] = []
        # Governance: its store (one per catalog), its reference policy for every principal but the
        # owner, and the commit subscriber recording owners and forgetting dropped tables' grants.
        self.governance_store = store_for(self.catalog, self.owner)
        self.governance_policy = GovernancePolicy(self.governance_store)
        if not self.governance_store.subscribed:  # once per catalog, however many runtimes share it
            self.governance_store.subscribed = True
            self.catalog.events.subscribe("on_commit", commit_subscriber(self.governance_store))
        # The audit log (wharf.governance.audit): every statement is recorded before its result returns.
        self.audit_log = audit_log_for(self.catalog)
        self.audit_log.audit_owner = audit

    @property
    def events(self) -> Events:
        return self.catalog.events

    def storage_properties(self) -> dict[str, str]:
        """The lake's S3 settings, as PyIceberg names them (``s3.endpoint``, ``s3.access-key-id`` …)."""
        return {k: str(v) for k, v in self.catalog.properties.items() if k in STORAGE_PROPERTIES}

    def _registered(self) -> list[str]:
        locations = self.catalog.locations
        return locations.registered() if locations is not None else []

    def _allowed_locations(self) -> list[str]:
        """Where the governed engine may read besides the lake directory: registered local
        directories, and the warehouse and registered locations in object storage."""
        warehouse = self.catalog.properties.get("warehouse", "")
        registered = self._registered()
        local = [loc.removeprefix("file://") for loc in registered if loc.startswith("file://")]
        return local + [loc for loc in [warehouse, *registered] if is_object_store(loc)]

    def policies_for(self, principal: Principal) -> tuple[Policy, ...]:
        """The policies a statement of ``principal`` passes: none of governance's for the lake owner (no work at all)."""
        if principal.is_owner:
            return tuple(self.policies)
        return (*self.policies, self.governance_policy)

    def principal(self, user: str | None) -> Principal:
        """The principal for ``user`` (None: the lake owner)."""
        if user is None or user == self.owner:
            return Principal.owner(self.owner)
        return Principal(user)

    def close(self) -> None:
        self.audit_log.close()  # row counts noted since the last record; its write connection
        self.engines.close()
        self.catalog.freshness.close()
        self.catalog.engine.dispose()


class Lakehouse:
    """One lake, seen by one principal: a directory with ``wharf.db`` (catalog + Wharf metadata) and ``warehouse/``.

    Thread-safe: statements from several threads run concurrently, each on its own DuckDB
    connection. Several processes may open the same lake; commits are optimistic and retried.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        user: str | None = None,
        runtime: Runtime | None = None,
        principal: Principal | None = None,
        metadata_url: str | None = None,
        storage: dict[str, str] | None = None,
        audit: bool = True,
    ) -> None:
        self._owns_runtime = runtime is None
        if runtime is None:
            # $WHARF_HOME may name a bucket too: read it as text (a Path would fold "s3://" to "s3:/").
            location: Path | str = os.fspath(path) if path is not None else os.environ.get("WHARF_HOME") or "lake"
            if not is_object_store(str(location)):
                location = Path(location)
            runtime = Runtime(location, user, metadata_url=metadata_url, storage=storage, audit=audit)
        self._runtime = runtime
        self.principal: Principal = principal if principal is not None else self._runtime.principal(user)
        self._session = Session()
        self._registered: dict[str, pa.Table] = {}
        self._temp_views: dict[tuple[str, str], Any] = {}  # CREATE TEMPORARY VIEW: this handle's only
        self._cursors: set[duckdb.DuckDBPyConnection] = set()  # of the statements running now (interrupt)
        self._cursor_lock = threading.Lock()

    # --- the runtime's parts ----------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The lake directory (for a lake in object storage: a local working directory)."""
        return self._runtime.path

    @property
    def location(self) -> str:
        """Where the lake is, as it was opened: its directory, or ``s3://bucket/prefix``."""
        return self._runtime.location

    def storage_properties(self) -> dict[str, str]:
        """The S3 settings this lake's files are read and written with, as PyIceberg names them.

        ``s3.endpoint``, ``s3.access-key-id``, ``s3.secret-access-key``, ``s3.session-token``,
        ``s3.region`` — whichever are configured. A catalog server vends these to its clients
        (Iceberg REST ``config`` of a loaded table); they hold secrets: never log them.
        """
        return self._runtime.storage_properties()

    @property
    def catalog(self) -> LakeCatalog:
        """The lake's Iceberg catalog (a PyIceberg ``Catalog``); commits through it pass the same gates."""
        return self._runtime.catalog

    @property
    def loader(self) -> TableLoader:
        return self._runtime.loader

    @property
    def planner(self) -> ScanPlanner:
        return self._runtime.planner

    @property
    def events(self) -> Events:
        """This lake's hooks: ``lake.events.subscribe("on_statement", fn)``; see ``wharf.events``."""
        return self._runtime.events

    @property
    def owner(self) -> str:
        """The name of the lake's owner."""
        return self._runtime.owner

    @cached_property
    def quality(self) -> Quality:
        """Data quality: stored rulesets, recorded runs, write-audit-publish (``wharf.quality.lake_quality``)."""
        from wharf.quality.lake_quality import Quality

        return Quality(self)

    @property
    def settings(self) -> Session:
        """This handle's session settings (``SET wharf.branch`` …)."""
        return self._session

    def session(self, user: str | None = None, *, principal: Principal | None = None) -> Lakehouse:
        """Another handle on this lake, as ``user`` (or ``principal``), with its own session settings.

        Handles share the catalog, caches and DuckDB databases; closing one closes only the lake
        handle that opened them.
        """
        if principal is None:
            principal = self._runtime.principal(user) if user is not None else self.principal
        return Lakehouse(runtime=self._runtime, principal=principal)

    def register_location(self, location: str) -> str:
        """Let tables live in ``location`` (a directory or bucket prefix outside the warehouse); lake owner only.

        Returns the location as stored (normalised). Tables may then be created there
        (``CREATE TABLE … LOCATION``) or point their ``write.data.path`` into it.
        """
        if not self.principal.is_owner:
            raise AccessDenied(
                f"{self.principal.name} may not register locations", hint="only the lake's owner registers locations"
            )
        normal = self.catalog.register_location(location, self.principal.name)
        if is_object_store(normal):
            self._runtime.engines.enable_object_storage(self._runtime.storage_properties())
        self._runtime.engines.reset_governed()
        return normal

    def locations(self) -> list[str]:
        """The external locations registered on this lake (the warehouse is always allowed)."""
        return self.catalog.locations.registered() if self.catalog.locations is not None else []

    @cached_property
    def governance(self) -> Governance:
        """Users, groups, roles, grants, row filters and masks (``wharf.governance.lake_governance``) as this principal."""
        from wharf.governance.lake_governance import Governance

        return Governance(self)

    @cached_property
    def audit(self) -> Audit:
        """The audit log as this principal may read it (``wharf.governance.audit``): records, JSON-lines export."""
        return Audit(self)

    @property
    def auth(self) -> LakeAuth:
        """Users, personal access tokens, service principals and signing keys of this lake (``wharf.auth.LakeAuth``)."""
        return LakeAuth.of(self)

    def add_policy(self, policy: Policy) -> None:
        """Register a policy for the reference pipeline's policy pass (governance builds on this)."""
        self._runtime.policies.append(policy)

    @property
    def policies(self) -> tuple[Policy, ...]:
        """The policies this handle's statements pass, in the order the policy pass applies them.

        The registered ones, then governance's for any principal but the lake owner.
        """
        return self._runtime.policies_for(self.principal)

    # --- SQL --------------------------------------------------------------------------------

    def sql(self, text: str, params: list[Any] | dict[str, Any] | None = None, *, dialect: str | None = None) -> Result:
        """Run one or more statements; returns the last statement's ``Result``.

        ``params`` fill ``?`` / ``$name`` placeholders. ``dialect`` ("spark", "trino", …) reads
        the text in that dialect; Iceberg syntax (``FOR VERSION AS OF``, ``CALL``, branches)
        works in every dialect. Each statement commits at most one snapshot, or nothing.
        """
        written = text  # what the statement records and errors quote: the text as the user wrote it
        try:
            # The parser's own trees: queries compile from them without a copy (statement_cache).
            text, params, statements = _parse_with_literal_parameters(text, params, dialect or self._session.dialect)
        except Exception as exc:
            raise translate(exc, written) from exc
        if not statements:
            raise InvalidArgument("No SQL statement to run")
        result = Result()
        for position, parsed in enumerate(statements):
            if text is not written:  # one query, its literals taken as parameters: quote the original
                parsed = replace(parsed, text=written.strip())
            shared = parsed.node
            cached_path = isinstance(shared, exp.Query)
            try:
                if cached_path:
                    if params is not None:  # missing parameters fail before the statement starts, as binding does
                        statement_cache.parameter_values(_placeholder_names(shared, params), params)
                    node = shared  # never changed: the statement cache copies it only to compile
                elif params is not None:
                    node = _bind(shared, params)
                else:
                    node = shared.copy() if isinstance(shared, exp.Expression) else shared
            except Exception as exc:
                raise translate(exc, parsed.text) from exc
            statement = Statement(parsed.text, self.principal, kind=statement_kind(node))
            with self._statement(statement) as ctx:
                ctx.dialect = dialect or self._session.dialect
                if cached_path:
                    result = run_cached_query(ctx, text if text is not written else parsed.text, position, node, params)
                else:
                    result = execute(ctx, node)
                result.translate = lambda exc, text=parsed.text: translate(exc, text)
                result.reads = tuple(statement.reads)
                ctx.result = result
        return result

    def compiled_reads(
        self, text: str, params: list[Any] | dict[str, Any] | None = None, *, dialect: str | None = None
    ) -> CompiledReads | None:
        """What a one-query ``text`` would read, from its compiled form in the statement cache — without compiling it.

        None when ``text`` is not one query, its compiled form is not cached (or no longer valid:
        a table it read changed), or the query — views expanded — calls a volatile function
        (``random()``, ``now()`` …), so its rows are not a function of the snapshots it reads.
        A result cache keys on this.
        """
        written = text
        try:
            text, params, statements = _parse_with_literal_parameters(text, params, dialect or self._session.dialect)
        except Exception:  # noqa: BLE001 - a statement that does not parse is simply not cached; running it says why
            return None
        if len(statements) != 1 or not isinstance(statements[0].node, exp.Query):
            return None
        statement = Statement(written.strip() if text is not written else statements[0].text, self.principal, kind="probe")
        ctx = Context(
            catalog=self.catalog,
            loader=self.loader,
            planner=self.planner,
            con=None,  # type: ignore[arg-type]  # a lookup runs nothing
            session=self._session,
            events=self.events,
            statement=statement,
            policies=self.policies,  # as a statement of this handle would: the same cache key
            registered=dict(self._registered),
            dialect=dialect or self._session.dialect,
            lake=self,
            temp_views=self._temp_views,
        )
        compiled = statement_cache.peek(ctx, text if text is not written else statements[0].text, 0, params)
        if compiled is None or compiled.volatile:
            return None
        return CompiledReads(statement_cache.snapshot_reads(compiled), statement_cache.view_versions(compiled))

    def interrupt(self) -> int:
        """Interrupt the statements running on this handle (from another thread); returns how many.

        DuckDB stops the running query; the statement raises ``ResourceExhausted``.
        """
        with self._cursor_lock:
            cursors = list(self._cursors)
        for cursor in cursors:
            cursor.interrupt()
        return len(cursors)

    @contextmanager
    def _statement(self, statement: Statement) -> Iterator[Context]:
        """Run ``statement`` as the current statement; emit its ``on_statement`` event when it ends."""
        ctx = self._context(statement)
        error: BaseException | None = None
        with self._cursor_lock:
            self._cursors.add(ctx.con)  # interrupt() reaches it
        try:
            with running(statement):
                yield ctx
        except Exception as exc:
            # The statement boundary: whatever escaped is translated to a Wharf error here, once.
            error = translate(exc, statement.text)
            if error is exc:
                raise
            raise error from exc
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: not errors of the statement
            error = exc
            raise
        finally:
            with self._cursor_lock:
                self._cursors.discard(ctx.con)
            try:
                self._audit(statement, ctx, error)
            except AuditUnavailable as failed:
                # Auditing never fails silently: the statement fails (its result is not returned).
                self._emit(statement, ctx, failed)
                raise failed from error
            self._emit(statement, ctx, error)

    def _audit(self, statement: Statement, ctx: Context, error: BaseException | None) -> None:
        """Write the statement's audit record before its result is returned (``AuditUnavailable`` if it cannot)."""
        log = self._runtime.audit_log
        rows = ctx.result.known_rowcount() if ctx.result is not None and error is None else None
        written = _written_columns(statement, ctx) if statement.writes and error is None else None
        if record_statement(log, statement, error, rows, written) and rows is None and ctx.result is not None:
            # A streamed result: its row count completes the record once it has been read to the end.
            ctx.result.on_exhausted = lambda count: log.set_rows(statement.id, count)

    def _emit(self, statement: Statement, ctx: Context, error: BaseException | None) -> None:
        rows = ctx.result.known_rowcount() if ctx.result is not None and error is None else None
        event = StatementEvent(
            statement_id=statement.id,
            principal=statement.principal.name,
            kind=statement.kind,
            statement=statement.text,
            inputs=tuple(statement.reads),
            outputs=tuple(statement.writes),
            duration_ms=(time.perf_counter() - statement.started) * 1000,
            rows=rows,
            outcome="ok" if error is None else "error",
            error=None if error is None else f"{type(error).__name__}: {error}",
            retries=statement.retries,
            _lineage=ctx.lineage,
        )
        self.events.emit("on_statement", event)

    def explain(self, text: str, *, dialect: str | None = None) -> str:
        """How Wharf runs a query: each pass of the reference pipeline and what it decided.

        Shows the snapshot each table reference resolved to, the columns it reads and the
        predicates pushed to it, the policy applied, the files planned, and the DuckDB SQL.
        """
        from wharf.sql.pipeline import explain

        statements = parse(text, dialect or self._session.dialect)
        if len(statements) != 1 or not isinstance(statements[0].node, exp.Query):
            raise InvalidArgument("explain takes one query (SELECT, a set operation or VALUES)")
        statement = Statement(statements[0].text, self.principal, kind="explain")
        ctx = self._context(statement)
        try:
            with running(statement):
                steps = explain(ctx, statements[0].node)
        finally:
            ctx.con.close()
        return "\n".join(f"-- {name}\n{text}" for name, text in steps)

    def register(self, name: str, data: Any) -> None:
        """Make a DataFrame / Arrow table queryable by ``name`` in SQL on this handle (e.g. as a MERGE source)."""
        from wharf.table import to_arrow

        self._registered[name] = to_arrow(data)

    def unregister(self, name: str) -> None:
        self._registered.pop(name, None)

    def _context(self, statement: Statement) -> Context:
        # Each statement gets its own cursor, so statements run concurrently and a streamed result
        # survives the next statement; registered data is per connection in DuckDB.
        cursor = self._runtime.engines.cursor(self.principal)
        # One copy (atomic under the GIL): other threads register and unregister data on this handle.
        registered = dict(self._registered)
        for name, data in registered.items():
            cursor.register(name, data)

        def set_session(session: Session) -> None:
            self._session = session

        return Context(
            catalog=self.catalog,
            loader=self.loader,
            planner=self.planner,
            con=cursor,
            session=self._session,
            events=self.events,
            statement=statement,
            policies=self.policies,
            set_session=set_session,
            registered=registered,
            lake=self,
            temp_views=self._temp_views,
        )

    @contextmanager
    def api_statement(self, kind: str, text: str) -> Iterator[Context]:
        """Run Python-API work that is not SQL (``create_table`` …) as a statement: principal, id, event."""
        with self._statement(Statement(text, self.principal, kind=kind)) as ctx:
            yield ctx

    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB database this handle's statements run on (use ``register`` to make DataFrames visible to ``sql``)."""
        return self._runtime.engines.database_for(self.principal)

    # --- Python API -------------------------------------------------------------------------

    def table(self, name: str) -> Table:
        """The table ``namespace.table`` (or ``table`` in namespace ``default``)."""
        from wharf.table import Table

        ns, tbl = split_name(name)
        stored = self.iceberg_table(ns, tbl).name()  # raises NotFound with a hint (or AccessDenied)
        return Table(self, ".".join(stored[:-1]), stored[-1])  # the catalog's spelling of the name

    def iceberg_table(self, namespace: str, name: str, *, role: str = "describe") -> IcebergTable:
        """The PyIceberg table, resolved through the reference pipeline as this handle's principal."""
        from wharf.sql.pipeline import resolve_reference

        ctx = self._context(Statement(f"-- inspect {namespace}.{name}", self.principal, kind="inspect"))
        try:
            with running(ctx.statement):
                return resolve_reference(ctx, (namespace, name), role=role).table
        finally:
            ctx.con.close()

    def tables(self, namespace: str | None = None) -> list[str]:
        """Names of the tables in ``namespace`` (all namespaces if None)."""
        namespaces = [namespace] if namespace else [".".join(n) for n in self.catalog.list_namespaces()]
        return sorted(".".join(t) for ns in namespaces for t in self.catalog.list_tables(ns))

    def namespaces(self) -> list[str]:
        return sorted(".".join(n) for n in self.catalog.list_namespaces())

    def create_table(
        self,
        name: str,
        schema: pa.Schema | pa.Table | Any = None,
        *,
        data: Any = None,
        partition_by: list[str] | None = None,
        properties: dict[str, str] | None = None,
        exist_ok: bool = False,
    ) -> Table:
        """Create a table from an Arrow schema, or from data (Arrow / pandas / Polars) which is also written.

        ``partition_by`` uses SQL transform syntax: ``["region", "months(ts)", "bucket(16, id)"]``.
        Table and data land in one commit: a failure leaves no table behind.
        """
        from pyiceberg.schema import Schema

        from wharf import pyiceberg_compat as compat
        from wharf.sql.ddl import create_table, partition_spec
        from wharf.table import Table, to_arrow

        if schema is not None and not isinstance(schema, pa.Schema):
            data, schema = schema, None
        arrow = to_arrow(data) if data is not None else None
        arrow_schema = schema if schema is not None else arrow.schema if arrow is not None else None
        if arrow_schema is None:
            raise InvalidArgument("create_table needs a schema or data")
        ns, tbl = split_name(name)
        if self.loader.exists(ns, tbl):
            if exist_ok:
                return Table(self, ns, tbl)
            raise AlreadyExists(f"Table {ns}.{tbl} already exists")
        iceberg_schema = Schema(*compat.arrow_to_iceberg_fields(arrow_schema))
        items = [parse(f"SELECT {p}")[0].node.expressions[0] for p in (partition_by or [])]
        spec = partition_spec(iceberg_schema, items)
        with self.api_statement("create_table", f"lake.create_table({ns}.{tbl})") as ctx:
            create_table(ctx, (ns, tbl), iceberg_schema, spec, properties or {}, arrow)
        return Table(self, ns, tbl)

    def close(self) -> None:
        if self._owns_runtime:
            self._runtime.close()

    def __enter__(self) -> Lakehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lakehouse {self.location} as {self.principal.name}>"


@dataclass(frozen=True)
class CompiledReads:
    """What a cached compiled query reads: (table, snapshot id, ref) per table, (view, uuid, version) per view."""

    tables: tuple[tuple[str, int | None, str | None], ...]
    views: tuple[tuple[str, str, Any], ...] = ()


def _parse_with_literal_parameters(text: str, params: Params, dialect: str) -> tuple[str, Params, list[Any]]:
    """(text, params, parsed statements) to run: a DuckDB query's comparison literals as parameters
    (``wharf.sql.literals``), so queries differing only in them share one compiled form. The text
    is returned unchanged (the same object) when nothing was taken, or when the rewritten text is
    not one query sqlglot parses: then it is parsed as written."""
    taken = parametrize(text) if params is None and dialect == "duckdb" else None
    if taken is not None:
        try:
            statements = parse(taken[0], dialect, copy=False)
        except Exception:  # noqa: BLE001 - the scanner misjudged the text: run it as written
            statements = []
        if len(statements) == 1 and isinstance(statements[0].node, exp.Query):
            return taken[0], list(taken[1]), statements
    return text, params, parse(text, dialect, copy=False)


def _placeholder_names(node: exp.Expression, params: list[Any] | dict[str, Any]) -> list[str | int]:
    found = list(node.find_all(exp.Placeholder, exp.Parameter))  # how many, or which names: order does not matter
    return list(range(len(found))) if isinstance(params, list) else [p.name for p in found]


def _bind(node: Any, params: list[Any] | dict[str, Any]) -> Any:
    """Replace ``?`` / ``$name`` placeholders with literals (so planning can prune on them too)."""
    return statement_cache.bind(node, params)


def lake_for_catalog(catalog: LakeCatalog) -> Lakehouse:
    """The owner's handle on the lake ``catalog`` belongs to, sharing the catalog (commit gates that
    read the lake, such as the ``wharf.wap.ruleset`` quality gate, evaluate with it)."""
    assert catalog.layout is not None  # the quality gate runs only on a lake's catalog
    runtime = Runtime(catalog.layout.location, catalog=catalog)
    return Lakehouse(runtime=runtime, principal=runtime.principal(None))


set_lake_opener(lake_for_catalog)


def connect(
    path: str | os.PathLike[str] | None = None,
    *,
    user: str | None = None,
    metadata_url: str | None = None,
    storage: dict[str, str] | None = None,
    audit: bool = True,
) -> Lakehouse:
    """Open (creating on first use) the lake at ``path``, ``$WHARF_HOME`` or ``./lake``, as ``user``.

    ``user=None`` opens it as the lake's owner (the user who created it: ``user``, else
    ``$WHARF_USER``, else the OS user). Any other user runs statements as that principal.

    ``path`` is a directory, or ``s3://bucket/prefix`` for a warehouse in object storage.
    ``metadata_url`` (default ``$WHARF_METADATA_URL``) puts the metadata database elsewhere than
    the directory's ``wharf.db``: ``postgresql://user:password@host/db`` or
    ``sqlite:////path/wharf.db``; a lake in object storage needs one. ``storage`` overrides the S3
    settings otherwise read from the AWS environment variables (``{"s3.endpoint": …}``). See
    docs/storage.md. ``audit=False`` stops recording the *owner's* statements in the audit log
    (statements of every other principal are always recorded; docs/governance.md#audit).

    >>> import wharf
    >>> lake = wharf.connect("/tmp/demo-lake")  # doctest: +SKIP
    >>> lake.sql("CREATE TABLE t (id BIGINT, name VARCHAR)")  # doctest: +SKIP
    """
    return Lakehouse(path, user=user, metadata_url=metadata_url, storage=storage, audit=audit)


def _written_columns(statement: Statement, ctx: Context) -> dict[str, list[str]]:
    """The columns a writing statement wrote, per table (its column lineage's outputs; ``*`` when unknown)."""
    tables = list(dict.fromkeys(w.table for w in statement.writes))
    outputs: list[str] = []
    if ctx.lineage is not None and statement.kind not in ("delete", "truncate"):
        try:
            outputs = list(ctx.lineage())
        except Exception:  # noqa: BLE001 - lineage is best effort; the record then says "every column"
            outputs = []
    return {table: outputs or ["*"] for table in tables}


__all__ = ["Lakehouse", "Runtime", "connect", "default_path", "default_user"]
