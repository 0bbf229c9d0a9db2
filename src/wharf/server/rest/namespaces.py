"""Namespaces: list (paged, nested), create, load, exists, drop, update properties."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from pyiceberg.exceptions import NamespaceNotEmptyError, NoSuchNamespaceError

from wharf.server.context import RequestContext
from wharf.server.rest.common import (
    body_object,
    check_namespace,
    idempotent,
    json_response,
    label,
    namespace_of,
    no_content,
    page,
    statement,
)
from wharf.server.rest.errors import RestError, bad_request
from wharf.server.state import request_context

router = APIRouter()
Ctx = Annotated[RequestContext, Depends(request_context)]


def require_namespace(ctx: RequestContext, namespace: tuple[str, ...]) -> tuple[str, ...]:
    """The namespace as the catalog spells it; 404 NoSuchNamespaceException if it does not exist."""
    catalog = ctx.lake.catalog
    if not catalog.namespace_exists(namespace):
        raise NoSuchNamespaceError(f"Namespace does not exist: {label(namespace)}")
    return catalog.canonical_namespace(namespace)


@router.get("/v1/namespaces")
def list_namespaces(
    request: Request,
    ctx: Ctx,
    parent: str | None = None,
    page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    page_size: Annotated[int | None, Query(alias="pageSize")] = None,
) -> Response:
    ctx.authorize("listNamespaces", parent or "*")
    catalog = ctx.lake.catalog
    under = require_namespace(ctx, namespace_of(parent)) if parent else ()
    # The SQL catalog answers with every namespace below `under` (any depth): keep direct children.
    children = {
        ns[: len(under) + 1] for ns in catalog.list_namespaces(under) if len(ns) > len(under) and ns[: len(under)] == under
    }
    items, token = page(request, list(children), lambda ns: "\x1f".join(ns), page_token, page_size)
    return json_response({"namespaces": [list(ns) for ns in items], "next-page-token": token})


@router.post("/v1/namespaces")
def create_namespace(request: Request, ctx: Ctx, body: Annotated[Any, Body()]) -> Response:
    body = body_object(body, "createNamespace")
    if not isinstance(body.get("namespace"), list):
        raise bad_request('createNamespace needs "namespace": a list of strings')
    namespace = check_namespace(body["namespace"])
    properties = body.get("properties") or {}
    if not isinstance(properties, dict) or not all(isinstance(v, str) for v in properties.values()):
        raise bad_request("Namespace properties must be an object of strings")
    ctx.authorize("createNamespace", label(namespace))

    def run() -> Response:
        with statement(ctx, "createNamespace", label(namespace)):
            ctx.lake.catalog.create_namespace(namespace, properties)
        stored = ctx.lake.catalog.load_namespace_properties(namespace)
        return json_response({"namespace": list(namespace), "properties": dict(stored)})

    return idempotent(request, ctx, run)


@router.get("/v1/namespaces/{namespace}")
def load_namespace(ctx: Ctx, namespace: str) -> Response:
    ns = require_namespace(ctx, namespace_of(namespace))
    ctx.authorize("loadNamespaceMetadata", label(ns))
    properties = ctx.lake.catalog.load_namespace_properties(ns)
    return json_response({"namespace": list(ns), "properties": dict(properties)})


@router.head("/v1/namespaces/{namespace}")
def namespace_exists(ctx: Ctx, namespace: str) -> Response:
    ns = namespace_of(namespace)
    ctx.authorize("namespaceExists", label(ns))
    return no_content() if ctx.lake.catalog.namespace_exists(ns) else Response(status_code=404)


@router.delete("/v1/namespaces/{namespace}")
def drop_namespace(request: Request, ctx: Ctx, namespace: str) -> Response:
    ns = require_namespace(ctx, namespace_of(namespace))
    ctx.authorize("dropNamespace", label(ns))
    catalog = ctx.lake.catalog

    def run() -> Response:
        # The SQL catalog only checks for tables; views and nested namespaces keep a namespace too.
        if catalog.list_views(ns) or any(len(n) > len(ns) and n[: len(ns)] == ns for n in catalog.list_namespaces(ns)):
            raise NamespaceNotEmptyError(f"Namespace {label(ns)} is not empty: it holds views or namespaces")
        with statement(ctx, "dropNamespace", label(ns)):
            catalog.drop_namespace(ns)
        return no_content()

    return idempotent(request, ctx, run)


@router.post("/v1/namespaces/{namespace}/properties")
def update_properties(request: Request, ctx: Ctx, namespace: str, body: Annotated[Any, Body()]) -> Response:
    body = body_object(body, "updateProperties")
    ns = require_namespace(ctx, namespace_of(namespace))
    removals = body.get("removals") or []
    updates = body.get("updates") or {}
    if not isinstance(removals, list) or not all(isinstance(r, str) for r in removals):
        raise bad_request("removals must be a list of property names")
    if not isinstance(updates, dict) or not all(isinstance(v, str) for v in updates.values()):
        raise bad_request("updates must be an object of strings")
    both = sorted(set(removals) & set(updates))
    if both:
        raise RestError(422, "UnprocessableEntityException", f"Properties both set and removed: {', '.join(both)}")
    ctx.authorize("updateProperties", label(ns))

    def run() -> Response:
        with statement(ctx, "updateProperties", label(ns)):
            summary = ctx.lake.catalog.update_namespace_properties(ns, set(removals), updates)
        return json_response({"updated": summary.updated, "removed": summary.removed, "missing": summary.missing or None})

    return idempotent(request, ctx, run)
