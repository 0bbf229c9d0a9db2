"""The one error translation at the statement boundary: any exception → the right ``wharf.errors`` class.

Statement code raises Wharf errors where it knows what went wrong; everything that escapes from
sqlglot, DuckDB (while planning, executing, fetching or streaming), PyIceberg, SQLAlchemy,
pyarrow or the OS is translated here, once, with the statement's text for position context. An
exception nobody expected becomes ``InternalError`` (a bug: the fuzz tests treat it as a
failure), never a raw traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import duckdb
import pyarrow as pa
import sqlalchemy.exc
from pyiceberg import exceptions as iceberg
from sqlglot import errors as sqlglot_errors

from wharf import errors
from wharf.errors import WharfError

_LINE_CONTEXT = re.compile(r"\n\s*LINE \d+:.*", re.DOTALL)
_INTERNAL_NAMES = re.compile(r'"?__wharf_(?:t|meta|ref|target|changes|joined|source)_\d+"?')

# DuckDB's exception classes → Wharf's (most specific first; DuckDB's classes form a hierarchy).
_DUCKDB: tuple[tuple[type[BaseException], type[WharfError]], ...] = (
    (duckdb.PermissionException, errors.AccessDenied),
    (duckdb.ConversionException, errors.SchemaMismatch),
    (duckdb.OutOfRangeException, errors.SchemaMismatch),
    (duckdb.TypeMismatchException, errors.SchemaMismatch),
    (duckdb.ConstraintException, errors.SchemaMismatch),
    (duckdb.OutOfMemoryException, errors.ResourceExhausted),
    (duckdb.InterruptException, errors.ResourceExhausted),
    (duckdb.IOException, errors.StorageError),
    (duckdb.HTTPException, errors.StorageError),
    (duckdb.InvalidInputException, errors.InvalidArgument),
    (duckdb.NotImplementedException, errors.UnsupportedStatement),
    (duckdb.InternalException, errors.InternalError),
    (duckdb.FatalException, errors.InternalError),
)

_ICEBERG: tuple[tuple[type[BaseException], type[WharfError]], ...] = (
    (iceberg.NoSuchTableError, errors.NotFound),
    (iceberg.NoSuchNamespaceError, errors.NotFound),
    (iceberg.NoSuchPropertyException, errors.NotFound),
    (iceberg.TableAlreadyExistsError, errors.AlreadyExists),
    (iceberg.NamespaceAlreadyExistsError, errors.AlreadyExists),
    (iceberg.NamespaceNotEmptyError, errors.InvalidArgument),
    (iceberg.CommitFailedException, errors.ConflictError),
    (iceberg.ValidationException, errors.ConflictError),
    (iceberg.CommitStateUnknownException, errors.CatalogUnavailable),
)


def duckdb_error(exc: duckdb.Error) -> WharfError:
    """Explain a DuckDB error without the rewritten SQL (which names internal Parquet files)."""
    text = _LINE_CONTEXT.sub("", str(exc)).strip()
    text = _INTERNAL_NAMES.sub("table", text)
    for klass, wharf_class in _DUCKDB:
        if isinstance(exc, klass):
            return wharf_class(text)
    if isinstance(exc, duckdb.ParserException):
        return errors.SqlError(text, hint="check the statement's syntax")
    return errors.SqlError(text)


def translate(exc: BaseException, sql: str | None = None) -> WharfError:
    """The Wharf error for ``exc`` (``exc`` itself when it already is one)."""
    if isinstance(exc, WharfError):
        return exc
    for test, build in _TRANSLATIONS:
        if isinstance(exc, test):
            return build(exc, sql)
    return errors.InternalError(
        f"Unexpected {type(exc).__name__}: {exc}",
        hint="this is a bug in Wharf; please report it with the statement (run the CLI with --debug for the traceback)",
    )


def _sqlglot(exc: BaseException, sql: str | None) -> WharfError:
    if isinstance(exc, sqlglot_errors.ParseError) and exc.errors:
        err = exc.errors[0]
        message = str(err.get("description") or exc).split("\n")[0]
        return errors.SqlParseError(message, line=err.get("line"), column=err.get("col"), sql=sql)
    if isinstance(exc, (sqlglot_errors.TokenError, sqlglot_errors.ParseError)):
        return errors.SqlParseError(str(exc).split("\n")[0], sql=sql)
    return errors.SqlError(str(exc).split("\n")[0])


def _iceberg(exc: BaseException, sql: str | None) -> WharfError:
    for klass, wharf_class in _ICEBERG:
        if isinstance(exc, klass):
            return wharf_class(str(exc))
    return errors.InternalError(f"{type(exc).__name__}: {exc}")


def _sqlalchemy(exc: BaseException, sql: str | None) -> WharfError:
    if isinstance(exc, sqlalchemy.exc.OperationalError):
        return errors.CatalogUnavailable(
            f"The lake's metadata database failed: {str(getattr(exc, 'orig', exc))}",
            hint="another process may hold it locked for long; try again, or check the disk",
        )
    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return errors.AlreadyExists(f"The object was created concurrently: {str(getattr(exc, 'orig', exc))}")
    return errors.CatalogUnavailable(f"The lake's metadata database failed: {exc}")


def _os(exc: BaseException, sql: str | None) -> WharfError:
    assert isinstance(exc, OSError)
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return errors.StorageError(f"{exc.strerror or exc}{where}", hint="check the disk space and the lake directory's permissions")


def _recursion(exc: BaseException, sql: str | None) -> WharfError:
    return errors.SqlError(
        "The statement is nested too deeply to process",
        hint="split deeply nested expressions or subqueries into CTEs or several statements",
    )


Translator = Callable[[BaseException, str | None], WharfError]
_TRANSLATIONS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Translator], ...] = (
    (duckdb.Error, lambda exc, sql: duckdb_error(exc)),  # type: ignore[arg-type]
    (sqlglot_errors.SqlglotError, _sqlglot),
    (RecursionError, _recursion),
    (
        tuple(klass for klass, _ in _ICEBERG),
        _iceberg,
    ),
    (sqlalchemy.exc.SQLAlchemyError, _sqlalchemy),
    ((pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError), lambda exc, sql: errors.SchemaMismatch(str(exc))),
    (MemoryError, lambda exc, sql: errors.ResourceExhausted("Out of memory", hint="reduce the data the statement reads")),
    (OSError, _os),
)
