"""Tables: list (paged), create (and stage-create), load, exists, commit, drop (and purge), rename,
register, metrics.

``loadTable`` answers with the table's ``metadata.json`` as stored (no parse and re-serialise),
spliced into the response; ``snapshots=refs`` keeps only the snapshots a branch or tag points at.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

import pydantic
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder

from wharf import pyiceberg_compat as compat
from wharf.catalog import LakeCatalog
from wharf.server.context import RequestContext
from wharf.server.rest.commits import commit_one, commit_transaction, parse_commit
from wharf.server.rest.common import (
    body_object,
    idempotent,
    identifier_from_body,
    json_response,
    label,
    namespace_of,
    no_content,
    page,
    raw_json_response,
    statement,
    table_identifier,
)
from wharf.server.rest.credentials import can_vend, storage_credentials, vended, wants_vended
from wharf.server.rest.errors import bad_request
from wharf.server.rest.namespaces import require_namespace
from wharf.server.state import request_context
from wharf.storage import is_object_store

router = APIRouter()
Ctx = Annotated[RequestContext, Depends(request_context)]
log = logging.getLogger("wharf.server.metrics")


def read_metadata(catalog: LakeCatalog, location: str) -> bytes:
    """The bytes of a table's metadata file (gunzipped if the table writes compressed metadata)."""
    io = compat.catalog_file_io(catalog, location)
    with io.new_input(location).open() as f:
        raw = f.read()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def only_ref_snapshots(raw: bytes) -> bytes:
    """The metadata with only the snapshots some branch or tag points at (``snapshots=refs``)."""
    metadata = json.loads(raw)
    referenced = {ref["snapshot-id"] for ref in (metadata.get("refs") or {}).values()}
    if metadata.get("current-snapshot-id") not in (None, -1):
        referenced.add(metadata["current-snapshot-id"])
    metadata["snapshots"] = [s for s in metadata.get("snapshots") or [] if s["snapshot-id"] in referenced]
    return json.dumps(metadata, separators=(",", ":")).encode()


def prepare_local_location(location: str) -> None:
    """Create a staged table's directories when the warehouse is on the local file system.

    A client writes the data and manifests of a staged table (DuckDB's ``CREATE TABLE … AS``)
    before the table exists; on object storage any key can be written, but a local file write
    needs its directory, which nobody has made yet.
    """
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        root = Path(unquote(parsed.path) if parsed.scheme == "file" else location)
        for sub in ("data", "metadata"):
            (root / sub).mkdir(parents=True, exist_ok=True)


def load_result(
    location: str | None,
    metadata: bytes | str,
    config: dict[str, str] | None = None,
    credentials: list[dict[str, Any]] | None = None,
) -> bytes:
    """A ``LoadTableResult`` body around metadata JSON that is already serialised.

    ``config`` and ``credentials`` are what is vended to the client (``credentials.vended``).
    """
    body = metadata.encode() if isinstance(metadata, str) else metadata
    extra = b',"storage-credentials":%s' % json.dumps(credentials).encode() if credentials else b""
    return b'{"metadata-location":%s,"metadata":%s,"config":%s%s}' % (
        json.dumps(location).encode(),
        body,
        json.dumps(config or {}).encode(),
        extra,
    )


def table_location(raw: bytes | str) -> str:
    """The ``location`` of a table's metadata JSON."""
    return str(json.loads(raw)["location"])


def with_vended(request: Request, ctx: RequestContext, response: Response) -> Response:
    """A successful ``LoadTableResult`` of a mutation, with the vended credentials added if asked for.

    Added after ``idempotent`` has stored the response for replay: credentials are never stored
    in the metadata database, and a replay gets them fresh like the first answer.
    """
    if response.status_code != 200 or not wants_vended(request) or not can_vend(request, ctx):
        return response
    body = json.loads(bytes(response.body))
    config, credentials = vended(request, ctx, body["metadata"]["location"])
    body["config"] = {**(body.get("config") or {}), **config}
    if credentials:
        body["storage-credentials"] = credentials
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    return json_response(body, response.status_code, headers)


@router.get("/v1/namespaces/{namespace}/tables")
def list_tables(
    request: Request,
    ctx: Ctx,
    namespace: str,
    page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    page_size: Annotated[int | None, Query(alias="pageSize")] = None,
) -> Response:
    ns = require_namespace(ctx, namespace_of(namespace))
    ctx.authorize("listTables", label(ns))
    names = [ident[-1] for ident in ctx.lake.catalog.list_tables(ns)]
    items, token = page(request, names, lambda n: n, page_token, page_size)
    return json_response({"identifiers": [{"namespace": list(ns), "name": n} for n in items], "next-page-token": token})


