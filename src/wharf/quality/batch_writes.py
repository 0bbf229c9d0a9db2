"""The writes write-audit-publish and the dead-letter queue make: each one statement, one commit.

A batch of rows is appended to a branch with the batch id in the snapshot summary
(``wharf.quality.batch-id``), through the one commit path (gates, stamping, events); a branch is
positioned at a snapshot; main is moved to an audited snapshot only if it is still where the
audit started (``AssertRefSnapshotId``), else ``ConflictError``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.schema import Schema
from pyiceberg.table import Table as IcebergTable
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.update.snapshot import ManageSnapshots

from wharf import pyiceberg_compat as compat
from wharf.errors import ConflictError, InvalidArgument, ValidationError
from wharf.quality.quarantine import BATCH_PROPERTY, RULESET_PROPERTY
from wharf.tables.loader import split_name
from wharf.tables.scan import quote_ident

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse


_QUERY = re.compile(r"^\s*(\(|select\b|with\b|from\b|values\b|table\b)", re.IGNORECASE)


def quoted(table: str) -> str:
    ns, name = split_name(table)
    return f"{quote_ident(ns)}.{quote_ident(name)}"


def materialize(lake: Lakehouse, data: Any) -> pa.Table:
    """The incoming rows, read once: a query runs now (so staging and auditing see the same rows);
    a DataFrame (pandas, Polars) is read through the lake like ``lake.register`` reads it."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, str):
        if not data.strip():
            raise InvalidArgument("No data to write: the source query is empty")
        query = data if _QUERY.match(data) else f"SELECT * FROM {data}"  # a bare name: the table's rows
        return lake.sql(query).to_arrow()
    name = f"__wharf_incoming_{id(data):x}"
    lake.register(name, data)
    try:
        return lake.sql(f"SELECT * FROM {quote_ident(name)}").to_arrow()
    finally:
        lake.unregister(name)


def table_head(lake: Lakehouse, table: str, branch: str = MAIN_BRANCH) -> int | None:
    """The head of ``branch`` now (fresh from the catalog)."""
    ns, name = split_name(table)
    lake.loader.forget(ns, name)
    ref = lake.table(table).iceberg.metadata.refs.get(branch)
    return ref.snapshot_id if ref is not None else None


def append(
    lake: Lakehouse,
    table: str,
    rows: pa.Table,
    *,
    branch: str,
    batch_id: str | None,
    ruleset: str | None,
    what: str,
) -> int | None:
    """Append ``rows`` to ``branch`` of ``table`` in one snapshot carrying the batch id; returns its id."""
    from wharf.sql.pipeline import resolve_reference
    from wharf.tables.commit import commit_files, conform, write_data_files

    if rows.num_rows == 0:
        return None
    ns, name = split_name(table)
    text = f"-- {what}: {rows.num_rows} row(s) into {ns}.{name} (branch {branch})" + (f", batch {batch_id}" if batch_id else "")
    with lake.api_statement("insert", text) as ctx:
        target = resolve_reference(ctx, (ns, name), role="write").table
        rows = exact_casts(rows, target.schema())
        added = write_data_files(target, conform(rows, target.schema(), table_name=f"{ns}.{name}"))
        properties = {k: v for k, v in ((BATCH_PROPERTY, batch_id), (RULESET_PROPERTY, ruleset)) if v}
        snapshot = commit_files(target, added=added, branch=branch, properties=properties)
        ctx.forget_table(ns, name)
    return snapshot.snapshot_id if snapshot is not None else None


