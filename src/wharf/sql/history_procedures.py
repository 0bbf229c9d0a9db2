"""``CALL system.create_changelog_view``, ``system.create_scd2_view`` and ``system.refresh_scd2_table``.

The first two make a view over the ``changes`` / ``scd2`` metadata table of a table (or of one of
its branches: ``table => 'db.t.branch_dev'``), with the procedure's options stored in the view's
properties: temporary (this lake handle only, as Spark's) unless ``persist => true``. The third
materializes SCD Type-2 into a table incrementally: it appends the versions created since the
last refresh and closes the versions that ended, in one MERGE, recording the source snapshot it
processed in the target snapshot's summary. docs/history.md describes them and where they
differ from Spark.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import sqlglot
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH
from sqlglot import exp

import wharf.sql.adoption_procedures  # noqa: F401  (registers the map and array argument kinds)
from wharf.errors import AlreadyExists, InvalidArgument
from wharf.identifiers import check_identifier
from wharf.sql.context import Context
from wharf.sql.executor import run_duckdb
from wharf.sql.history_tables import OPTIONS_META, VIEW_PROPERTIES
from wharf.sql.pipeline import resolve_reference
from wharf.sql.procedures import COERCE, Param, procedure
from wharf.sql.references import Reference
from wharf.tables.changelog import (
    CHANGE_ORDINAL,
    EFFECTIVE_END,
    EFFECTIVE_START,
    IS_CURRENT,
    ChangelogOptions,
    Scd2Options,
    head_snapshot_id,
    identifier_columns,
    raw_changes_sql,
    scd2_sql,
    snapshots_in_range,
)
from wharf.tables.loader import split_name
from wharf.tables.refs import parse_timestamp_ms
from wharf.tables.scan import quote_ident as q

SOURCE_PROPERTY = "wharf.scd2.source"
SOURCE_SNAPSHOT_PROPERTY = "wharf.scd2.source-snapshot-id"


def _as_table_ref(ctx: Context, value: Any, param: str) -> Reference:
    """A table, or one of its branches (``db.t.branch_x``), read by the procedure."""
    if not isinstance(value, str):
        raise InvalidArgument(f"Argument '{param}' must be a table name such as 'db.t', got {value!r}")
    return resolve_reference(ctx, value, role="read")


COERCE.setdefault("table_ref", _as_table_ref)


def _branch(ref: Reference) -> str | None:
    if ref.version.ref is None or ref.version.ref == MAIN_BRANCH:
        return None
    if (
        ref.table.metadata.refs.get(ref.version.ref) is None
        or ref.table.metadata.refs[ref.version.ref].snapshot_ref_type != "branch"
    ):
        raise InvalidArgument(f"{ref.version.ref} is a tag of {ref.label}: changes follow a branch", hint="name a branch")
    return ref.version.ref


def _snapshot_option(options: dict[str, str], key: str) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if not value.strip().lstrip("-").isdigit():
        raise InvalidArgument(f"Option '{key}' must be a snapshot id, got {value!r}")
    return int(value)


def _time_option(options: dict[str, str], key: str) -> int | None:
    """Epoch milliseconds (Spark's read option) or a timestamp such as '2024-01-01 10:00:00'."""
    value = options.get(key)
    if value is None:
        return None
    text = value.strip()
    try:
        return int(text) if text.lstrip("-").isdigit() else parse_timestamp_ms(text)
    except InvalidArgument as exc:
        raise InvalidArgument(f"Option '{key}': {exc.message}", hint="epoch milliseconds or 'YYYY-MM-DD hh:mm:ss'") from exc


_OPTIONS = ("start-snapshot-id", "end-snapshot-id", "start-timestamp", "end-timestamp")


def changelog_options(
    ref: Reference,
    options: dict[str, str] | None,
    *,
    net_changes: bool | None,
    compute_updates: bool | None,
    identifiers: list[str] | None,
) -> ChangelogOptions:
    """Spark's arguments of ``create_changelog_view`` as ``ChangelogOptions`` (checked against the table)."""
    given = dict(options or {})
    unknown = sorted(set(given) - set(_OPTIONS))
    if unknown:
        raise InvalidArgument(f"Unknown changelog option '{unknown[0]}'", hint="options: " + ", ".join(_OPTIONS))
    if (given.keys() & {"start-snapshot-id", "end-snapshot-id"}) and (given.keys() & {"start-timestamp", "end-timestamp"}):
        raise InvalidArgument(
            "Give the range as snapshot ids or as timestamps, not both",
            hint="e.g. map('start-snapshot-id', '1', 'end-snapshot-id', '2')",
        )
    keys = identifier_columns(ref.table, identifiers or ())
    # Spark: updates are computed when identifier columns are given, unless told otherwise.
    updates = bool(identifiers) if compute_updates is None else compute_updates
    built = ChangelogOptions(
        ref=_branch(ref),
        start_snapshot_id=_snapshot_option(given, "start-snapshot-id"),
        end_snapshot_id=_snapshot_option(given, "end-snapshot-id"),
        start_ms=_time_option(given, "start-timestamp"),
        end_ms=_time_option(given, "end-timestamp"),
        net_changes=bool(net_changes),
        compute_updates=updates,
        identifier_columns=tuple(keys) if updates else (),
    )
    snapshots_in_range(ref.table, built)  # a range that does not exist fails now, not at the first query
    return built


def _history_view(ctx: Context, ref: Reference, kind: str, view: str, options_json: str, persist: bool) -> str:
    """Create the view ``SELECT * FROM <table>.<kind>`` carrying ``options_json``; returns its name."""
    from wharf.sql.views import DEFAULT_NAMESPACE, _schema_of, _version, create_temporary_view

    ns, name = split_name(view)
    check_identifier((ns, name), "view")
    if ctx.find_table(ns, name) is not None:
        raise AlreadyExists(f"{ns}.{name} is a table", hint="choose another name for the view")
    query = sqlglot.parse_one(f"SELECT * FROM {q(ref.namespace)}.{q(ref.name)}.{q(kind)}", read="duckdb")
    properties = {VIEW_PROPERTIES[kind]: options_json}
    annotated = query.copy()
    for node in annotated.find_all(exp.Table):
        node.meta[OPTIONS_META] = options_json
    schema = _schema_of(ctx, annotated, None, {})
    if not persist:
        create_temporary_view(ctx, (ns, name), query, schema, properties, replace=True)
        return name if ns == "default" else f"{ns}.{name}"
    if ctx.catalog.view_exists((ns, name)):
        ctx.catalog.replace_view((ns, name), schema, _version(ctx, query, DEFAULT_NAMESPACE), properties)
    else:
        ctx.catalog.create_view((ns, name), schema, _version(ctx, query, DEFAULT_NAMESPACE), properties=properties)
    return f"{ns}.{name}"


@procedure(
    "create_changelog_view",
    [
        Param("table", "table_ref"),
        Param("changelog_view", "string", False),
        Param("options", "map<string,string>", False),
        Param("net_changes", "boolean", False),
        Param("compute_updates", "boolean", False),
        Param("identifier_columns", "array<string>", False),
        Param("persist", "boolean", False),
    ],
    [("changelog_view", pa.string())],
)
def _create_changelog_view(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """A view of the rows a range of snapshots changed (Spark's semantics; merge-on-read and branches too)."""
    ref: Reference = a["table"]
    options = changelog_options(
        ref, a["options"], net_changes=a["net_changes"], compute_updates=a["compute_updates"], identifiers=a["identifier_columns"]
    )
    view = a["changelog_view"] or f"{ref.name}_changes"
    return {"changelog_view": _history_view(ctx, ref, "changes", view, options.to_json(), bool(a["persist"]))}


@procedure(
    "create_scd2_view",
    [
        Param("table", "table_ref"),
        Param("view", "string", False),
        Param("identifier_columns", "array<string>", False),
        Param("delete_markers", "boolean", False),
        Param("persist", "boolean", False),
    ],
    [("view", pa.string())],
)
def _create_scd2_view(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """A view with one row per version of each key (SCD Type-2), derived from the snapshots."""
    ref: Reference = a["table"]
    keys = identifier_columns(ref.table, a["identifier_columns"] or ())
    options = Scd2Options(identifier_columns=tuple(keys), delete_markers=bool(a["delete_markers"]), ref=_branch(ref))
    scd2_sql(ref.table, ctx.planner, options)  # no key: fail now
    view = a["view"] or f"{ref.name}_scd2"
    return {"view": _history_view(ctx, ref, "scd2", view, options.to_json(), bool(a["persist"]))}


# --- incremental refresh of a materialized SCD2 table -----------------------------------------------


def _last_refresh(target: Table, source: str) -> int | None:
    """The source snapshot the newest refresh of ``target`` from ``source`` processed (its summary says)."""
    snapshot = target.metadata.current_snapshot()
    while snapshot is not None:
        props = snapshot.summary.additional_properties if snapshot.summary is not None else {}
        if props.get(SOURCE_PROPERTY) == source and SOURCE_SNAPSHOT_PROPERTY in props:
            return int(props[SOURCE_SNAPSHOT_PROPERTY])
        parent = snapshot.parent_snapshot_id
        snapshot = target.metadata.snapshot_by_id(parent) if parent is not None else None
    return None


@procedure(
    "refresh_scd2_table",
    [Param("table", "table_ref"), Param("target", "string"), Param("identifier_columns", "array<string>", False)],
    [("source_snapshot_id", pa.int64()), ("added_versions", pa.int64()), ("closed_versions", pa.int64())],
)
def _refresh_scd2_table(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Bring a materialized SCD2 table up to date: append new versions, close ended ones (one MERGE).

    The first refresh creates ``target`` (``effective_start`` … ``is_current`` after the source's
    columns). Each refresh reads only the source snapshots committed since the one recorded in
    the target's newest refresh snapshot (``wharf.scd2.source-snapshot-id``).
    """
    from wharf.sql.merge import run_merge

    ref: Reference = a["table"]
    source = ref.table
    keys = identifier_columns(source, a["identifier_columns"] or ())
    if not keys:
        raise InvalidArgument(
            f"Table {ref.label} has no identifier fields to match versions by",
            hint="pass identifier_columns => array('id', …) or ALTER TABLE … SET IDENTIFIER FIELDS id",
        )
    branch = _branch(ref)
    head = head_snapshot_id(source, branch)
    ns, name = split_name(a["target"])
    target = ctx.find_table(ns, name)
    options = Scd2Options(identifier_columns=tuple(keys), ref=branch, end_snapshot_id=head)
    if target is None:
        versions_sql, _ = scd2_sql(source, ctx.planner, options)
        _create_empty(ctx, ns, name, versions_sql)
        target = ctx.find_table(ns, name)
        assert target is not None
    last = _last_refresh(target, ref.label if branch is None else f"{ref.label}.branch_{branch}")
    if last is not None and last == head:
        return {"source_snapshot_id": head, "added_versions": 0, "closed_versions": 0}
    versions_sql, keys = scd2_sql(source, ctx.planner, options, start_snapshot_id=last)
    snapshots = snapshots_in_range(source, ChangelogOptions(ref=branch, start_snapshot_id=last, end_snapshot_id=head))
    schema = source.schema()
    rows, commits = raw_changes_sql(source, ctx.planner, snapshots, schema)
    key_list = ", ".join(q(k) for k in keys)
    columns = [f.name for f in schema.fields]
    # A key whose first change in the range is a delete ends the version the target holds open.
    order = f"r.{CHANGE_ORDINAL} * 2 + (r.__wharf_weight > 0)::INTEGER"  # a snapshot's delete before its insert
    closing = (
        f"SELECT {key_list}, epoch_ms(arg_min(c.__wharf_ms, {order})) AS {EFFECTIVE_END} FROM ({rows}) r "
        f"JOIN {commits} ON r.{CHANGE_ORDINAL} = c.{CHANGE_ORDINAL} GROUP BY ALL "
        f"HAVING arg_min(r.__wharf_weight, {order}) < 0"
    )
    source_rows = (
        f"SELECT {', '.join(q(c) for c in columns)}, {EFFECTIVE_START}, {EFFECTIVE_END}, {IS_CURRENT}, 'add' AS __op "
        f"FROM ({versions_sql}) UNION ALL SELECT "
        + ", ".join(q(c) if c in keys else "NULL" for c in columns)
        + f", NULL, {EFFECTIVE_END}, false, 'close' FROM ({closing})"
    )
    batch = run_duckdb(ctx.con, source_rows).to_arrow_table()
    added = sum(1 for op in batch.column("__op").to_pylist() if op == "add")
    closed = batch.num_rows - added
    if batch.num_rows:
        temp = "__wharf_scd2_batch"
        ctx.con.register(temp, batch)
        ctx.registered[temp] = batch
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in keys)
        all_columns = [*columns, EFFECTIVE_START, EFFECTIVE_END, IS_CURRENT]
        merge = sqlglot.parse_one(
            f"MERGE INTO {q(ns)}.{q(name)} t USING {temp} s ON {on} AND t.{IS_CURRENT} AND s.__op = 'close' "
            f"WHEN MATCHED THEN UPDATE SET {EFFECTIVE_END} = s.{EFFECTIVE_END}, {IS_CURRENT} = false "
            f"WHEN NOT MATCHED AND s.__op = 'add' THEN INSERT ({', '.join(q(c) for c in all_columns)}) "
            f"VALUES ({', '.join('s.' + q(c) for c in all_columns)})",
            read="duckdb",
        )
        ctx.statement.summary.update(
            {
                SOURCE_PROPERTY: ref.label if branch is None else f"{ref.label}.branch_{branch}",
                SOURCE_SNAPSHOT_PROPERTY: str(head),
            }
        )
        try:
            run_merge(ctx, merge)
        finally:
            ctx.con.unregister(temp)
            ctx.registered.pop(temp, None)
    return {"source_snapshot_id": head, "added_versions": added, "closed_versions": closed}


def _create_empty(ctx: Context, ns: str, name: str, versions_sql: str) -> None:
    """Create the SCD2 target table with the columns of ``versions_sql`` (no rows yet)."""
    from pyiceberg.schema import Schema

    from wharf import pyiceberg_compat as compat
    from wharf.sql.ddl import create_table, partition_spec

    arrow = run_duckdb(ctx.con, f"SELECT * FROM ({versions_sql}) LIMIT 0").to_arrow_table()
    check_identifier((ns, name), "table")
    schema = Schema(*compat.arrow_to_iceberg_fields(arrow.schema))
    create_table(ctx, (ns, name), schema, partition_spec(schema, []), {}, None)
    ctx.forget_table(ns, name)
