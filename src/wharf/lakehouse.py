"""The façade: ``connect()`` opens a lake; ``Lakehouse`` runs SQL and hands out ``Table`` objects."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from wharf.catalog import open_catalog
from wharf.engine import connect_duckdb
from wharf.errors import InvalidArgument, WharfError
from wharf.events import Events
from wharf.result import Result
from wharf.sql import execute, parse
from wharf.sql.context import Context, Session
from wharf.tables.loader import TableLoader, split_name
from wharf.tables.scan import ScanPlanner

if TYPE_CHECKING:
    import duckdb

    from wharf.table import Table


def default_path() -> Path:
    """``$WHARF_HOME`` if set, else ``./lake``."""
    return Path(os.environ.get("WHARF_HOME") or "lake")


class Lakehouse:
    """One lake: a directory with ``wharf.db`` (catalog + Wharf metadata) and ``warehouse/`` (data).

    Thread-safe: statements from several threads are serialised on one DuckDB database.
    Several processes may open the same lake; commits are optimistic and retried.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, user: str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.catalog = open_catalog(self.path)
        self.loader = TableLoader(self.catalog)
        self.planner = ScanPlanner()
        self.events = Events()
        self.session = Session() if user is None else Session(user=user)
        self._duckdb = connect_duckdb()
        self._lock = threading.RLock()
        self._registered: dict[str, Any] = {}

    # --- SQL --------------------------------------------------------------------------------

    def sql(self, text: str, params: list[Any] | dict[str, Any] | None = None, *, dialect: str | None = None) -> Result:
        """Run one or more statements; returns the last statement's ``Result``.

        ``params`` fill ``?`` / ``$name`` placeholders. ``dialect`` ("spark", "trino", …) reads
        the text in that dialect; Iceberg syntax (``FOR VERSION AS OF``, ``CALL``, branches)
        works in every dialect. Each statement commits at most one snapshot, or nothing.
        """
        statements = parse(text, dialect or self.session.dialect)
        if not statements:
            raise InvalidArgument("No SQL statement to run")
        result = Result()
        with self._lock:
            for statement in statements:
                node = _bind(statement.node, params) if params is not None else statement.node
                ctx = self._context(statement.text)
                result = execute(ctx, node)
        return result

    def register(self, name: str, data: Any) -> None:
        """Make a DataFrame / Arrow table queryable by ``name`` in SQL (e.g. as a MERGE source)."""
        from wharf.table import to_arrow

        self._registered[name] = to_arrow(data)

    def unregister(self, name: str) -> None:
        self._registered.pop(name, None)

    def _context(self, statement: str) -> Context:
        # Each statement gets its own cursor so a streamed result survives the next statement;
        # registered data is per connection in DuckDB, so it is registered on every cursor.
        cursor = self._duckdb.cursor()
        for name, data in self._registered.items():
            cursor.register(name, data)
        return Context(
            catalog=self.catalog,
            loader=self.loader,
            planner=self.planner,
            con=cursor,
            session=self.session,
            events=self.events,
            statement=statement,
        )

    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """The underlying DuckDB connection (use ``register`` to make DataFrames visible to ``sql``)."""
        return self._duckdb

    # --- Python API -------------------------------------------------------------------------

    def table(self, name: str) -> Table:
        """The table ``namespace.table`` (or ``table`` in namespace ``default``)."""
        from wharf.table import Table

        ns, tbl = split_name(name)
        self.loader.load(ns, tbl)  # raises NotFound with a hint
        return Table(self, ns, tbl)

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
        """
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
            from wharf.errors import AlreadyExists

            raise AlreadyExists(f"Table {ns}.{tbl} already exists")
        from pyiceberg.schema import Schema

        from wharf.sql.ddl import _arrow_fields, partition_spec

        iceberg_schema = Schema(*_arrow_fields(arrow_schema))
        items = [parse(f"SELECT {p}")[0].node.expressions[0] for p in (partition_by or [])]
        spec = partition_spec(iceberg_schema, items)
        with self._lock:
            self.catalog.create_table((ns, tbl), schema=iceberg_schema, partition_spec=spec, properties=properties or {})
        table = Table(self, ns, tbl)
        if arrow is not None and arrow.num_rows:
            try:
                table.append(arrow)
            except WharfError:
                self.catalog.drop_table((ns, tbl))
                raise
        return table

    def close(self) -> None:
        self._duckdb.close()

    def __enter__(self) -> Lakehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lakehouse {self.path}>"


def _bind(node: Any, params: list[Any] | dict[str, Any]) -> Any:
    """Replace ``?`` / ``$name`` placeholders with literals (so planning can prune on them too)."""
    if not isinstance(node, exp.Expression):
        return node
    node = node.copy()
    positional = iter(params) if isinstance(params, list) else None
    named = params if not isinstance(params, list) else {}
    for placeholder in list(node.find_all(exp.Placeholder, exp.Parameter)):
        if positional is not None:
            try:
                value = next(positional)
            except StopIteration as exc:
                raise InvalidArgument("Fewer parameters than ? placeholders") from exc
        else:
            key = placeholder.name
            if key not in named:
                raise InvalidArgument(f"No value for parameter ${key}")
            value = named[key]
        placeholder.replace(exp.convert(value))
    return node


def connect(path: str | os.PathLike[str] | None = None, *, user: str | None = None) -> Lakehouse:
    """Open (creating on first use) the lake at ``path``, ``$WHARF_HOME`` or ``./lake``.

    >>> import wharf
    >>> lake = wharf.connect("/tmp/demo-lake")  # doctest: +SKIP
    >>> lake.sql("CREATE TABLE t (id BIGINT, name VARCHAR)")  # doctest: +SKIP
    """
    return Lakehouse(path, user=user)