def exact_casts(rows: pa.Table, schema: Schema) -> pa.Table:
    """Columns whose type differs from the table's, cast by DuckDB as an INSERT would cast them.

    Arrow's own casts are not always exact (decimal 21.4 becomes the double 21.400000000000002);
    DuckDB's are. Columns the table lacks are left for ``conform`` to report.
    """
    import duckdb

    from wharf.tables.commit import arrow_schema
    from wharf.tables.types import iceberg_to_duckdb

    target = arrow_schema(schema)
    fields = {f.name.lower(): (f, target.field(f.name).type) for f in schema.fields}
    differing = [
        c
        for c in rows.column_names
        if c.lower() in fields
        and pa.types.is_decimal(rows.schema.field(c).type)
        and not pa.types.is_decimal(fields[c.lower()][1])
    ]
    if not differing:
        return rows
    select = ", ".join(
        f"CAST({quote_ident(c)} AS {iceberg_to_duckdb(fields[c.lower()][0].field_type)}) AS {quote_ident(c)}"
        if c in differing
        else quote_ident(c)
        for c in rows.column_names
    )
    with duckdb.connect(":memory:") as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("incoming", rows)
        return con.execute(f"SELECT {select} FROM incoming").to_arrow_table()


def position_branch(lake: Lakehouse, table: str, branch: str, at: int | None) -> None:
    """Make ``branch`` point at ``at`` (main's head; None on an empty table), creating it if missing."""
    ns, name = split_name(table)
    lake.loader.forget(ns, name)
    existing = lake.table(table).iceberg.metadata.refs.get(branch)
    if existing is not None and existing.snapshot_id == at and at is not None:
        return
    version = f" AS OF VERSION {int(at)}" if at is not None else ""
    lake.sql(f"ALTER TABLE {quoted(table)} CREATE OR REPLACE BRANCH {quote_ident(branch)}{version}")


def drop_branch(lake: Lakehouse, table: str, branch: str) -> None:
    lake.sql(f"ALTER TABLE {quoted(table)} DROP BRANCH IF EXISTS {quote_ident(branch)}")


def publish(lake: Lakehouse, table: str, expected: int | None, target: int, *, batch_id: str) -> None:
    """Fast-forward main from ``expected`` to ``target``; ``ConflictError`` if main moved meanwhile.

    The move carries ``AssertRefSnapshotId(main = expected)``: even a writer that does not take
    Wharf's commit lock cannot slip in between the check and the move. The table's gates run on it.
    """
    from wharf.sql.pipeline import resolve_reference
    from wharf.tables.commit import commit_lock, private
    from wharf.tables.snapshots import is_ancestor

    ns, name = split_name(table)
    text = f"CALL system.fast_forward('{ns}.{name}', 'main', '{target}') -- write-audit-publish, batch {batch_id}"
    with lake.api_statement("call", text) as ctx:
        ctx.forget_table(ns, name)
        current: IcebergTable = resolve_reference(ctx, (ns, name), role="write").table
        head = current.metadata.refs.get(MAIN_BRANCH)
        now = head.snapshot_id if head is not None else None
        if now != expected:
            raise ConflictError(
                f"main of {ns}.{name} moved from snapshot {expected} to {now} while batch {batch_id} was audited",
                table=f"{ns}.{name}",
                conflicting_snapshot_id=now,
                hint="nothing was published; run the write again to audit the batch against the new main",
            )
        if not is_ancestor(current, expected, target):
            raise ValidationError(f"Snapshot {target} of {ns}.{name} does not descend from main ({expected}): cannot publish it")
        tx = compat.MemoizedTransaction(private(current))
        manage = ManageSnapshots(tx)
        manage.create_branch(
            target,
            MAIN_BRANCH,
            max_ref_age_ms=head.max_ref_age_ms if head else None,
            max_snapshot_age_ms=head.max_snapshot_age_ms if head else None,
            min_snapshots_to_keep=head.min_snapshots_to_keep if head else None,
        )
        manage.commit()
        try:
            with commit_lock(current):
                tx.commit_transaction()
        except CommitFailedException as exc:
            raise ConflictError(
                f"main of {ns}.{name} moved while batch {batch_id} was being published: {exc}",
                table=f"{ns}.{name}",
                hint="nothing was published; run the write again to audit the batch against the new main",
            ) from exc
        ctx.forget_table(ns, name)


__all__ = ["append", "drop_branch", "materialize", "position_branch", "publish", "quoted", "table_head"]
