"""Every error Wharf raises, in one rooted tree.

::

    WharfError                       status 500, the root: catch this to catch everything
    ├── SqlError                     status 400
    │   ├── SqlParseError            syntax error, carries line and column
    │   └── UnsupportedStatement     valid SQL that Wharf does not run (says what is supported)
    ├── NotFound                     status 404: namespace, table, column, branch, tag, snapshot
    ├── AlreadyExists                status 409
    ├── SchemaMismatch               status 400: type, nullability, column count or name mismatch
    ├── InvalidArgument              status 400: bad procedure argument, property, value
    │   ├── MergeCardinalityError    a MERGE / UPDATE … FROM target row matches several source rows
    │   └── DataQualityRuleError     a DQDL ruleset is not valid; carries line and column
    ├── ConflictError                status 409: a concurrent commit conflicts with this one
    ├── ValidationError              status 409: an operation's precondition fails (not an ancestor, …)
    ├── CommitRejected               status 422: a commit gate (quality, governance) refused a change
    ├── AuthenticationError          status 401: no valid credentials (bad password, expired or revoked token)
    ├── AccessDenied                 status 403: the principal may not do this
    ├── RateLimited                  status 429: too many attempts; ``retry_after_s`` says when to retry
    ├── StorageError                 status 500: a file could not be read or written (disk, permissions)
    ├── CatalogUnavailable           status 503: the metadata database could not be reached or is locked
    │   └── AuditUnavailable         the audit record of a statement or request could not be written
    ├── ResourceExhausted            status 503: out of memory, or interrupted
    ├── MissingExtra                 status 500: an optional dependency is not installed
    └── InternalError                status 500: a bug in Wharf (an unexpected exception, wrapped)

Messages say what failed, on which object, where (line/column for SQL), and how to fix it.
"""

from __future__ import annotations


class WharfError(Exception):
    """Root of all Wharf errors. ``status`` is the HTTP status the server maps it to."""

    status: int = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\nHint: {hint}")


class SqlError(WharfError):
    """A statement could not be run as written."""

    status = 400


class SqlParseError(SqlError):
    """The SQL text is not valid; ``line`` and ``column`` (1-based) point at the offending token."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        sql: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.line = line
        self.column = column
        self.sql = sql
        where = f" at line {line}, column {column}" if line is not None else ""
        text = f"{message}{where}"
        if sql is not None and line is not None and column is not None:
            lines = sql.splitlines() or [""]
            if 1 <= line <= len(lines):
                src = lines[line - 1]
                text += f"\n  {src}\n  {' ' * max(column - 1, 0)}^"
        super().__init__(text, hint=hint)


class UnsupportedStatement(SqlError):
    """Valid SQL that Wharf does not execute; the message lists what is supported instead."""


class NotFound(WharfError):
    """A namespace, table, column, branch, tag or snapshot does not exist."""

    status = 404


class AlreadyExists(WharfError):
    """An object with that name already exists."""

    status = 409


class SchemaMismatch(WharfError):
    """Data does not fit the table schema (type, nullability, column count or names)."""

    status = 400


class InvalidArgument(WharfError):
    """An argument, property or value is not acceptable."""

    status = 400


class MergeCardinalityError(InvalidArgument):
    """A MERGE (or UPDATE … FROM) target row matches more than one source row; nothing was changed."""


class DataQualityRuleError(InvalidArgument):
    """A DQDL ruleset is not valid; ``line`` and ``column`` (1-based) point at the offending token."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        text: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.line = line
        self.column = column
        self.text = text
        where = f" at line {line}, column {column}" if line is not None else ""
        full = f"{message}{where}"
        if text is not None and line is not None and column is not None:
            lines = text.splitlines() or [""]
            if 1 <= line <= len(lines):
                full += f"\n  {lines[line - 1]}\n  {' ' * max(column - 1, 0)}^"
        super().__init__(full, hint=hint)


class ConflictError(WharfError):
    """A concurrent commit conflicts with this statement; nothing was committed."""

    status = 409

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        conflicting_snapshot_id: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.table = table
        self.conflicting_snapshot_id = conflicting_snapshot_id
        super().__init__(message, hint=hint)


class ValidationError(WharfError):
    """An operation's precondition does not hold (e.g. fast-forward target is not a descendant)."""

    status = 409


class CommitRejected(WharfError):
    """A ``before_commit`` gate refused a change: nothing was committed, the files written for it are gone.

    ``gate`` names the gate; ``table`` the table the change was for.
    """

    status = 422

    def __init__(self, message: str, *, table: str | None = None, gate: str | None = None, hint: str | None = None) -> None:
        self.table = table
        self.gate = gate
        super().__init__(message, hint=hint)


class AccessDenied(WharfError):
    """The statement's principal is not allowed to do what it asked (read files, attach, …)."""

    status = 403


class AuthenticationError(WharfError):
    """The caller did not prove who it is: a wrong password or secret, or a bad, expired or revoked token.

    ``reason`` is short and safe to send to the client (it never contains the credential, and it
    does not say whether a user name exists); ``error`` is the OAuth 2 error code for the token
    endpoint (RFC 6749 §5.2): ``invalid_client``, ``invalid_grant`` or ``invalid_token``.
    """

    status = 401

    def __init__(self, reason: str, *, error: str = "invalid_token", hint: str | None = None) -> None:
        self.reason = reason
        self.error = error
        super().__init__(reason, hint=hint)


class RateLimited(WharfError):
    """Too many attempts from one client or address; retry after ``retry_after_s`` seconds."""

    status = 429

    def __init__(self, message: str, *, retry_after_s: float, hint: str | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, hint=hint)


class StorageError(WharfError):
    """A file of the lake could not be read or written (disk full, permissions, a missing file)."""

    status = 500


class CatalogUnavailable(WharfError):
    """The metadata database could not be reached, or stayed locked longer than the busy timeout."""

    status = 503


class AuditUnavailable(CatalogUnavailable):
    """The audit log could not record a statement or an API call, so it failed (auditing never fails silently).

    A statement whose changes were committed before its final record failed says so in the message.
    """


class ResourceExhausted(WharfError):
    """The statement ran out of memory, or was interrupted."""

    status = 503


class InternalError(WharfError):
    """An exception Wharf did not expect: a bug. The original exception is chained as ``__cause__``."""

    status = 500


class MissingExtra(WharfError):
    """An optional dependency is missing; the message names the ``pip install`` to run."""

    status = 500


__all__ = [
    "AccessDenied",
    "AlreadyExists",
    "AuditUnavailable",
    "AuthenticationError",
    "CatalogUnavailable",
    "CommitRejected",
    "ConflictError",
    "DataQualityRuleError",
    "InternalError",
    "InvalidArgument",
    "MergeCardinalityError",
    "MissingExtra",
    "NotFound",
    "RateLimited",
    "ResourceExhausted",
    "SchemaMismatch",
    "SqlError",
    "SqlParseError",
    "StorageError",
    "UnsupportedStatement",
    "ValidationError",
    "WharfError",
]
