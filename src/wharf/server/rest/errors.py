"""Errors as the Iceberg REST spec's body: ``{"error": {"message", "type", "code"}}``, never a stack trace.

One function, ``error_body``, decides the HTTP status and the Iceberg error ``type`` for any
exception a route lets escape. It walks the exception's cause chain (Wharf's statement boundary
wraps PyIceberg's exceptions, keeping them as ``__cause__``) so that clients get the type they
dispatch on: ``NoSuchNamespaceException`` and ``NoSuchTableException`` are both 404, but a Java
client raises different exceptions for them.
"""

from __future__ import annotations

import logging
from typing import Any

import pydantic
from pyiceberg import exceptions as iceberg

from wharf import errors
from wharf.server.context import NotAuthenticated

log = logging.getLogger("wharf.server")

BAD_REQUEST = "BadRequestException"
NOT_FOUND_TABLE = "NoSuchTableException"
NOT_FOUND_NAMESPACE = "NoSuchNamespaceException"
NOT_FOUND_VIEW = "NoSuchViewException"
COMMIT_FAILED = "CommitFailedException"
COMMIT_STATE_UNKNOWN = "CommitStateUnknownException"


class RestError(errors.WharfError):
    """An error with an explicit HTTP status and Iceberg error type (raised by the REST routes)."""

    def __init__(self, status: int, error_type: str, message: str, *, hint: str | None = None) -> None:
        self.status = status
        self.error_type = error_type
        super().__init__(message, hint=hint)


def bad_request(message: str, hint: str | None = None) -> RestError:
    return RestError(400, BAD_REQUEST, message, hint=hint)


# PyIceberg's exceptions (found anywhere in the cause chain) → status and Iceberg type.
_ICEBERG: tuple[tuple[type[BaseException], int, str], ...] = (
    (iceberg.NoSuchTableError, 404, NOT_FOUND_TABLE),
    (iceberg.NoSuchViewError, 404, NOT_FOUND_VIEW),
    (iceberg.NoSuchNamespaceError, 404, NOT_FOUND_NAMESPACE),
    (iceberg.TableAlreadyExistsError, 409, "AlreadyExistsException"),
    (iceberg.ViewAlreadyExistsError, 409, "AlreadyExistsException"),
    (iceberg.NamespaceAlreadyExistsError, 409, "AlreadyExistsException"),
    (iceberg.NamespaceNotEmptyError, 409, "NamespaceNotEmptyException"),
    (iceberg.CommitFailedException, 409, COMMIT_FAILED),
    (iceberg.CommitStateUnknownException, 500, COMMIT_STATE_UNKNOWN),
    (pydantic.ValidationError, 400, BAD_REQUEST),
)

# Wharf's errors → status and Iceberg type (the first class that matches; subclasses first).
_WHARF: tuple[tuple[type[errors.WharfError], int, str], ...] = (
    (NotAuthenticated, 401, "NotAuthorizedException"),
    (errors.AuthenticationError, 401, "NotAuthorizedException"),
    (errors.RateLimited, 429, "TooManyRequestsException"),
    (errors.AccessDenied, 403, "ForbiddenException"),
    (errors.AlreadyExists, 409, "AlreadyExistsException"),
    (errors.ConflictError, 409, COMMIT_FAILED),
    (errors.ValidationError, 409, "ValidationException"),
    (errors.CommitRejected, 422, "CommitRejectedException"),
    (errors.InvalidArgument, 400, BAD_REQUEST),
    (errors.SchemaMismatch, 400, BAD_REQUEST),
    (errors.SqlError, 400, BAD_REQUEST),
    (errors.CatalogUnavailable, 503, "ServiceUnavailableException"),
    (errors.ResourceExhausted, 503, "ServiceUnavailableException"),
)


# Exceptions a request may end with that are not bugs: answered without a traceback in the log.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (errors.WharfError, *(k for k, _, _ in _ICEBERG if issubclass(k, Exception)))


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found and len(found) < 10:
        found.append(current)
        current = current.__cause__  # explicit causes only: `raise … from exc`
    return found


def _message(exc: BaseException) -> str:
    if isinstance(exc, errors.WharfError):
        return exc.message if exc.hint is None else f"{exc.message} (hint: {exc.hint})"
    if isinstance(exc, pydantic.ValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
        return f"Invalid request body: {problems}"
    return str(exc) or type(exc).__name__


def classify(exc: BaseException, not_found: str = NOT_FOUND_TABLE, commit: bool = False) -> tuple[int, str, str]:
    """``(status, iceberg type, message)`` for ``exc``; ``not_found`` types a plain ``NotFound``,
    ``commit`` makes an unexpected error a ``CommitStateUnknownException`` (the spec's 500 for commits)."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, RestError):
            return e.status, e.error_type, _message(e)
    for e in chain:
        if isinstance(e, errors.AlreadyExists):  # deliberate, whatever PyIceberg error it wraps
            return 409, "AlreadyExistsException", _message(e)
    for e in chain:
        for klass, status, kind in _ICEBERG:
            if isinstance(e, klass):
                # The Wharf error on top says it better (with a hint) when there is one.
                return status, kind, _message(exc if isinstance(exc, errors.WharfError) else e)
    for e in chain:
        if isinstance(e, errors.NotFound):
            return 404, not_found, _message(e)
        for wharf_class, status, kind in _WHARF:
            if isinstance(e, wharf_class):
                return status, kind, _message(e)
    # Anything else is a bug or an unknown state: log it with the traceback, answer without one.
    log.error("unexpected error", exc_info=exc)
    if commit:
        return 500, COMMIT_STATE_UNKNOWN, "The commit failed unexpectedly; its state is unknown (see the server log)"
    return 500, "InternalServerError", "The server failed unexpectedly (see the server log for this request id)"


def error_body(status: int, kind: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": status}}
