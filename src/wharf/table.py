"""``Table``: the Python API of one table, mirroring the SQL statements (same code underneath)."""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.table.refs import MAIN_BRANCH

from wharf.errors import InvalidArgument
from wharf.result import Result
from wharf.sql.context import HANDLE_DATA_PREFIX
from wharf.tables.scan import quote_ident, quote_str

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    import polars as pl
    from pyiceberg.table import Table as IcebergTable

    from wharf.lakehouse import Lakehouse
    from wharf.tables.compaction import RewriteDataFilesResult

_names = itertools.count()
_calls = threading.local()  # per thread: how deeply Table writes are nested (see _run_with)


def to_arrow(data: Any) -> pa.Table:
    """Accept Arrow tables / record batch readers / record batches, pandas and Polars frames."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__
    if module.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if module.startswith("polars"):
        return data.to_arrow()
    if isinstance(data, dict):
        return pa.table(data)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return pa.Table.from_pylist(data)
    raise InvalidArgument(f"Cannot write {type(data).__name__}; pass an Arrow table, a pandas or a Polars DataFrame")


class Table:
    """A handle on ``namespace.table``; always reads the table's current metadata."""

    def __init__(self, lake: Lakehouse, namespace: str, name: str) -> None:
        self.lake = lake
        self.namespace = namespace
        self.name = name

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    def _ref(self, branch: str | None = None) -> str:
        base = f"{quote_ident(self.namespace)}.{quote_ident(self.name)}"
        return base if branch in (None,) else f"{base}.{quote_ident('branch_' + branch)}"

    @property
    def iceberg(self) -> IcebergTable:
        """The underlying ``pyiceberg.table.Table`` (current metadata), resolved as the lake handle's principal."""
        return self.lake.iceberg_table(self.namespace, self.name)

    @property
    def schema(self) -> Schema:
        return self.iceberg.schema()

    @property
    def location(self) -> str:
        return self.iceberg.location()

    # --- reads -----------------------------------------------------------------------------

    def to_arrow(
        self,
        ref: str | None = None,
        snapshot_id: int | None = None,
        as_of: Any = None,
        columns: list[str] | None = None,
        where: str | None = None,
    ) -> pa.Table:
        """Read the table (at a branch/tag ``ref``, a ``snapshot_id`` or a time ``as_of``) through the SQL read path."""
        given = [x is not None for x in (ref, snapshot_id, as_of)]
        if sum(given) > 1:
            raise InvalidArgument("Pass at most one of ref, snapshot_id, as_of")
        source = f"{quote_ident(self.namespace)}.{quote_ident(self.name)}"
        if ref is not None:
            source += f" FOR VERSION AS OF {quote_str(ref)}"
        elif snapshot_id is not None:
            source += f" FOR VERSION AS OF {int(snapshot_id)}"
        elif as_of is not None:
            source += f" FOR TIMESTAMP AS OF {quote_str(str(as_of))}"
        cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
        sql = f"SELECT {cols} FROM {source}" + (f" WHERE {where}" if where else "")
        return self.lake.sql(sql).to_arrow()

    def to_pandas(self, **kwargs: Any) -> pd.DataFrame:
        return self.to_arrow(**kwargs).to_pandas()

    def to_polars(self, **kwargs: Any) -> pl.DataFrame:
        import polars as pl

        return pl.from_arrow(self.to_arrow(**kwargs))  # type: ignore[return-value]  # a Table gives a DataFrame, never a Series

    def count(self) -> int:
        return int(self.lake.sql(f"SELECT count(*) FROM {self._ref()}").scalar())

    # --- writes ----------------------------------------------------------------------------

    def _run_with(self, data: Any, sql_for: Any) -> Result:
        """Run ``sql_for(name)`` with ``data`` registered as ``name`` for that one statement.

        The name is the same for every call from one thread (and nesting depth, for a hook that
        appends from inside a statement), so a repeated append's statement text repeats and is
        parsed once; two threads appending through one handle get different names.
        """
        depth = getattr(_calls, "depth", 0)
        name = f"{HANDLE_DATA_PREFIX}{threading.get_ident()}_{depth}"
        self.lake.register(name, data)
        _calls.depth = depth + 1
        try:
            return self.lake.sql(sql_for(name))
        finally:
            _calls.depth = depth
            self.lake.unregister(name)

    def append(self, data: Any, *, branch: str | None = None) -> Result:
        """Append rows (columns matched by name; missing nullable columns are NULL). One snapshot."""
        arrow = to_arrow(data)
        schema = self.schema
        by_lower = {f.name.lower(): f.name for f in schema.fields}
        unknown = [c for c in arrow.column_names if c.lower() not in by_lower]
        if unknown:
            from wharf.errors import SchemaMismatch

            raise SchemaMismatch(
                f"Column '{unknown[0]}' does not exist in table {self.full_name}",
                hint=f"its columns are: {', '.join(f.name for f in schema.fields)}",
            )
        cols = ", ".join(quote_ident(by_lower[c.lower()]) for c in arrow.column_names)
        src = ", ".join(quote_ident(c) for c in arrow.column_names)
        return self._run_with(arrow, lambda n: f"INSERT INTO {self._ref(branch)} ({cols}) SELECT {src} FROM {n}")

    def overwrite(self, data: Any, where: str | None = None, *, branch: str | None = None) -> Result:
        """Replace the rows matching ``where`` (all rows if None) with ``data``, in one snapshot."""
        arrow = to_arrow(data)
        cols = ", ".join(quote_ident(c) for c in arrow.column_names)
        condition = where or "true"
        return self._run_with(
            arrow,
            lambda n: (
                f"MERGE INTO {self._ref(branch)} t USING (SELECT * FROM {n}) s ON false "
                f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({', '.join('s.' + quote_ident(c) for c in arrow.column_names)}) "
                f"WHEN NOT MATCHED BY SOURCE AND ({condition}) THEN DELETE"
            ),
        )

    def merge(
        self,
        data: Any,
        on: list[str] | str,
        when_matched: str | None = "update",
        when_not_matched: str | None = "insert",
        *,
        branch: str | None = None,
    ) -> Result:
        """Upsert ``data`` by key columns ``on`` (a MERGE INTO under the hood; one snapshot)."""
        keys = [on] if isinstance(on, str) else list(on)
        arrow = to_arrow(data)
        condition = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in keys)
        cols = arrow.column_names
        clauses = []
        if when_matched == "update":
            sets = ", ".join(f"{quote_ident(c)} = s.{quote_ident(c)}" for c in cols if c not in keys)
            clauses.append(f"WHEN MATCHED THEN UPDATE SET {sets}" if sets else "")
        elif when_matched == "delete":
            clauses.append("WHEN MATCHED THEN DELETE")
        elif when_matched is not None:
            raise InvalidArgument("when_matched must be 'update', 'delete' or None")
        if when_not_matched == "insert":
            names = ", ".join(quote_ident(c) for c in cols)
            values = ", ".join(f"s.{quote_ident(c)}" for c in cols)
            clauses.append(f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})")
        elif when_not_matched is not None:
            raise InvalidArgument("when_not_matched must be 'insert' or None")
        clauses = [c for c in clauses if c]
        if not clauses:
            raise InvalidArgument("merge() needs when_matched or when_not_matched")
        return self._run_with(arrow, lambda n: f"MERGE INTO {self._ref(branch)} t USING {n} s ON {condition} {' '.join(clauses)}")

    def delete(self, where: str, *, branch: str | None = None) -> Result:
        """Delete the rows matching the SQL condition ``where``. One snapshot (none if nothing matched)."""
        return self.lake.sql(f"DELETE FROM {self._ref(branch)} WHERE {where}")

    def update(self, set: dict[str, str], where: str | None = None, *, branch: str | None = None) -> Result:  # noqa: A002
        """``UPDATE t SET col = <sql expr>, … [WHERE …]``."""
        assignments = ", ".join(f"{quote_ident(k)} = {v}" for k, v in set.items())
        return self.lake.sql(f"UPDATE {self._ref(branch)} SET {assignments}" + (f" WHERE {where}" if where else ""))

    # --- history and refs --------------------------------------------------------------------

    def apply_changes(
        self,
        source: Any,
        *,
        keys: list[str] | str,
        sequence_by: str,
        operation_column: str | None = None,
        delete_when: str | None = None,
        columns_except: list[str] | None = None,
        scd_type: int = 1,
        ignore_null_updates: bool = False,
        branch: str | None = None,
    ) -> Result:
        """Apply a batch of change events (a DataFrame / Arrow table, or a query or table name) as one
        commit, exactly once: ``CALL system.apply_changes`` (docs/cdc.md)."""
        from wharf.ingest.apply_changes import call_sql

        target = self.full_name + (f".branch_{branch}" if branch else "")

        def sql_for(events: str) -> str:
            return call_sql(
                target,
                events,
                keys=[keys] if isinstance(keys, str) else list(keys),
                sequence_by=sequence_by,
                operation_column=operation_column,
                delete_when=delete_when,
                columns_except=list(columns_except or ()),
                scd_type=scd_type,
                ignore_null_updates=ignore_null_updates,
            )

        if isinstance(source, str):
            return self.lake.sql(sql_for(source))
        return self._run_with(to_arrow(source), sql_for)

    def snapshots(self) -> pa.Table:
        return self.lake.sql(f"SELECT * FROM {self._ref()}.snapshots ORDER BY committed_at").to_arrow()

    def history(self) -> pa.Table:
        return self.lake.sql(f"SELECT * FROM {self._ref()}.history ORDER BY made_current_at").to_arrow()

    def refs(self) -> pa.Table:
        return self.lake.sql(f"SELECT * FROM {self._ref()}.refs ORDER BY name").to_arrow()

    def current_snapshot_id(self, branch: str = MAIN_BRANCH) -> int | None:
        """Snapshot id at the head of ``branch`` (None: no such branch or an empty table)."""
        ref = self.iceberg.metadata.refs.get(branch)
        return ref.snapshot_id if ref else None

    def create_branch(self, name: str, snapshot_id: int | None = None, *, replace: bool = False) -> None:
        as_of = f" AS OF VERSION {int(snapshot_id)}" if snapshot_id is not None else ""
        verb = "CREATE OR REPLACE" if replace else "CREATE"
        self.lake.sql(f"ALTER TABLE {self._ref()} {verb} BRANCH {quote_ident(name)}{as_of}")

    def create_tag(self, name: str, snapshot_id: int | None = None, *, replace: bool = False) -> None:
        as_of = f" AS OF VERSION {int(snapshot_id)}" if snapshot_id is not None else ""
        verb = "CREATE OR REPLACE" if replace else "CREATE"
        self.lake.sql(f"ALTER TABLE {self._ref()} {verb} TAG {quote_ident(name)}{as_of}")

    def drop_branch(self, name: str) -> None:
        self.lake.sql(f"ALTER TABLE {self._ref()} DROP BRANCH {quote_ident(name)}")

    def drop_tag(self, name: str) -> None:
        self.lake.sql(f"ALTER TABLE {self._ref()} DROP TAG {quote_ident(name)}")

    def fast_forward(self, branch: str, to: str) -> Result:
        """Move ``branch`` to the head of ``to``; fails unless ``branch`` is an ancestor of ``to``."""
        return self.lake.sql(
            f"CALL system.fast_forward(table => {quote_str(self.full_name)}, "
            f"branch => {quote_str(branch)}, to => {quote_str(to)})"
        )

    def rollback_to(self, snapshot_id: int | None = None, *, timestamp: Any = None) -> Result:
        """Roll main back to an ancestor snapshot, or to the snapshot current at ``timestamp``."""
        if (snapshot_id is None) == (timestamp is None):
            raise InvalidArgument("Pass exactly one of snapshot_id or timestamp")
        if snapshot_id is not None:
            return self.lake.sql(
                f"CALL system.rollback_to_snapshot(table => {quote_str(self.full_name)}, snapshot_id => {int(snapshot_id)})"
            )
        return self.lake.sql(
            f"CALL system.rollback_to_timestamp(table => {quote_str(self.full_name)}, timestamp => {quote_str(str(timestamp))})"
        )

    def changes(
        self,
        start: int | str | Any = None,
        end: int | str | Any = None,
        *,
        net: bool = False,
        compute_updates: bool | None = None,
        identifier_columns: list[str] | None = None,
        branch: str | None = None,
    ) -> Result:
        """The rows each snapshot after ``start`` up to ``end`` changed (``system.create_changelog_view``).

        ``start``/``end``: snapshot ids (int) or times (``'2024-01-01 10:00:00'``, datetime);
        ``start`` is exclusive, ``end`` inclusive, both open when None. Columns: the table's, plus
        ``_change_type``, ``_change_ordinal``, ``_commit_snapshot_id``, ``_commit_timestamp``.
        ``net=True`` collapses the range to its net effect; updates are paired when the table has
        identifier fields (or ``identifier_columns`` are given) unless ``compute_updates=False``.
        """
        options: list[str] = []
        for bound, value in (("start", start), ("end", end)):
            if value is None:
                continue
            kind = "snapshot-id" if isinstance(value, int) and not isinstance(value, bool) else "timestamp"
            options += [quote_str(f"{bound}-{kind}"), quote_str(str(value))]
        keys = identifier_columns or []
        if net and compute_updates is None:
            compute_updates = False  # net changes have no update pairs
        if compute_updates is None and not keys:
            keys = [self.schema.find_column_name(i) or "" for i in self.schema.identifier_field_ids]
        view = f"__wharf_changes_{next(_names)}"
        source = self.full_name + (f".branch_{branch}" if branch else "")
        args = [f"table => {quote_str(source)}", f"changelog_view => {quote_str(view)}", f"net_changes => {str(net).lower()}"]
        if options:
            args.append(f"options => map({', '.join(options)})")
        if compute_updates is not None:
            args.append(f"compute_updates => {str(compute_updates).lower()}")
        if keys:
            args.append(f"identifier_columns => array({', '.join(quote_str(k) for k in keys)})")
        self.lake.sql(f"CALL system.create_changelog_view({', '.join(args)})")
        try:
            return self.lake.sql(f"SELECT * FROM {quote_ident(view)} ORDER BY _change_ordinal")
        finally:
            self.lake.sql(f"DROP VIEW IF EXISTS {quote_ident(view)}")

    def scd2(
        self, identifier_columns: list[str] | None = None, *, delete_markers: bool = False, branch: str | None = None
    ) -> Result:
        """One row per version of each key, with ``effective_start``, ``effective_end`` and ``is_current`` (SCD Type-2)."""
        view = f"__wharf_scd2_{next(_names)}"
        source = self.full_name + (f".branch_{branch}" if branch else "")
        args = [f"table => {quote_str(source)}", f"view => {quote_str(view)}", f"delete_markers => {str(delete_markers).lower()}"]
        if identifier_columns:
            args.append(f"identifier_columns => array({', '.join(quote_str(k) for k in identifier_columns)})")
        self.lake.sql(f"CALL system.create_scd2_view({', '.join(args)})")
        try:
            return self.lake.sql(f"SELECT * FROM {quote_ident(view)}")
        finally:
            self.lake.sql(f"DROP VIEW IF EXISTS {quote_ident(view)}")

    # --- maintenance -------------------------------------------------------------------------

    def expire_snapshots(
        self,
        older_than: Any = None,
        retain_last: int | None = None,
        snapshot_ids: list[int] | None = None,
        *,
        clean_expired_metadata: bool = False,
    ) -> Result:
        """``CALL system.expire_snapshots``: forget old snapshots and delete the files only they read.

        One row: Spark's ``deleted_*_count`` columns and ``expired_snapshots_count``.
        """
        args = [f"table => {quote_str(self.full_name)}"]
        if older_than is not None:
            args.append(f"older_than => {quote_str(str(older_than))}")
        if retain_last is not None:
            args.append(f"retain_last => {int(retain_last)}")
        if snapshot_ids is not None:
            args.append(f"snapshot_ids => array({', '.join(str(int(i)) for i in snapshot_ids)})")
        if clean_expired_metadata:
            args.append("clean_expired_metadata => true")
        return self.lake.sql(f"CALL system.expire_snapshots({', '.join(args)})")

    def remove_orphan_files(self, older_than: Any = None, *, dry_run: bool = False) -> list[str]:
        """``CALL system.remove_orphan_files``: the files under the table no metadata references
        (older than ``older_than``, default 3 days ago), deleted unless ``dry_run``."""
        args = [f"table => {quote_str(self.full_name)}", f"dry_run => {'true' if dry_run else 'false'}"]
        if older_than is not None:
            args.append(f"older_than => {quote_str(str(older_than))}")
        result = self.lake.sql(f"CALL system.remove_orphan_files({', '.join(args)})")
        return [row[0] for row in result.fetchall()]

    def rewrite_data_files(
        self,
        *,
        strategy: str | None = None,
        sort_order: str | None = None,
        where: str | None = None,
        options: dict[str, str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RewriteDataFilesResult:
        """``CALL system.rewrite_data_files``: compact small files, and files burdened by deletes, into
        files of the target size. ``progress(bytes_done, bytes_total)`` is called as file groups finish.

        Returns Spark's counts (``rewritten_data_files_count`` …) and the snapshots committed.
        """
        from wharf.sql.maintenance_procedures import compact
        from wharf.sql.pipeline import resolve_reference

        args = [f"table => {quote_str(self.full_name)}"]
        for key, value in (("strategy", strategy), ("sort_order", sort_order), ("where", where)):
            if value:
                args.append(f"{key} => {quote_str(value)}")
        if options:
            args.append("options => map(" + ", ".join(f"{quote_str(k)}, {quote_str(str(v))}" for k, v in options.items()) + ")")
        with self.lake.api_statement("call", f"CALL system.rewrite_data_files({', '.join(args)})") as ctx:
            table = resolve_reference(ctx, (self.namespace, self.name), role="maintain").table
            return compact(ctx, table, strategy=strategy, sort_order=sort_order, options=options, where=where, progress=progress)

    def __repr__(self) -> str:
        return f"<Table {self.full_name}>"


__all__ = ["Table", "to_arrow"]
