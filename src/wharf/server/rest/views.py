"""Views: list (paged), create, load, exists, replace (a new version and/or properties), drop, rename.

They are Wharf's catalog views (``wharf.catalog.views``): the same objects ``CREATE VIEW`` makes,
with the same gates and events, so a view created over REST is queryable from Wharf SQL and the
reverse.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from pyiceberg.exceptions import CommitFailedException, NoSuchViewError
from pyiceberg.schema import Schema
from pyiceberg.view.metadata import ViewVersion

from wharf.catalog import LakeCatalog
from wharf.server.context import RequestContext
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
from wharf.server.rest.errors import bad_request
from wharf.server.rest.namespaces import require_namespace
from wharf.server.rest.tables import read_metadata
from wharf.server.state import request_context

router = APIRouter()
Ctx = Annotated[RequestContext, Depends(request_context)]


def _view_location(catalog: LakeCatalog, identifier: tuple[str, ...]) -> str:
    location = catalog.view_metadata_location(catalog.canonical(identifier))
    if location is None:
        raise NoSuchViewError(f"View does not exist: {label(identifier)}")
    return location


def _loaded(catalog: LakeCatalog, identifier: tuple[str, ...]) -> Response:
    location = _view_location(catalog, identifier)
    raw = read_metadata(catalog, location)
    return raw_json_response(b'{"metadata-location":%s,"metadata":%s,"config":{}}' % (json.dumps(location).encode(), raw))


def _parse(model: Any, raw: Any, what: str) -> Any:
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise bad_request(f"The {what} is malformed: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from exc


@router.get("/v1/namespaces/{namespace}/views")
def list_views(
    request: Request,
    ctx: Ctx,
    namespace: str,
    page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    page_size: Annotated[int | None, Query(alias="pageSize")] = None,
) -> Response:
    ns = require_namespace(ctx, namespace_of(namespace))
    ctx.authorize("listViews", label(ns))
    names = [ident[-1] for ident in ctx.lake.catalog.list_views(ns)]
    items, token = page(request, names, lambda n: n, page_token, page_size)
    return json_response({"identifiers": [{"namespace": list(ns), "name": n} for n in items], "next-page-token": token})


@router.post("/v1/namespaces/{namespace}/views")
def create_view(request: Request, ctx: Ctx, namespace: str, body: Annotated[Any, Body()]) -> Response:
    body = body_object(body, "createView")
    for key in ("name", "schema", "view-version"):
        if key not in body:
            raise bad_request(f'createView needs "{key}"')
    ns = require_namespace(ctx, namespace_of(namespace))
    identifier = table_identifier("\x1f".join(ns), str(body["name"]), "view")
    schema = _parse(Schema, body["schema"], "view schema")
    version = _parse(ViewVersion, body["view-version"], "view version")
    properties = body.get("properties") or {}
    ctx.authorize("createView", label(identifier))
    catalog = ctx.lake.catalog

    def run() -> Response:
        with statement(ctx, "createView", label(identifier)):
            catalog.create_view(identifier, schema, version, body.get("location") or None, properties)
        return _loaded(catalog, identifier)

    return idempotent(request, ctx, run)


@router.get("/v1/namespaces/{namespace}/views/{view}")
def load_view(ctx: Ctx, namespace: str, view: str) -> Response:
    identifier = table_identifier(namespace, view, "view")
    ctx.authorize("loadView", label(identifier))
    return _loaded(ctx.lake.catalog, identifier)


@router.head("/v1/namespaces/{namespace}/views/{view}")
def view_exists(ctx: Ctx, namespace: str, view: str) -> Response:
    identifier = table_identifier(namespace, view, "view")
    ctx.authorize("viewExists", label(identifier))
    return no_content() if ctx.lake.catalog.view_exists(identifier) else Response(status_code=404)


@router.post("/v1/namespaces/{namespace}/views/{view}")
def replace_view(request: Request, ctx: Ctx, namespace: str, view: str, body: Annotated[Any, Body()]) -> Response:
    """A ``CommitViewRequest``: a new version (add-schema + add-view-version + set-current-view-version),
    a return to an earlier version, and/or property changes."""
    body = body_object(body, "replaceView")
    identifier = table_identifier(namespace, view, "view")
    ctx.authorize("replaceView", label(identifier))
    catalog = ctx.lake.catalog
    updates = body.get("updates")
    if not isinstance(updates, list):
        raise bad_request('replaceView needs "updates": a list')

    def run() -> Response:
        current = catalog.load_view(identifier).metadata
        for requirement in body.get("requirements") or []:
            if not isinstance(requirement, dict) or requirement.get("type") != "assert-view-uuid":
                raise bad_request(f"Unknown view requirement {requirement!r}")
            if requirement.get("uuid") != current.view_uuid:
                raise CommitFailedException(f"Requirement failed: view {label(identifier)} has another UUID")
        schema: Schema | None = None
        version: ViewVersion | None = None
        set_properties: dict[str, str] = {}
        removals: set[str] = set()
        for i, update in enumerate(updates):
            action = update.get("action") if isinstance(update, dict) else None
            if action == "add-schema":
                schema = _parse(Schema, update.get("schema"), f"updates[{i}] schema")
            elif action == "add-view-version":
                version = _parse(ViewVersion, update.get("view-version"), f"updates[{i}] view version")
            elif action == "set-current-view-version":
                wanted = update.get("view-version-id")
                if wanted != -1 and (version is None or wanted != version.version_id):
                    earlier = next((v for v in current.versions if v.version_id == wanted), None)
                    if earlier is None:
                        raise bad_request(f"updates[{i}]: view {label(identifier)} has no version {wanted}")
                    version = earlier  # back to an earlier version: it becomes the newest again
                    schema = next(s for s in current.schemas if s.schema_id == earlier.schema_id)
            elif action == "set-properties":
                set_properties |= dict(update.get("updates") or {})
            elif action == "remove-properties":
                removals |= set(update.get("removals") or [])
            elif action == "assign-uuid" and update.get("uuid") == current.view_uuid:
                pass
            elif action == "upgrade-format-version" and update.get("format-version") == current.format_version:
                pass
            elif action == "set-location" and update.get("location") == current.location:
                pass
            elif action in ("assign-uuid", "upgrade-format-version", "set-location"):
                raise bad_request(f"updates[{i}]: {action} cannot change an existing view's value")
            else:
                raise bad_request(f"updates[{i}]: unknown view update action {action!r}")
        if version is not None and schema is None:
            current_version = next(v for v in current.versions if v.version_id == current.current_version_id)
            schema = next(s for s in current.schemas if s.schema_id == current_version.schema_id)
        with statement(ctx, "replaceView", label(identifier)):
            if version is not None:
                catalog.replace_view(identifier, schema, version, set_properties)
            elif set_properties or removals:
                catalog.set_view_properties(identifier, removals, set_properties)
            if version is not None and removals:
                catalog.set_view_properties(identifier, removals, {})
        return _loaded(catalog, identifier)

    return idempotent(request, ctx, run)


@router.delete("/v1/namespaces/{namespace}/views/{view}")
def drop_view(request: Request, ctx: Ctx, namespace: str, view: str) -> Response:
    identifier = table_identifier(namespace, view, "view")
    ctx.authorize("dropView", label(identifier))

    def run() -> Response:
        _view_location(ctx.lake.catalog, identifier)
        with statement(ctx, "dropView", label(identifier)):
            ctx.lake.catalog.drop_view(identifier)
        return no_content()

    return idempotent(request, ctx, run)


@router.post("/v1/views/rename")
def rename_view(request: Request, ctx: Ctx, body: Annotated[Any, Body()]) -> Response:
    body = body_object(body, "renameView")
    source = identifier_from_body(body.get("source"), "view")
    destination = identifier_from_body(body.get("destination"), "view")
    ctx.authorize("renameView", label(source))

    def run() -> Response:
        _view_location(ctx.lake.catalog, source)
        with statement(ctx, "renameView", f"{label(source)} TO {label(destination)}"):
            ctx.lake.catalog.rename_view(source, destination)
        return no_content()

    return idempotent(request, ctx, run)
