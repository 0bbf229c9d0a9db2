"""``create_app``: the FastAPI application ``wharf serve`` runs — health, the Iceberg REST catalog, errors.

The REST catalog is served at the root, as Iceberg's reference REST fixture serves it: a client
configured with ``uri=http://host:8181`` works, with or without the warehouse prefix that
``GET /v1/config`` announces (``/v1/<warehouse>/namespaces`` and ``/v1/namespaces`` are the same).
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from wharf.errors import InvalidArgument
from wharf.governance.enforce import rest_authorizer
from wharf.governance.store import store_for
from wharf.server.api import access_routes, query_routes, sql_routes
from wharf.server.api.jobs import QueryManager
from wharf.server.api.precache import Precache
from wharf.server.api.result_cache import ResultCache
from wharf.server.audit import REASON_KEY, AuditRequests
from wharf.server.config import ServerConfig
from wharf.server.context import Authenticator, OwnerOnly
from wharf.server.middleware import BodyLimit, BodyTooLarge, InFlight, RequestLog
from wharf.server.rest import config_routes, namespaces, tables, views
from wharf.server.rest.common import error_kind
from wharf.server.rest.errors import EXPECTED_ERRORS, classify, error_body
from wharf.server.rest.idempotency import IdempotencyStore
from wharf.server.state import ServerState, address_limiter, server_state

log = logging.getLogger("wharf.server")
# Prefixes of a route that a warehouse name must not shadow.
_RESERVED = {"config", "oauth", "namespaces", "tables", "views", "transactions"}


class WarehousePrefix:
    """``/v1/<warehouse>/…`` → ``/v1/…``: one set of routes serves both forms."""

    def __init__(self, app: ASGIApp, warehouse: str) -> None:
        self.app = app
        self.prefix = f"/v1/{warehouse}/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            path = "/v1/" + scope["path"][len(self.prefix) :]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


def load_authenticator(config: ServerConfig, lake: Any) -> Authenticator:
    """The authenticator the configuration asks for: owner-only, ``module:callable``, or wharf.auth's bearer tokens."""
    if config.no_auth:
        return OwnerOnly(lake.owner)
    if not config.authenticator:
        from wharf.server.authentication import BearerAuthenticator  # wharf.auth: users, tokens, service principals

        return BearerAuthenticator(lake, oidc=config.oidc())
    if config.oidc_issuer:  # a custom authenticator would silently ignore the identity provider
        raise InvalidArgument(
            f"oidc_issuer applies to Wharf's own authenticator, not to authenticator {config.authenticator!r}",
            hint="remove one of the two settings (or have your factory build wharf.server.authentication.BearerAuthenticator)",
        )
    module_name, _, attribute = config.authenticator.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidArgument(
            f"authenticator {config.authenticator!r} cannot be loaded: {exc}", hint="give it as 'package.module:callable'"
        ) from exc
    authenticator = factory(lake)
    if not isinstance(authenticator, Authenticator):
        raise InvalidArgument(f"authenticator {config.authenticator!r} returned {authenticator!r}, which has no authenticate()")
    return authenticator


def _error_response(status: int, kind: str, message: str) -> Response:
    return Response(json.dumps(error_body(status, kind, message)), status_code=status, media_type="application/json")


