"""``/api/v1``: run SQL synchronously (JSON, CSV or an Arrow IPC stream, with a row limit) and browse the catalog.

Every request runs as its principal through the same ``Lakehouse.sql`` a Python or CLI user
calls, so the statement pipeline (governance, events, commit path) applies unchanged. Queries
answer from the result cache when they can (``wharf.server.api.result_cache``; the
``X-Wharf-Cache`` header says hit, miss or bypass). Asynchronous queries are in ``query_routes``.
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
import uuid
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.csv as pacsv
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from wharf.errors import NotFound
from wharf.result import Result
from wharf.server.api import models, result_cache
from wharf.server.api.models import ARROW_STREAM, ERRORS, MAX_ROWS_LIMIT, TABULAR_CONTENT
from wharf.server.context import RequestContext
from wharf.server.rest.errors import bad_request
from wharf.server.state import request_context, server_state
from wharf.tables.loader import split_name

router = APIRouter(prefix="/api/v1", tags=["Wharf API"])
Ctx = Annotated[RequestContext, Depends(request_context)]
DEFAULT_MAX_ROWS = 1000
FORMATS = ("json", "csv", "arrow")


def _json_value(value: Any) -> Any:
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def limited(result: Result, max_rows: int) -> tuple[pa.Table, bool]:
    """At most ``max_rows`` rows of ``result`` (reading one batch past the limit at most), and whether more existed."""
    batches: list[pa.RecordBatch] = []
    kept = 0
    truncated = False
    for batch in result.iter_batches():
        if kept + batch.num_rows > max_rows:
            batches.append(batch.slice(0, max_rows - kept))
            truncated = True
            break
        batches.append(batch)
        kept += batch.num_rows
    return pa.Table.from_batches(batches, schema=result.schema), truncated


def _rows_payload(table: pa.Table, truncated: bool, result: Result) -> dict[str, Any]:
    return {
        "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
        "rows": [list(row.values()) for row in table.to_pylist()],
        "row_count": table.num_rows,
        "truncated": truncated,
        "message": result.message,
        "snapshot_id": result.snapshot_id,
    }


def render(table: pa.Table, truncated: bool, result: Result, fmt: str, cache: str | None = None) -> Response:
    headers = {"Wharf-Truncated": "true" if truncated else "false"}
    if cache is not None:
        headers[result_cache.CACHE_HEADER] = cache
    tabular = tabular_response(table, fmt, headers)
    if tabular is not None:
        return tabular
    body = json.dumps(_rows_payload(table, truncated, result), default=_json_value)
    return Response(body, media_type="application/json", headers=headers)


def tabular_response(table: pa.Table, fmt: str, headers: dict[str, str]) -> Response | None:
    """``table`` as CSV or an Arrow IPC stream for ``fmt`` ``csv``/``arrow``; None for JSON (each caller shapes its own)."""
    sink = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, sink)
        return Response(sink.getvalue(), media_type="text/csv", headers=headers)
    if fmt == "arrow":
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue(), media_type=ARROW_STREAM, headers=headers)
    return None


def json_rows(table: pa.Table) -> list[list[Any]]:
    """Rows as lists, column by column (faster than row dicts for wide pages)."""
    columns = [column.to_pylist() for column in table.columns]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


@router.post(
    "/sql",
    response_model=models.RowsResponse,
    responses={**TABULAR_CONTENT, **ERRORS},
    summary="Run SQL synchronously, with a row limit",
)
def run_sql(ctx: Ctx, request: Request, body: models.SqlRequest) -> Response:
    """Run a statement (or a script: the last statement's rows are returned) with a row limit.

    Queries answer from the result cache when they can (``X-Wharf-Cache: hit``); a commit to a
    table the query read makes the old entry unreachable, so a cached answer is never stale.
    """
    if not body.sql.strip():
        raise bad_request('Send {"sql": "<statement>"}')
    request.state.audit_statement = body.sql  # the request's audit record names it (a cached answer runs no statement)
    cache = server_state(request).result_cache
    answer = result_cache.lookup(cache, ctx.lake, body.sql, body.params, body.dialect)
    if answer.cached is not None:
        rows = answer.cached.rows(body.max_rows)
        if rows is not None:
            cache.count("hit")
            return render(rows[0], rows[1], Result(), body.format, cache="hit")
    result = ctx.lake.sql(body.sql, body.params, dialect=body.dialect)
    table, truncated = limited(result, body.max_rows)
    # A query's first run compiles it: only now can its key be known (remember says bypass if never).
    outcome = result_cache.remember(cache, ctx.lake, body.sql, body.params, body.dialect, result, table, not truncated)
    cache.count(outcome)
    return render(table, truncated, result, body.format, cache=outcome)


@router.get("/catalogs", response_model=models.CatalogList, responses=ERRORS)
def catalogs(ctx: Ctx, request: Request) -> Response:
    """The catalogs this server serves: one, the lake, under its warehouse name."""
    ctx.authorize("listCatalogs", "*")
    server = server_state(request)
    payload = {"catalogs": [{"name": server.config.warehouse, "location": str(server.lake.location)}]}
    return Response(json.dumps(payload), media_type="application/json")


@router.get("/namespaces", response_model=models.NamespaceList, responses=ERRORS)
def namespaces(ctx: Ctx) -> Response:
    """The lake's namespaces."""
    ctx.authorize("listNamespaces", "*")
    return Response(json.dumps({"namespaces": ctx.lake.namespaces()}), media_type="application/json")


@router.get("/namespaces/{namespace}/tables", response_model=models.TableList, responses=ERRORS)
def tables(ctx: Ctx, namespace: str) -> Response:
    """The tables of one namespace."""
    ctx.authorize("listTables", namespace)
    if not ctx.lake.catalog.namespace_exists(namespace):
        raise NotFound(f"Namespace {namespace!r} does not exist")
    names = [t.split(".")[-1] for t in ctx.lake.tables(namespace)]
    return Response(json.dumps({"namespace": namespace, "tables": names}), media_type="application/json")


def _load(ctx: RequestContext, name: str) -> Any:
    """The PyIceberg table ``namespace.table``, resolved as the request's principal (policies apply)."""
    namespace, table_name = split_name(name)
    ctx.authorize("loadTable", f"{namespace}.{table_name}")
    return ctx.lake.iceberg_table(namespace, table_name)


def _columns(table: Any) -> list[dict[str, Any]]:
    return [
        {"id": f.field_id, "name": f.name, "type": str(f.field_type), "required": f.required, "doc": f.doc}
        for f in table.schema().fields
    ]


def _refs(metadata: Any) -> dict[str, dict[str, Any]]:
    return {name: {"type": str(ref.snapshot_ref_type), "snapshot_id": ref.snapshot_id} for name, ref in metadata.refs.items()}


def _snapshots(metadata: Any, newest: int) -> list[dict[str, Any]]:
    chosen = sorted(metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)[:newest]
    return [
        {
            "snapshot_id": s.snapshot_id,
            "parent_id": s.parent_snapshot_id,
            "timestamp_ms": s.timestamp_ms,
            "operation": s.summary.operation.value if s.summary else None,
            "summary": dict(s.summary.additional_properties) if s.summary else {},
        }
        for s in chosen
    ]


def _json(payload: Any) -> Response:
    return Response(json.dumps(payload, default=_json_value), media_type="application/json")


@router.get("/tables/{name}", response_model=models.TableDescription, responses=ERRORS)
def describe(ctx: Ctx, name: str, snapshots: Annotated[int, Query(ge=0, le=1000)] = 20) -> Response:
    """Columns, partitioning, properties, refs and the newest snapshots of ``namespace.table``."""
    table = _load(ctx, name)
    metadata = table.metadata
    return _json(
        {
            "name": ".".join(table.name()),
            "location": metadata.location,
            "format_version": metadata.format_version,
            "columns": _columns(table),
            "partitioning": [
                {"name": f.name, "source_id": f.source_id, "transform": str(f.transform)} for f in table.spec().fields
            ],
            "properties": dict(metadata.properties),
            "current_snapshot_id": metadata.current_snapshot_id,
            "refs": _refs(metadata),
            "snapshots": _snapshots(metadata, snapshots),
        }
    )


@router.get("/tables/{name}/columns", response_model=models.ColumnList, responses=ERRORS)
def columns(ctx: Ctx, name: str) -> Response:
    """The columns of ``namespace.table``: field id, name, Iceberg type, required, doc."""
    table = _load(ctx, name)
    return _json({"table": ".".join(table.name()), "columns": _columns(table)})


@router.get("/tables/{name}/snapshots", response_model=models.SnapshotList, responses=ERRORS)
def snapshots(ctx: Ctx, name: str, limit: Annotated[int, Query(ge=0, le=100_000)] = 100) -> Response:
    """The newest ``limit`` snapshots of ``namespace.table``, newest first."""
    table = _load(ctx, name)
    metadata = table.metadata
    return _json(
        {
            "table": ".".join(table.name()),
            "current_snapshot_id": metadata.current_snapshot_id,
            "snapshots": _snapshots(metadata, limit),
        }
    )


@router.get("/tables/{name}/refs", response_model=models.RefList, responses=ERRORS)
def refs(ctx: Ctx, name: str) -> Response:
    """The branches and tags of ``namespace.table`` and the snapshot each points at."""
    table = _load(ctx, name)
    return _json({"table": ".".join(table.name()), "refs": _refs(table.metadata)})


@router.get("/tables/{name}/preview", response_model=models.RowsResponse, responses={**TABULAR_CONTENT, **ERRORS})
def preview(
    ctx: Ctx,
    name: str,
    limit: Annotated[int, Query(ge=0, le=MAX_ROWS_LIMIT)] = 100,
    fmt: Annotated[str, Query(alias="format")] = "json",
) -> Response:
    """The first ``limit`` rows of a table (through the same read path and policies as any query)."""
    namespace, table_name = split_name(name)
    if fmt not in FORMATS:
        raise bad_request(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in (namespace, table_name))
    result = ctx.lake.sql(f"SELECT * FROM {quoted} LIMIT {int(limit) + 1}")
    table, truncated = limited(result, limit)
    return render(table, truncated, result, fmt)


__all__ = ["router"]
