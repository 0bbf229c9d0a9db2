"""Request and response models of ``/api/v1`` (they make FastAPI's ``/openapi.json`` describe every endpoint)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ROWS_LIMIT = 100_000
Format = Literal["json", "csv", "arrow"]
Params = list[Any] | dict[str, Any] | None
ARROW_STREAM = "application/vnd.apache.arrow.stream"

# The alternative bodies of a route that answers JSON, CSV or an Arrow IPC stream.
TABULAR_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
        },
        "headers": {"X-Wharf-Cache": {"description": "hit, miss or bypass (not cacheable)", "schema": {"type": "string"}}},
    }
}


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: int


class ErrorBody(BaseModel):
    """Every error: the Iceberg REST spec's body."""

    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "Bad request (malformed body, bad SQL)"),
        (401, "Not authenticated"),
        (403, "Not allowed"),
        (404, "Not found"),
    )
}


class SqlRequest(BaseModel):
    """``POST /api/v1/sql``: run a statement (or a script: the last statement's rows are returned)."""

    model_config = ConfigDict(extra="ignore")

    sql: str = Field(description="One statement, or a script")
    params: Params = Field(default=None, description="Values of ? (a list) or $name (an object) placeholders")
    max_rows: int = Field(default=1000, ge=0, le=MAX_ROWS_LIMIT, description="At most this many rows are returned")
    format: Format = "json"
    dialect: str | None = Field(default=None, description="spark, trino, duckdb …")


class Column(BaseModel):
    name: str
    type: str = Field(description="The Arrow type")


class RowsResponse(BaseModel):
    """Rows as JSON (``format=json``): column names and Arrow types, then the rows as arrays."""

    columns: list[Column]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    message: str | None = None
    snapshot_id: int | None = None


class QueryRequest(BaseModel):
    """``POST /api/v1/queries``: run a statement asynchronously."""

    model_config = ConfigDict(extra="ignore")

    sql: str
    params: Params = None
    dialect: str | None = None


class QueryAccepted(BaseModel):
    id: str
    status: str


class SnapshotRead(BaseModel):
    table: str
    snapshot_id: int | None
    ref: str | None = None


class QueryStatus(BaseModel):
    """An asynchronous query: queued, running, succeeded, failed (with the error body) or cancelled."""

    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    sql: str
    submitted_at: str | None
    started_at: str | None
    finished_at: str | None
    queued_ms: float
    elapsed_ms: float | None
    row_count: int | None
    bytes: int | None
    columns: list[Column] | None
    snapshots_read: list[SnapshotRead]
    cache: str | None = Field(description="hit, miss or bypass")
    message: str | None
    snapshot_id: int | None = Field(description="The snapshot a write statement committed")
    error: ErrorDetail | None


class QueryList(BaseModel):
    queries: list[QueryStatus]


class ResultsPage(BaseModel):
    """One page of an asynchronous query's rows (JSON); CSV and Arrow carry the paging in headers."""

    id: str
    columns: list[Column]
    rows: list[list[Any]]
    row_count: int
    total_rows: int
    offset: int
    next_page_token: str | None


class PrecacheRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sql: str = Field(description="One query; re-run after each commit to a table it reads")


class PrecacheEntry(BaseModel):
    id: str
    sql: str
    owner: str
    tables: list[str]
    refreshes: int
    last_refreshed_at: str | None
    last_outcome: str | None
    last_error: str | None
    snapshots: list[dict[str, Any]]
    row_count: int | None
    refreshing: bool


class PrecacheList(BaseModel):
    queries: list[PrecacheEntry]


class CacheStats(BaseModel):
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int
    evictions: int


class Catalog(BaseModel):
    name: str
    location: str


class CatalogList(BaseModel):
    catalogs: list[Catalog]


class NamespaceList(BaseModel):
    namespaces: list[str]


class TableList(BaseModel):
    namespace: str
    tables: list[str]


class TableColumn(BaseModel):
    id: int
    name: str
    type: str
    required: bool
    doc: str | None = None


class ColumnList(BaseModel):
    table: str
    columns: list[TableColumn]


class SnapshotInfo(BaseModel):
    snapshot_id: int
    parent_id: int | None
    timestamp_ms: int
    operation: str | None
    summary: dict[str, str]


class SnapshotList(BaseModel):
    table: str
    current_snapshot_id: int | None
    snapshots: list[SnapshotInfo]


class RefInfo(BaseModel):
    type: str
    snapshot_id: int


class RefList(BaseModel):
    table: str
    refs: dict[str, RefInfo]


class TableDescription(BaseModel):
    name: str
    location: str
    format_version: int
    columns: list[TableColumn]
    partitioning: list[dict[str, Any]]
    properties: dict[str, str]
    current_snapshot_id: int | None
    refs: dict[str, RefInfo]
    snapshots: list[SnapshotInfo]