def create_app(config: ServerConfig, *, lake: Any = None, authenticator: Authenticator | None = None) -> FastAPI:
    """The server application for ``config``. ``lake`` (a ``Lakehouse``) is opened from ``config.lake``
    at startup unless given; ``authenticator`` overrides the configured one."""
    if config.warehouse in _RESERVED:
        raise InvalidArgument(f"warehouse name {config.warehouse!r} is reserved by a route", hint="choose another name")

    in_flight = InFlight()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import wharf

        opened = lake if lake is not None else wharf.connect(config.lake, metadata_url=config.metadata_url)
        try:
            state = ServerState(
                config=config,
                lake=opened,
                authenticator=authenticator if authenticator is not None else load_authenticator(config, opened),
                idempotency=IdempotencyStore(opened.catalog.engine, config.idempotency_seconds()),
                token_limit=address_limiter(config.token_rate_per_minute),
                in_flight=in_flight,
            )
            # Governance decides every REST operation (ctx.authorize): it fails closed for a governed principal.
            state.authorizers.append(rest_authorizer(store_for(opened.catalog, opened.owner)))
            state.result_cache = ResultCache(config.result_cache_max_bytes)
            state.queries = QueryManager(config, state.result_cache)
            state.precache = Precache(opened, state.result_cache)
            for statement in config.precache:  # the configuration's pre-cached queries run as the lake owner
                state.precache.register(opened.principal, statement)
            app.state.wharf = state
            if config.no_auth:
                log.warning(
                    "authentication is OFF (--no-auth): every request acts as the lake owner %r; serving loopback only",
                    opened.owner,
                )
            state.ready = True
            log.info("serving lake %s as warehouse %r", opened.path, config.warehouse)
            yield
            # Shutdown: uvicorn has stopped accepting and waited for in-flight requests (commits).
            state.ready = False
            state.precache.shutdown()
            state.queries.shutdown()
        finally:
            if lake is None:
                opened.close()

    app = FastAPI(
        title="Wharf",
        summary="The Iceberg REST catalog and the HTTP API (SQL, asynchronous queries, result cache) of a Wharf lake",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        """Liveness: the process answers."""
        return Response('{"status":"ok"}', media_type="application/json")

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> Response:
        """Readiness: the lake is open and its metadata database answers."""
        state = getattr(request.app.state, "wharf", None)
        if state is None or not state.ready:
            return _error_response(503, "ServiceUnavailableException", "The server is starting or stopping")
        try:
            state.lake.catalog.namespace_exists("default")
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("readiness check failed: %s", type(exc).__name__)
            return _error_response(503, "ServiceUnavailableException", "The lake's metadata database does not answer")
        return Response(json.dumps({"status": "ready", "in_flight": state.in_flight.count}), media_type="application/json")

    for router in (config_routes.router, namespaces.router, tables.router, views.router, sql_routes.router, query_routes.router):
        app.include_router(router)
    app.include_router(access_routes.router)

    async def on_error(request: Request, exc: Exception) -> Response:
        status, kind, message = classify(exc, **error_kind(request))
        setattr(request.state, REASON_KEY, f"{kind}: {message}")  # why, for the audit record (wharf.server.audit)
        return _error_response(status, kind, message)

    # Expected errors are answered by the exception middleware; only a handler for bare
    # ``Exception`` (an unexpected one: a bug) makes Starlette log a traceback as well.
    for expected in EXPECTED_ERRORS:
        app.add_exception_handler(expected, on_error)
    app.add_exception_handler(Exception, on_error)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in list(exc.errors())[:5])
        setattr(request.state, REASON_KEY, f"BadRequestException: Malformed request: {problems}")
        return _error_response(400, "BadRequestException", f"Malformed request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        setattr(request.state, REASON_KEY, f"HTTP {exc.status_code}: {exc.detail}")
        if isinstance(exc.__cause__, BodyTooLarge):  # a streamed body FastAPI was parsing outgrew the limit
            limit = config.max_body_bytes
            return _error_response(413, "RequestTooLargeException", f"The request body is larger than the limit of {limit} bytes")
        if exc.status_code == 404:
            state = getattr(request.app.state, "wharf", None)
            warehouse = state.config.warehouse if state is not None else config.warehouse
            message = f"No route {request.method} {request.url.path} (this server's warehouse prefix is {warehouse!r})"
            return _error_response(404, "NotFoundException", message)
        if exc.status_code == 405:
            return _error_response(405, "MethodNotAllowedException", f"{request.method} is not allowed on {request.url.path}")
        return _error_response(exc.status_code, "RESTException", str(exc.detail))

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(WarehousePrefix, warehouse=config.warehouse)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    app.add_middleware(AuditRequests)  # inside RequestLog: the request has its id
    app.add_middleware(RequestLog, in_flight=in_flight)
    return app


def app_from_environment() -> FastAPI:
    """The application a ``wharf serve --workers N`` worker process runs (configuration from its parent)."""
    import os

    from wharf.server.config import WORKER_CONFIG_ENV
    from wharf.server.logs import configure_logging
    from wharf.server.run import tune_interpreter

    config = ServerConfig.from_json(os.environ[WORKER_CONFIG_ENV])
    configure_logging(config.log_level)
    tune_interpreter()
    return create_app(config)


__all__ = ["app_from_environment", "create_app", "server_state"]
