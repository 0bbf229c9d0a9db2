"""``/api/v1``: run SQL synchronously (JSON, CSV or an Arrow IPC stream, with a row limit) and browse the catalog.

Every request runs as its principal through the same ``Lakehouse.sql`` a Python or CLI user
calls, so the statement pipeline (governance, events, commit path) applies unchanged. Not yet
here (issue 12, section 3): asynchronous queries and the result cache.
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
from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response

from wharf.errors import NotFound
from wharf.result import Result
from wharf.server.context import RequestContext
from wharf.server.rest.errors import bad_request
from wharf.server.state import request_context
from wharf.tables.loader import split_name

router = APIRouter(prefix="/api/v1", tags=["Wharf API"])
Ctx = Annotated[RequestContext, Depends(request_context)]
DEFAULT_MAX_ROWS = 1000
MAX_ROWS_LIMIT = 100_000
FORMATS = ("json", "csv", "arrow")
ARROW_STREAM = "application/vnd.apache.arrow.stream"


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


def render(table: pa.Table, truncated: bool, result: Result, fmt: str) -> Response:
    headers = {"Wharf-Truncated": "true" if truncated else "false"}
    if fmt == "csv":
        sink = io.BytesIO()
        pacsv.write_csv(table, sink)
        return Response(sink.getvalue(), media_type="text/csv", headers=headers)
    if fmt == "arrow":
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue(), media_type=ARROW_STREAM, headers=headers)
    body = json.dumps(_rows_payload(table, truncated, result), default=_json_value)
    return Response(body, media_type="application/json", headers=headers)


@router.post("/sql")
def run_sql(ctx: Ctx, body: Annotated[Any, Body()]) -> Response:
    """Run a statement (or a script: the last statement's rows are returned) with a row limit.

    Body: ``{"sql": "...", "max_rows": 1000, "format": "json" | "csv" | "arrow", "dialect": "spark"}``.
    """
    if not isinstance(body, dict) or not isinstance(body.get("sql"), str) or not body["sql"].strip():
        raise bad_request('Send {"sql": "<statement>"}')
    fmt = body.get("format", "json")
    if fmt not in FORMATS:
        raise bad_request(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    max_rows = body.get("max_rows", DEFAULT_MAX_ROWS)
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or not 0 <= max_rows <= MAX_ROWS_LIMIT:
        raise bad_request(f"max_rows must be an integer from 0 to {MAX_ROWS_LIMIT}")
    dialect = body.get("dialect")
    if dialect is not None and not isinstance(dialect, str):
        raise bad_request("dialect must be a string (spark, trino, duckdb …)")
    result = ctx.lake.sql(body["sql"], dialect=dialect)
    table, truncated = limited(result, max_rows)
    return render(table, truncated, result, fmt)


@router.get("/namespaces")
def namespaces(ctx: Ctx) -> Response:
    ctx.authorize("listNamespaces", "*")
    return Response(json.dumps({"namespaces": ctx.lake.namespaces()}), media_type="application/json")


@router.get("/namespaces/{namespace}/tables")
def tables(ctx: Ctx, namespace: str) -> Response:
    ctx.authorize("listTables", namespace)
    if not ctx.lake.catalog.namespace_exists(namespace):
        raise NotFound(f"Namespace {namespace!r} does not exist")
    names = [t.split(".")[-1] for t in ctx.lake.tables(namespace)]
    return Response(json.dumps({"namespace": namespace, "tables": names}), media_type="application/json")


@router.get("/tables/{name}")
def describe(ctx: Ctx, name: str, snapshots: Annotated[int, Query(ge=0, le=1000)] = 20) -> Response:
    """Columns, partitioning, properties, refs and the newest snapshots of ``namespace.table``."""
    namespace, table_name = split_name(name)
    ctx.authorize("loadTable", f"{namespace}.{table_name}")
    table = ctx.lake.iceberg_table(namespace, table_name)
    metadata = table.metadata
    newest = sorted(metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)[:snapshots]
    payload = {
        "name": ".".join(table.name()),
        "location": metadata.location,
        "format_version": metadata.format_version,
        "columns": [
            {"id": f.field_id, "name": f.name, "type": str(f.field_type), "required": f.required, "doc": f.doc}
            for f in table.schema().fields
        ],
        "partitioning": [{"name": f.name, "source_id": f.source_id, "transform": str(f.transform)} for f in table.spec().fields],
        "properties": dict(metadata.properties),
        "current_snapshot_id": metadata.current_snapshot_id,
        "refs": {
            name: {"type": str(ref.snapshot_ref_type), "snapshot_id": ref.snapshot_id} for name, ref in metadata.refs.items()
        },
        "snapshots": [
            {
                "snapshot_id": s.snapshot_id,
                "parent_id": s.parent_snapshot_id,
                "timestamp_ms": s.timestamp_ms,
                "operation": s.summary.operation.value if s.summary else None,
                "summary": dict(s.summary.additional_properties) if s.summary else {},
            }
            for s in newest
        ],
    }
    return Response(json.dumps(payload, default=_json_value), media_type="application/json")


@router.get("/tables/{name}/preview")
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