def _schema_parts(body: dict[str, Any]) -> tuple[Schema, PartitionSpec, SortOrder]:
    try:
        schema = Schema.model_validate(body["schema"])
        spec = UNPARTITIONED_PARTITION_SPEC
        if body.get("partition-spec"):
            raw = dict(body["partition-spec"])
            # The spec lets a create request leave partition field ids out: number them as Iceberg does.
            raw["fields"] = [{"field-id": 1000 + i, **f} for i, f in enumerate(raw.get("fields") or [])]
            raw.setdefault("spec-id", 0)
            spec = PartitionSpec.model_validate(raw)
        order = SortOrder.model_validate(body["write-order"]) if body.get("write-order") else UNSORTED_SORT_ORDER
    except pydantic.ValidationError as exc:
        raise bad_request(f"The table definition is malformed: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from exc
    return schema, spec, order


@router.post("/v1/namespaces/{namespace}/tables")
def create_table(request: Request, ctx: Ctx, namespace: str, body: Annotated[Any, Body()]) -> Response:
    body = body_object(body, "createTable")
    if not isinstance(body.get("name"), str) or "schema" not in body:
        raise bad_request('createTable needs "name" and "schema"')
    ns = require_namespace(ctx, namespace_of(namespace))
    identifier = table_identifier("\x1f".join(ns), body["name"])
    if len(ns) > 1:
        raise bad_request(
            f"Cannot create {label(identifier)}: Wharf keeps tables in single-level namespaces",
            hint="nested namespaces may hold views and other namespaces; create the table in a top-level namespace",
        )
    properties = body.get("properties") or {}
    if not isinstance(properties, dict) or not all(isinstance(v, str) for v in properties.values()):
        raise bad_request("Table properties must be an object of strings")
    location = body.get("location") or None
    schema, spec, order = _schema_parts(body)
    ctx.authorize("createTable", label(identifier))
    catalog = ctx.lake.catalog

    if body.get("stage-create"):
        # Nothing is written: the client commits the creation later with assert-create.
        with statement(ctx, "stageCreateTable", label(identifier)):
            if catalog.metadata_location(identifier) is not None:
                raise TableAlreadyExistsError(f"Table already exists: {label(identifier)}")
            txn = catalog.create_table_transaction(identifier, schema, location, spec, order, properties)
            metadata = txn.table_metadata
        prepare_local_location(metadata.location)
        return raw_json_response(load_result(None, metadata.model_dump_json(), *vended(request, ctx, metadata.location)))

    def run() -> Response:
        with statement(ctx, "createTable", label(identifier)):
            table = catalog.create_table(identifier, schema, location, spec, order, properties)
        return raw_json_response(load_result(table.metadata_location, table.metadata.model_dump_json()))

    return with_vended(request, ctx, idempotent(request, ctx, run))


@router.get("/v1/namespaces/{namespace}/tables/{table}")
def load_table(
    request: Request, ctx: Ctx, namespace: str, table: str, snapshots: Annotated[str | None, Query()] = None
) -> Response:
    identifier = table_identifier(namespace, table)
    ctx.authorize("loadTable", label(identifier))
    if snapshots not in (None, "all", "refs"):
        raise bad_request(f"snapshots={snapshots!r}: use all or refs")
    catalog = ctx.lake.catalog
    location = catalog.metadata_location(identifier)
    if location is None:
        raise NoSuchTableError(f"Table does not exist: {label(identifier)}")
    # The answer differs with and without vended credentials: so does its tag.
    delegation = "vended" if wants_vended(request) else ""
    etag = '"' + hashlib.sha256(f"{location}\x00{snapshots or 'all'}\x00{delegation}".encode()).hexdigest()[:40] + '"'
    headers = {"ETag": etag, "Vary": "X-Iceberg-Access-Delegation"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    raw = read_metadata(catalog, location)
    if snapshots == "refs":
        raw = only_ref_snapshots(raw)
    return raw_json_response(load_result(location, raw, *vended(request, ctx, lambda: table_location(raw))), headers=headers)


@router.get("/v1/namespaces/{namespace}/tables/{table}/credentials")
def load_credentials(request: Request, ctx: Ctx, namespace: str, table: str) -> Response:
    """``loadCredentials``: the table's vended storage credentials again (for a client whose ones expire).

    Asked for explicitly, so the access-delegation header is not needed; an empty list when the
    warehouse is local or vending is turned off.
    """
    identifier = table_identifier(namespace, table)
    ctx.authorize("loadTable", label(identifier))
    catalog = ctx.lake.catalog
    location = catalog.metadata_location(identifier)
    if location is None:
        raise NoSuchTableError(f"Table does not exist: {label(identifier)}")
    credentials: list[dict[str, Any]] = []
    if can_vend(request, ctx):
        where = table_location(read_metadata(catalog, location))
        credentials = storage_credentials(ctx, where) if is_object_store(where) else []
    return json_response({"storage-credentials": credentials})


@router.head("/v1/namespaces/{namespace}/tables/{table}")
def table_exists(ctx: Ctx, namespace: str, table: str) -> Response:
    identifier = table_identifier(namespace, table)
    ctx.authorize("tableExists", label(identifier))
    return no_content() if ctx.lake.catalog.metadata_location(identifier) is not None else Response(status_code=404)


@router.post("/v1/namespaces/{namespace}/tables/{table}")
def update_table(request: Request, ctx: Ctx, namespace: str, table: str, body: Annotated[Any, Body()]) -> Response:
    identifier = ctx.lake.catalog.canonical(table_identifier(namespace, table))
    requirements, updates = parse_commit(body)
    if isinstance(body, dict) and body.get("identifier") is not None:
        if ctx.lake.catalog.canonical(identifier_from_body(body["identifier"])) != identifier:
            raise bad_request("The body's identifier names another table than the path")
    ctx.authorize("updateTable", label(identifier))

    def run() -> Response:
        response = commit_one(ctx, identifier, requirements, updates)
        return raw_json_response(
            b'{"metadata-location":%s,"metadata":%s}'
            % (json.dumps(response.metadata_location).encode(), response.metadata.model_dump_json().encode())
        )

    return idempotent(request, ctx, run)


@router.delete("/v1/namespaces/{namespace}/tables/{table}")
def drop_table(
    request: Request,
    ctx: Ctx,
    namespace: str,
    table: str,
    purge: Annotated[bool, Query(alias="purgeRequested")] = False,
) -> Response:
    identifier = table_identifier(namespace, table)
    ctx.authorize("dropTable", label(identifier))
    catalog = ctx.lake.catalog

    def run() -> Response:
        with statement(ctx, "dropTable", label(identifier) + (" PURGE" if purge else "")):
            if purge:
                catalog.purge_table(identifier)  # what DROP TABLE … PURGE runs
            else:
                catalog.drop_table(identifier)
        return no_content()

    return idempotent(request, ctx, run)


@router.post("/v1/tables/rename")
def rename_table(request: Request, ctx: Ctx, body: Annotated[Any, Body()]) -> Response:
    body = body_object(body, "renameTable")
    source = identifier_from_body(body.get("source"))
    destination = identifier_from_body(body.get("destination"))
    if len(destination) > 2:
        raise bad_request("Wharf keeps tables in single-level namespaces")
    ctx.authorize("renameTable", label(source))
    ctx.authorize("createTable", label(destination))

    def run() -> Response:
        with statement(ctx, "renameTable", f"{label(source)} TO {label(destination)}"):
            ctx.lake.catalog.rename_table(source, destination)
        return no_content()

    return idempotent(request, ctx, run)


@router.post("/v1/namespaces/{namespace}/register")
def register_table(request: Request, ctx: Ctx, namespace: str, body: Annotated[Any, Body()]) -> Response:
    body = body_object(body, "registerTable")
    if not isinstance(body.get("name"), str) or not isinstance(body.get("metadata-location"), str):
        raise bad_request('registerTable needs "name" and "metadata-location"')
    ns = require_namespace(ctx, namespace_of(namespace))
    identifier = table_identifier("\x1f".join(ns), body["name"])
    ctx.authorize("registerTable", label(identifier))
    overwrite = bool(body.get("overwrite", False))
    catalog = ctx.lake.catalog

    def run() -> Response:
        with statement(ctx, "registerTable", label(identifier)):
            if catalog.locations is not None:
                catalog.locations.check(body["metadata-location"], "Metadata file")
            if not compat.catalog_file_io(catalog, body["metadata-location"]).new_input(body["metadata-location"]).exists():
                raise bad_request(f"No metadata file at {body['metadata-location']}")
            table = catalog.register_table(identifier, body["metadata-location"], overwrite)
        return raw_json_response(load_result(table.metadata_location, read_metadata(catalog, table.metadata_location)))

    return with_vended(request, ctx, idempotent(request, ctx, run))


@router.post("/v1/namespaces/{namespace}/tables/{table}/metrics")
def report_metrics(ctx: Ctx, namespace: str, table: str, body: Annotated[Any, Body()]) -> Response:
    """Scan and commit reports: checked, then logged as one structured line each."""
    identifier = table_identifier(namespace, table)
    body = body_object(body, "reportMetrics")
    if body.get("report-type") not in ("scan-report", "commit-report"):
        raise bad_request("report-type must be scan-report or commit-report")
    if ctx.lake.catalog.metadata_location(identifier) is None:
        raise NoSuchTableError(f"Table does not exist: {label(identifier)}")
    metrics = body.get("metrics") if isinstance(body.get("metrics"), dict) else {}
    log.info(
        "%s for %s",
        body["report-type"],
        label(identifier),
        extra={
            "table": label(identifier),
            "report_type": body["report-type"],
            "snapshot_id": body.get("snapshot-id"),
            "operation": body.get("operation"),
            "principal": ctx.principal.name,
            "metrics": json.dumps({k: v.get("value") if isinstance(v, dict) else v for k, v in metrics.items()})[:2000],
        },
    )
    return no_content()


@router.post("/v1/transactions/commit")
def transactions_commit(request: Request, ctx: Ctx, body: Annotated[Any, Body()]) -> Response:
    return idempotent(request, ctx, lambda: (commit_transaction(ctx, body), no_content())[1])
