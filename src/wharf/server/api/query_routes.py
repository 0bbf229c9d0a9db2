"""``/api/v1/queries`` (asynchronous SQL), ``/api/v1/precache`` (pre-cached queries) and ``/api/v1/cache``.

- ``POST /api/v1/queries`` {sql, params?, dialect?} → 202 {id, status}
- ``GET /api/v1/queries/{id}`` → status, timings, row count, the snapshots read, the error body
- ``DELETE /api/v1/queries/{id}`` → cancels (interrupts DuckDB), answers the status
- ``GET /api/v1/queries/{id}/results?page_token=…&page_size=…&format=json|csv|arrow`` → one page
  (the ``Accept`` header chooses the format when ``format`` is not given); the next page's token
  is in the JSON body and in the ``X-Wharf-Next-Page-Token`` header (absent on the last page).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from wharf.server.api import jobs, models
from wharf.server.api.jobs import FAILED, FINISHED, SUCCEEDED, Job
from wharf.server.api.models import ARROW_STREAM, ERRORS, MAX_ROWS_LIMIT
from wharf.server.api.sql_routes import FORMATS, _json_value, json_rows, tabular_response
from wharf.server.context import RequestContext
from wharf.server.rest.errors import RestError, bad_request
from wharf.server.state import request_context, server_state

router = APIRouter(prefix="/api/v1", tags=["Wharf API"])
Ctx = Annotated[RequestContext, Depends(request_context)]
DEFAULT_PAGE_SIZE = 1000
NEXT_PAGE_HEADER = "X-Wharf-Next-Page-Token"
_GONE: dict[int | str, dict[str, Any]] = {410: {"model": models.ErrorBody, "description": "The query's results expired"}}


def _manager(request: Request) -> jobs.QueryManager:
    manager = server_state(request).queries
    assert manager is not None  # created with the server state
    return manager


def _status(job: Job, code: int = 200) -> Response:
    return Response(json.dumps(job.describe(), default=_json_value), status_code=code, media_type="application/json")


@router.post("/queries", status_code=202, response_model=models.QueryAccepted, responses=ERRORS, summary="Submit a query")
def submit(ctx: Ctx, request: Request, body: models.QueryRequest) -> Response:
    """Queue a statement to run asynchronously as the caller; poll its status, then page through its results."""
    if not body.sql.strip():
        raise bad_request('Send {"sql": "<statement>"}')
    ctx.authorize("submitQuery", "*")
    job = _manager(request).submit(ctx.lake, body.sql, body.params, body.dialect)
    location = f"/api/v1/queries/{job.id}"
    payload = {"id": job.id, "status": job.status}
    return Response(json.dumps(payload), status_code=202, media_type="application/json", headers={"Location": location})


@router.get("/queries", response_model=models.QueryList, responses=ERRORS, summary="The caller's queries")
def list_queries(ctx: Ctx, request: Request) -> Response:
    """The caller's queries this server process still knows (oldest first)."""
    found = [job.describe() for job in _manager(request).list(ctx.principal)]
    return Response(json.dumps({"queries": found}, default=_json_value), media_type="application/json")


@router.get("/queries/{query_id}", response_model=models.QueryStatus, responses={**ERRORS, **_GONE})
def status(ctx: Ctx, request: Request, query_id: str) -> Response:
    """The query's status; a failed query carries the error body it failed with."""
    return _status(_manager(request).get(ctx.principal, query_id))


@router.delete("/queries/{query_id}", response_model=models.QueryStatus, responses={**ERRORS, **_GONE})
def cancel(ctx: Ctx, request: Request, query_id: str) -> Response:
    """Cancel a queued or running query (DuckDB is interrupted); a finished query is left as it is."""
    return _status(_manager(request).cancel(ctx.principal, query_id))


def _format(requested: str | None, accept: str | None) -> str:
    if requested is not None:
        if requested not in FORMATS:
            raise bad_request(f"format {requested!r} is not one of {', '.join(FORMATS)}")
        return requested
    accept = (accept or "").lower()
    if ARROW_STREAM in accept:
        return "arrow"
    if "text/csv" in accept:
        return "csv"
    return "json"


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "offset" or not value.isdigit():
            raise ValueError(text)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request(
            f"page_token {token!r} is not a token this API gave", hint="use next_page_token of the previous page"
        ) from None


