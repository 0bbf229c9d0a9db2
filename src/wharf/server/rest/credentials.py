"""Credential vending: the storage credentials a client asked for with ``X-Iceberg-Access-Delegation``.

A client that sends ``X-Iceberg-Access-Delegation: vended-credentials`` (PyIceberg does by default,
Spark and Trino when configured, DuckDB's ``ATTACH … TYPE iceberg`` by default) needs no storage
credentials of its own: a ``LoadTableResult`` carries them, both in ``config`` (what every client
reads) and in ``storage-credentials`` (the spec's list, with the location prefix they are good for,
which a client checks first). ``GET …/tables/{table}/credentials`` (``loadCredentials``) answers
the same list again, for a client whose credentials are about to expire.

What is vended is what the lake itself reads and writes with (``Lakehouse.storage_properties()``):
this server mints no down-scoped or short-lived credentials, so only principals allowed to load a
table get them, and a server that should not hand them out is started with
``vend_credentials = false``. A lake on the local file system has nothing to vend: the header is
accepted and the answer has no credentials. The values are secrets: they go into response bodies
only, never into a log line (``wharf.auth.redaction`` redacts them should one try).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from fastapi import Request

from wharf.server.context import RequestContext
from wharf.server.state import server_state
from wharf.storage import (
    DEFAULT_REGION,
    S3_ACCESS_KEY_ID,
    S3_ENDPOINT,
    S3_REGION,
    S3_SECRET_ACCESS_KEY,
    S3_SESSION_TOKEN,
    is_object_store,
)

ACCESS_DELEGATION_HEADER = "X-Iceberg-Access-Delegation"
VENDED = "vended-credentials"
# The property names Iceberg's Java clients (Spark, Trino, Flink) read besides PyIceberg's.
PATH_STYLE = "s3.path-style-access"
CLIENT_REGION = "client.region"


def wants_vended(request: Request) -> bool:
    """Whether the request asks for vended credentials (the header is a comma-separated list)."""
    mechanisms = {m.strip().lower() for m in request.headers.get(ACCESS_DELEGATION_HEADER, "").split(",")}
    return VENDED in mechanisms


def can_vend(request: Request, ctx: RequestContext) -> bool:
    """Whether this server vends credentials at all: turned on, and the warehouse in object storage."""
    if not server_state(request).config.vend_credentials:
        return False
    return is_object_store(str(ctx.lake.catalog.properties.get("warehouse", ""))) and bool(ctx.lake.storage_properties())


def s3_config(ctx: RequestContext) -> dict[str, str]:
    """The lake's S3 settings as a ``LoadTableResult`` config: PyIceberg's names and the Java clients'."""
    found = ctx.lake.storage_properties()
    config = {k: found[k] for k in (S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_SESSION_TOKEN, S3_ENDPOINT) if found.get(k)}
    region = found.get(S3_REGION) or DEFAULT_REGION
    config[S3_REGION] = region
    config[CLIENT_REGION] = region
    if found.get(S3_ENDPOINT):
        # An S3-compatible server (MinIO, Ceph, moto) addresses buckets by path, as Wharf itself does.
        config[PATH_STYLE] = "true"
    return config


def storage_credentials(ctx: RequestContext, location: str) -> list[dict[str, Any]]:
    """The spec's ``storage-credentials``: one S3 credential, good for everything under ``location``."""
    config = s3_config(ctx)
    if not config.get(S3_ACCESS_KEY_ID):
        return []  # the lake relies on an ambient credential chain: nothing the client could be given
    scheme = urlparse(location).scheme or "s3"
    return [{"prefix": f"{scheme}://{location.split('://', 1)[-1].rstrip('/')}/", "config": config}]


def vended(
    request: Request, ctx: RequestContext, location: str | Callable[[], str]
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """``(config, storage-credentials)`` for a table at ``location``: empty unless asked for and possible.

    ``location`` may be a function, called only when credentials are vended (loadTable otherwise
    never parses the metadata it answers).
    """
    if not wants_vended(request) or not can_vend(request, ctx):
        return {}, []
    location = location() if callable(location) else location
    if not is_object_store(location):
        return {}, []
    return s3_config(ctx), storage_credentials(ctx, location)
