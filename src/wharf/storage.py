"""Where a lake's files live: the local file system or S3-compatible object storage.

A lake's warehouse is a directory (``/data/lake/warehouse``) or a bucket prefix
(``s3://bucket/prefix``). Files are written through PyIceberg's FileIO (pyarrow's file systems)
and by DuckDB's ``COPY`` (the httpfs extension, loaded from its pip package, for ``s3://``);
DuckDB reads them through the same extension. Both are configured from one set of settings:

- ``storage_properties()``: the S3 settings as PyIceberg names them (``s3.endpoint``,
  ``s3.access-key-id``, ``s3.secret-access-key``, ``s3.session-token``, ``s3.region``), read from the
  standard AWS environment variables and overridden by explicit configuration. This is also what a
  catalog server vends to its clients (``Lakehouse.storage_properties()``).
- ``duckdb_secret_sql()``: the DuckDB ``CREATE SECRET`` built from the same settings.

The file operations Wharf's own write and maintenance paths need (size, remove, list a tree) take
a FileIO and a URI and work for both kinds of location.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

S3_SCHEMES = ("s3", "s3a", "s3n")
DEFAULT_REGION = "us-east-1"

# PyIceberg's property names (pyiceberg.io), with the environment variables they default to.
S3_ENDPOINT = "s3.endpoint"
S3_ACCESS_KEY_ID = "s3.access-key-id"
S3_SECRET_ACCESS_KEY = "s3.secret-access-key"
S3_SESSION_TOKEN = "s3.session-token"
S3_REGION = "s3.region"
_FROM_ENV: dict[str, tuple[str, ...]] = {
    S3_ENDPOINT: ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    S3_ACCESS_KEY_ID: ("AWS_ACCESS_KEY_ID",),
    S3_SECRET_ACCESS_KEY: ("AWS_SECRET_ACCESS_KEY",),
    S3_SESSION_TOKEN: ("AWS_SESSION_TOKEN",),
    S3_REGION: ("AWS_REGION", "AWS_DEFAULT_REGION"),
}
STORAGE_PROPERTIES = tuple(_FROM_ENV)


def is_object_store(location: str) -> bool:
    """Whether ``location`` is in object storage (``s3://…``) rather than on the local file system."""
    return urlparse(str(location)).scheme in S3_SCHEMES


def storage_properties(config: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The S3 settings (PyIceberg's property names) from ``config``, else the AWS environment variables.

    Only settings that are given appear. The region defaults to ``us-east-1`` when an endpoint is
    set (an S3-compatible server), since PyIceberg would otherwise ask AWS for the bucket's region.
    """
    env = os.environ if environ is None else environ
    config = config or {}
    found: dict[str, str] = {}
    for key, names in _FROM_ENV.items():
        value = config.get(key) or next((env[n] for n in names if env.get(n)), None)
        if value:
            found[key] = value
    if S3_ENDPOINT in found and S3_REGION not in found:
        found[S3_REGION] = DEFAULT_REGION
    return found


def duckdb_secret_sql(properties: Mapping[str, str], scope: str | None = None, name: str = "wharf_s3") -> str | None:
    """A DuckDB ``CREATE OR REPLACE SECRET`` (type s3) for ``properties``; None when there are none.

    Without key and secret DuckDB falls back to its own credential chain, so a secret is only
    built when there is something to say.
    """
    if not properties:
        return None
    options = ["TYPE s3"]
    if properties.get(S3_ACCESS_KEY_ID):
        options.append(f"KEY_ID {_quote(properties[S3_ACCESS_KEY_ID])}")
    if properties.get(S3_SECRET_ACCESS_KEY):
        options.append(f"SECRET {_quote(properties[S3_SECRET_ACCESS_KEY])}")
    if properties.get(S3_SESSION_TOKEN):
        options.append(f"SESSION_TOKEN {_quote(properties[S3_SESSION_TOKEN])}")
    options.append(f"REGION {_quote(properties.get(S3_REGION) or DEFAULT_REGION)}")
    if properties.get(S3_ENDPOINT):
        endpoint = urlparse(properties[S3_ENDPOINT])
        host = endpoint.netloc or endpoint.path  # "http://host:port" or a bare "host:port"
        options.append(f"ENDPOINT {_quote(host)}")
        options.append("URL_STYLE 'path'")  # S3-compatible servers address buckets by path
        options.append(f"USE_SSL {'false' if endpoint.scheme == 'http' else 'true'}")
    if scope:
        options.append(f"SCOPE {_quote(scope)}")
    return f"CREATE OR REPLACE SECRET {name} ({', '.join(options)})"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def local_path(uri: str) -> str:
    """A ``file://`` URI as a path; any other location (``s3://…``, a plain path) unchanged."""
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path)
    return uri


def prepare_write(uri: str) -> None:
    """Make the parent directory of a local file about to be written (object stores have none)."""
    if not is_object_store(uri):
        os.makedirs(os.path.dirname(local_path(uri)), exist_ok=True)


def file_size(io: Any, uri: str) -> int:
    """Size in bytes of the file at ``uri``."""
    if not is_object_store(uri):
        return os.path.getsize(local_path(uri))
    return len(io.new_input(uri))


def remove_file(io: Any, uri: str) -> None:
    """Remove the file at ``uri``; a file that is already gone is fine."""
    if not is_object_store(uri):
        try:
            os.remove(local_path(uri))
        except (FileNotFoundError, IsADirectoryError):  # gone, or a directory of split output
            pass
        return
    try:
        io.delete(uri)
    except FileNotFoundError:
        pass


@dataclass(frozen=True)
class StoredFile:
    """A file found under a location: its URI as written in metadata, size and modification time."""

    uri: str
    size: int
    modified_ms: int


def list_files(io: Any, location: str) -> Iterator[StoredFile]:
    """Every file under ``location`` (recursively); nothing if it does not exist.

    Local files come back as plain absolute paths, object-store files as ``scheme://bucket/key``.
    """
    if not is_object_store(location):
        root = local_path(location)
        for directory, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.normpath(os.path.join(directory, name))
                try:
                    stat = os.stat(path)
                except FileNotFoundError:
                    continue
                yield StoredFile(path, stat.st_size, int(stat.st_mtime * 1000))
        return
    from pyarrow.fs import FileSelector, FileType

    parsed = urlparse(location)
    fs = io.fs_by_scheme(parsed.scheme, parsed.netloc)
    base = f"{parsed.netloc}{parsed.path}".rstrip("/")
    for info in fs.get_file_info(FileSelector(base, recursive=True, allow_not_found=True)):
        if info.type != FileType.File:
            continue
        modified = info.mtime.timestamp() * 1000 if info.mtime is not None else 0
        yield StoredFile(f"{parsed.scheme}://{info.path}", int(info.size or 0), int(modified))


def open_output(io: Any, uri: str) -> Any:
    """A binary stream writing the file at ``uri`` (replacing it)."""
    if not is_object_store(uri):
        prepare_write(uri)
        return open(local_path(uri), "wb")  # noqa: SIM115 - the caller closes it
    return io.new_output(uri).create(overwrite=True)


def open_input(io: Any, uri: str) -> Any:
    """A seekable binary stream over the file at ``uri`` (for pyarrow's Parquet reader)."""
    if not is_object_store(uri):
        return open(local_path(uri), "rb")  # noqa: SIM115 - the caller closes it
    return io.new_input(uri).open()