@router.get(
    "/queries/{query_id}/results",
    response_model=models.ResultsPage,
    responses={**models.TABULAR_CONTENT, **ERRORS, **_GONE, 409: {"model": models.ErrorBody, "description": "Not finished"}},
)
def results(
    ctx: Ctx,
    request: Request,
    query_id: str,
    page_token: str | None = None,
    page_size: Annotated[int, Query(ge=1, le=MAX_ROWS_LIMIT)] = DEFAULT_PAGE_SIZE,
    fmt: Annotated[str | None, Query(alias="format", description="json, csv or arrow (else the Accept header)")] = None,
) -> Response:
    """One page of a succeeded query's rows, as JSON, CSV or an Arrow IPC stream."""
    chosen = _format(fmt, request.headers.get("accept"))
    job = _manager(request).get(ctx.principal, query_id)
    if job.status == FAILED and job.error is not None:
        error = job.error["error"]
        raise RestError(error["code"], error["type"], error["message"])
    if job.status != SUCCEEDED or job.table is None:
        hint = "poll GET /api/v1/queries/{id} until its status is succeeded" if job.status not in FINISHED else None
        raise RestError(409, "ConflictException", f"Query {query_id} has no results: it is {job.status}", hint=hint)
    table: pa.Table = job.table
    offset = _offset(page_token)
    if offset > table.num_rows:
        raise bad_request(f"page_token points past the {table.num_rows} rows of query {query_id}")
    page = table.slice(offset, page_size)
    following = offset + page.num_rows
    token = _token(following) if following < table.num_rows else None
    headers = {"X-Wharf-Total-Rows": str(table.num_rows), "X-Wharf-Cache": job.cache or "bypass"}
    if token is not None:
        headers[NEXT_PAGE_HEADER] = token
    tabular = tabular_response(page, chosen, headers)
    if tabular is not None:
        return tabular
    payload: dict[str, Any] = {
        "id": job.id,
        "columns": [{"name": f.name, "type": str(f.type)} for f in page.schema],
        "rows": json_rows(page),
        "row_count": page.num_rows,
        "total_rows": table.num_rows,
        "offset": offset,
        "next_page_token": token,
    }
    return Response(json.dumps(payload, default=_json_value), media_type="application/json", headers=headers)


def _precache(request: Request) -> Any:
    precache = server_state(request).precache
    assert precache is not None  # created with the server state
    return precache


@router.post(
    "/precache", status_code=201, response_model=models.PrecacheEntry, responses=ERRORS, summary="Register a pre-cached query"
)
def register_precache(ctx: Ctx, request: Request, body: models.PrecacheRequest) -> Response:
    """Register a query that is re-run (as the caller) right after each commit to a table it reads."""
    ctx.authorize("registerPrecache", "*")
    query = _precache(request).register(ctx.principal, body.sql)
    return Response(json.dumps(query.describe()), status_code=201, media_type="application/json")


@router.get("/precache", response_model=models.PrecacheList, responses=ERRORS)
def list_precache(ctx: Ctx, request: Request) -> Response:
    """The caller's pre-cached queries (the lake owner sees all), with how their last refresh went."""
    found = [q.describe() for q in _precache(request).list(ctx.principal)]
    return Response(json.dumps({"queries": found}), media_type="application/json")


@router.get("/precache/{query_id}", response_model=models.PrecacheEntry, responses=ERRORS)
def get_precache(ctx: Ctx, request: Request, query_id: str) -> Response:
    return Response(json.dumps(_precache(request).get(ctx.principal, query_id).describe()), media_type="application/json")


@router.delete("/precache/{query_id}", status_code=204, responses=ERRORS)
def delete_precache(ctx: Ctx, request: Request, query_id: str) -> Response:
    """Stop refreshing a pre-cached query (its cached rows age out of the cache)."""
    _precache(request).delete(ctx.principal, query_id)
    return Response(status_code=204)


@router.get("/cache", response_model=models.CacheStats, responses=ERRORS)
def cache_stats(ctx: Ctx, request: Request) -> Response:
    """The result cache's size and counters (hits, misses, evictions) in this server process."""
    ctx.authorize("cacheStats", "*")
    return Response(json.dumps(server_state(request).result_cache.stats()), media_type="application/json")


__all__ = ["router"]
