"""The audit log: who did what, when, to which tables and columns, under which policies, and the decision.

One ``AuditRecord`` per statement (embedded or served), per HTTP API / Iceberg REST request, and
per governance decision a feature records itself (``record_decision``: access requests,
sign-ins). A record holds the principal, the time, the statement text (or ``GET /v1/…``), the
tables and columns read and written, the policies applied (row filters and masks, by name), the
decision (``allowed``, ``refused`` and why, or ``error``) and the row count (rows written; rows
returned — a streamed result completes its record once read to the end). Statement text and
reasons pass ``redact_statement`` first: passwords, secrets, tokens and ``Authorization`` values
never reach the log.

**Never silently unaudited.** The record of a statement is written before its result is returned;
if it cannot be written the statement fails with ``AuditUnavailable``. A statement that commits
writes a ``pending`` record in a ``before_commit`` gate first (so no commit lands without a record)
and completes it when the statement ends; a ``pending`` record that stays says the process died or
the final write failed after the commit.

**Where.** Many small writes: one row per statement in the metadata database, never an Iceberg
commit per statement. With SQLite the log has a file of its own beside the catalog
(``wharf-audit.db`` next to ``wharf.db``): every write to ``wharf.db`` changes the change token
that lets statements reuse cached catalog answers (``wharf.catalog.freshness``), so an audit row
there would make every statement re-validate its caches. PostgreSQL has no such token: the log is
the ``wharf_audit_log`` table of the metadata database (migration 0009).

**Reading.** ``SELECT … FROM system.audit_log`` (``wharf.sql.system_tables``), ``lake.audit``
(``Audit``: ``records`` / ``export``), ``wharf audit export``. The lake owner may read it, and
principals granted ``SELECT ON TABLE system.audit_log`` (or on ``NAMESPACE system``) directly or
through a group or role; a catalog-wide grant does not include it.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from wharf.auth.redaction import REDACTED, redact
from wharf.errors import AccessDenied, AuditUnavailable, AuthenticationError, CommitRejected, InvalidArgument, RateLimited
from wharf.events import register_builtin
from wharf.governance import hooks  # noqa: F401  (governance's commit gate registers first: it refuses before a pending record)
from wharf.governance.privileges import ALL, NAMESPACE, SELECT, TABLE
from wharf.sql.system_tables import register_system_table
from wharf.statement import Statement, current, new_statement_id

if TYPE_CHECKING:
    from wharf.catalog import LakeCatalog
    from wharf.catalog.changes import TableChange
    from wharf.governance.state import GovernanceState, Identity
    from wharf.lakehouse import Lakehouse
    from wharf.principal import Principal
    from wharf.sql.context import Context

AUDIT_TABLE = "system.audit_log"
ALLOWED, REFUSED, ERROR, PENDING = "allowed", "refused", "error", "pending"
ANONYMOUS = "(unauthenticated)"  # the principal of a request refused before anyone was identified
MAX_TEXT = 64 * 1024  # statement text kept (a huge INSERT … VALUES is cut, marked)
MAX_REASON = 4 * 1024

metadata = sa.MetaData()
audit_log = sa.Table(
    "wharf_audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False),  # the statement id, or the request's
    sa.Column("time_ms", sa.BigInteger, nullable=False),
    sa.Column("principal", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # statement | http | a feature's own (access_request …)
    sa.Column("operation", sa.String(64), nullable=False),  # select, insert, grant … | loadTable, submitQuery …
    sa.Column("statement", sa.Text, nullable=False),
    sa.Column("tables_read", sa.Text, nullable=False),  # JSON lists of names
    sa.Column("columns_read", sa.Text, nullable=False),
    sa.Column("tables_written", sa.Text, nullable=False),
    sa.Column("columns_written", sa.Text, nullable=False),
    sa.Column("policies", sa.Text, nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("rows", sa.BigInteger),
    sa.Column("duration_ms", sa.Float),
    sa.Column("status", sa.Integer),  # HTTP status of a request
    sa.Column("request_id", sa.String(128)),
    sa.Column("detail", sa.Text),  # JSON object: what a feature adds (an access request's id and expiry …)
    sa.Index("ix_wharf_audit_log_time", "time_ms"),
    sa.Index("ix_wharf_audit_log_principal", "principal", "time_ms"),
    sa.Index("ix_wharf_audit_log_event", "event_id"),
)

_LISTS = ("tables_read", "columns_read", "tables_written", "columns_written", "policies")


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the audit log. Build one and pass it to ``record_decision`` / ``AuditLog.write``.

    ``decision`` is ``allowed``, ``refused`` (``reason`` says why: a missing privilege, a bad
    token …) or ``error``. Names are ``db.table`` and ``db.table.column`` (``db.table.*``: every
    column); ``policies`` are ``db.table: row filter f`` / ``db.table: mask col: f``.
    """

    principal: str
    kind: str
    operation: str
    statement: str
    decision: str = ALLOWED
    reason: str | None = None
    tables_read: tuple[str, ...] = ()
    columns_read: tuple[str, ...] = ()
    tables_written: tuple[str, ...] = ()
    columns_written: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    rows: int | None = None
    duration_ms: float | None = None
    status: int | None = None
    request_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=new_statement_id)
    time_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (``time`` in ISO 8601, UTC): one line of ``wharf audit export``."""
        data = asdict(self)
        data["time"] = dt.datetime.fromtimestamp(self.time_ms / 1000, dt.UTC).isoformat(timespec="milliseconds")
        del data["time_ms"]
        for name in _LISTS:
            data[name] = list(data[name])
        data["detail"] = dict(self.detail)
        return {"time": data.pop("time"), **data}


# --- redaction ----------------------------------------------------------------------------------

# A secret-named keyword followed by a SQL string literal: PASSWORD 'x', SECRET = 'x', 'password' = 'x',
# IDENTIFIED BY 'x', KEY_ID 'x', s3_secret_access_key='x', TOKEN 'x' … (the literal may contain '').
_SQL_SECRET = re.compile(
    r"""(?ix)
    (\b[\w]*(?:password|passwd|secret|token|credential|api[_-]?key|key[_-]?id|private[_-]?key|identified\s+by)[\w]*['"]?)
    (\s*(?:=>|=|:|\s)\s*)
    '(?:[^']|'')*'
    """
)


def redact_statement(text: str) -> str:
    """``text`` with secrets replaced by ``[REDACTED]``: SQL literals after secret-named keywords, then
    ``wharf.auth.redaction.redact`` (Authorization values, bearer tokens, JWTs, ``key=value`` secrets).

    >>> redact_statement("CREATE USER bob PASSWORD 'hunter2'")
    "CREATE USER bob PASSWORD '[REDACTED]'"
    """
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f" … [{len(text) - MAX_TEXT} characters cut]"
    return redact(_SQL_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}'{REDACTED}'", text))


# --- the request a statement runs for (set by the server's middleware) --------------------------

_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("wharf_audit_request", default=None)


def bind_request(request_id: str | None) -> contextvars.Token[str | None]:
    """Statements run while this is set are recorded with the HTTP request's id (the server calls it)."""
    return _REQUEST_ID.set(request_id)


def unbind_request(token: contextvars.Token[str | None]) -> None:
    _REQUEST_ID.reset(token)


# --- the store ----------------------------------------------------------------------------------

_logs: weakref.WeakKeyDictionary[Any, AuditLog] = weakref.WeakKeyDictionary()
_logs_lock = threading.Lock()


def audit_log_for(catalog: LakeCatalog) -> AuditLog:
    """The audit log of a lake (one per open catalog, shared by every handle and the server)."""
    with _logs_lock:
        found = _logs.get(catalog)
        if found is None:
            found = _logs[catalog] = AuditLog(_engine_for(catalog.engine))
        return found


def audit_path(catalog_database: str) -> Path:
    """The SQLite file of the audit log beside a SQLite catalog database (``wharf.db`` → ``wharf-audit.db``)."""
    path = Path(catalog_database)
    return path.with_name(f"{path.stem}-audit.db")


def _engine_for(engine: Engine) -> Engine:
    url = engine.url
    if engine.dialect.name != "sqlite" or not url.database or url.database == ":memory:":
        return engine  # PostgreSQL (migration 0009 made the table), or a throw-away database
    audit = sa.create_engine(f"sqlite:///{audit_path(url.database)}", connect_args={"check_same_thread": False})

    @event.listens_for(audit, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 60000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, no fsync per row
        cursor.close()

    for attempt in range(3):  # processes opening a new lake at once race to create the table
        try:
            metadata.create_all(audit)
            break
        except sa.exc.OperationalError as exc:
            if "already exists" not in str(exc) or attempt == 2:
                raise
    return audit


def _text(value: str | None) -> str | None:
    """``value`` storable in any database: PostgreSQL text cannot hold NUL, which a request path may carry (``%00``)."""
    return value.replace("\x00", "\\x00") if value is not None and "\x00" in value else value


def _row(record: AuditRecord) -> dict[str, Any]:
    row = {
        "event_id": record.event_id,
        "time_ms": record.time_ms,
        "principal": _text(record.principal),
        "kind": record.kind,
        "operation": _text(record.operation[:64]),
        "statement": _text(record.statement),
        "decision": record.decision,
        "reason": _text(record.reason),
        "rows": record.rows,
        "duration_ms": record.duration_ms,
        "status": record.status,
        "request_id": _text(record.request_id),
        "detail": json.dumps(dict(record.detail), default=str) if record.detail else None,
    }
    for name in _LISTS:
        row[name] = json.dumps(list(getattr(record, name)))
    return row


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        principal=row.principal,
        kind=row.kind,
        operation=row.operation,
        statement=row.statement,
        decision=row.decision,
        reason=row.reason,
        rows=row.rows,
        duration_ms=row.duration_ms,
        status=row.status,
        request_id=row.request_id,
        detail=json.loads(row.detail) if row.detail else {},
        event_id=row.event_id,
        time_ms=row.time_ms,
        **{name: tuple(json.loads(getattr(row, name))) for name in _LISTS},
    )


class AuditLog:
    """Writes and reads one lake's audit log. ``write`` raises ``AuditUnavailable``; it never drops a record."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.audit_owner = True  # False: the embedded owner's statements are not recorded (connect(audit=False))
        self._insert = audit_log.insert()
        self._update_rows = (
            audit_log.update()
            .where(audit_log.c.event_id == sa.bindparam("b_event"), audit_log.c.kind == "statement")
            .values(rows=sa.bindparam("b_rows"))
        )
        self._counts: list[dict[str, Any]] = []  # row counts of streamed results, written with the next record
        self._counts_lock = threading.Lock()
        # SQLite (the side file): writes go through one sqlite3 connection of their own, with
        # statements prepared once — a third of the cost of SQLAlchemy's per-write transaction
        # (measured interleaved with queries: bench/governance.py). SQLite serialises writers anyway.
        self._raw: sqlite3.Connection | None = None
        self._raw_lock = threading.Lock()
        if engine.dialect.name == "sqlite" and engine.url.database and engine.url.database != ":memory:":
            self._raw = sqlite3.connect(engine.url.database, isolation_level=None, check_same_thread=False, timeout=60)
            self._raw.execute("PRAGMA synchronous = NORMAL")
            weakref.finalize(self, self._raw.close)
        columns = [c.name for c in audit_log.columns if c.name != "id"]
        self._raw_insert = f"INSERT INTO wharf_audit_log ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
        self._raw_replace = (
            f"UPDATE wharf_audit_log SET {', '.join(f'{c} = :{c}' for c in columns)} "
            f"WHERE event_id = :event_id AND decision = '{PENDING}'"
        )
        self._raw_rows = "UPDATE wharf_audit_log SET rows = :b_rows WHERE event_id = :b_event AND kind = 'statement'"

    def close(self) -> None:
        """Write the pending row counts and close the write connection (later writes use the engine)."""
        self.flush()
        with self._raw_lock:
            raw, self._raw = self._raw, None
        if raw is not None:
            raw.close()

    def _execute(self, row: dict[str, Any] | None, counts: list[dict[str, Any]], replace_pending: bool) -> None:
        """One transaction: the row counts, then the record (completing its pending record if asked)."""
        with self._raw_lock:
            raw = self._raw
            if raw is not None:
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    if counts:
                        raw.executemany(self._raw_rows, counts)
                    if row is not None and not (replace_pending and raw.execute(self._raw_replace, row).rowcount):
                        raw.execute(self._raw_insert, row)
                    raw.execute("COMMIT")
                except BaseException:
                    if raw.in_transaction:
                        raw.execute("ROLLBACK")
                    raise
                return
        with self.engine.begin() as conn:
            if counts:
                conn.execute(self._update_rows, counts)
            if row is None:
                return
            if replace_pending:
                done = conn.execute(
                    audit_log.update()
                    .where(audit_log.c.event_id == row["event_id"], audit_log.c.decision == PENDING)
                    .values(**row)
                ).rowcount
                if done:
                    return
            conn.execute(self._insert, row)

    def write(self, record: AuditRecord, *, replace_pending: bool = False) -> None:
        """Append ``record`` (``replace_pending``: complete the ``pending`` record of the same event instead).

        Row counts noted since the last write (``set_rows``) are written in the same transaction.
        """
        row = _row(record)
        counts = self._take_counts()
        try:
            self._execute(row, counts, replace_pending)
        except Exception as exc:
            self._requeue(counts)
            raise AuditUnavailable(
                f"The audit log could not record {record.kind} {record.operation} by {record.principal}: "
                f"{type(exc).__name__}: {redact(str(exc))[:300]}",
                hint="check the metadata database (disk space, permissions, locks: `wharf-audit.db` beside `wharf.db`)",
            ) from exc

    def set_rows(self, event_id: str, rows: int) -> None:
        """Note the rows a statement's streamed result held; written with the next record, a read of the log, or ``flush``.

        (A second transaction per query would double the audit's cost; the record itself is
        already written, only its count waits.)
        """
        with self._counts_lock:
            self._counts.append({"b_event": event_id, "b_rows": rows})

    def flush(self) -> None:
        """Write the row counts noted since the last write (``AuditUnavailable`` if it cannot)."""
        counts = self._take_counts()
        if not counts:
            return
        try:
            self._execute(None, counts, False)
        except Exception as exc:
            self._requeue(counts)
            raise AuditUnavailable(
                f"The audit log could not record the row counts of {len(counts)} statement(s): {type(exc).__name__}: "
                f"{redact(str(exc))[:300]}",
                hint="check the metadata database (disk space, permissions, locks: `wharf-audit.db` beside `wharf.db`)",
            ) from exc

    def _take_counts(self) -> list[dict[str, Any]]:
        with self._counts_lock:
            counts, self._counts = self._counts, []
        return counts

    def _requeue(self, counts: list[dict[str, Any]]) -> None:
        if counts:
            with self._counts_lock:
                self._counts[:0] = counts

    def records(
        self,
        *,
        since: str | int | dt.datetime | None = None,
        until: str | int | dt.datetime | None = None,
        principal: str | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditRecord]:
        """The records from ``since`` (inclusive) to ``until`` (exclusive), oldest first, optionally of one principal.

        Times are ISO 8601 (``2026-12-01``, ``2026-12-01T10:00:00Z``), epoch milliseconds, a
        ``datetime``, or a duration back from now (``30m``, ``24h``, ``7d``).
        """
        self.flush()  # the row counts noted so far are part of what is read
        query = sa.select(audit_log).order_by(audit_log.c.time_ms, audit_log.c.id)
        if since is not None:
            query = query.where(audit_log.c.time_ms >= moment_ms(since))
        if until is not None:
            query = query.where(audit_log.c.time_ms < moment_ms(until))
        if principal is not None:
            query = query.where(audit_log.c.principal == principal)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                yield _record(row)

    def to_arrow(self, **filters: Any) -> pa.Table:
        """The records as an Arrow table with ``system.audit_log``'s schema."""
        columns: dict[str, list[Any]] = {f.name: [] for f in SCHEMA}
        for record in self.records(**filters):
            columns["time"].append(record.time_ms * 1000)
            for name in SCHEMA.names[1:]:
                value = getattr(record, name)
                if name == "detail":
                    value = json.dumps(dict(value)) if value else None
                elif name in _LISTS:
                    value = list(value)
                columns[name].append(value)
        return pa.table(columns, schema=SCHEMA)

    def export(self, out: IO[str], **filters: Any) -> int:
        """Write the records as JSON lines to ``out``; returns how many."""
        count = 0
        for record in self.records(**filters):
            out.write(json.dumps(record.to_json(), separators=(",", ":")) + "\n")
            count += 1
        return count


_TIME = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("time", _TIME),
        ("principal", pa.string()),
        ("kind", pa.string()),
        ("operation", pa.string()),
        ("statement", pa.string()),
        ("decision", pa.string()),
        ("reason", pa.string()),
        ("tables_read", pa.list_(pa.string())),
        ("columns_read", pa.list_(pa.string())),
        ("tables_written", pa.list_(pa.string())),
        ("columns_written", pa.list_(pa.string())),
        ("policies", pa.list_(pa.string())),
        ("rows", pa.int64()),
        ("duration_ms", pa.float64()),
        ("status", pa.int32()),
        ("request_id", pa.string()),
        ("event_id", pa.string()),
        ("detail", pa.string()),
    ]
)

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$", re.IGNORECASE)
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def moment_ms(value: str | int | dt.datetime) -> int:
    """Epoch milliseconds of a point in time: ISO 8601, epoch ms, a datetime, or ``24h`` / ``7d`` ago."""
    from wharf.tables.refs import parse_timestamp_ms

    if isinstance(value, str) and (m := _AGO.match(value)):
        return int(time.time() * 1000 - float(m.group(1)) * _UNIT_MS[m.group(2).lower()])
    if isinstance(value, str) and value.strip().endswith(("Z", "z")):
        value = value.strip()[:-1] + "+00:00"
    try:
        return parse_timestamp_ms(value)
    except InvalidArgument:
        raise InvalidArgument(
            f"{value!r} is not a point in time", hint="ISO 8601 (2026-12-01, 2026-12-01T10:00:00Z) or a duration ago (24h, 7d)"
        ) from None


# --- statements -----------------------------------------------------------------------------------

_pending: set[str] = set()  # ids of running statements whose pending record is written (a commit gate did)
_notes: dict[str, dict[str, Any]] = {}  # statement id → what features noted for its record
_state_lock = threading.Lock()


def note(**detail: Any) -> None:
    """Add ``detail`` to the audit record of the running statement (``note(request_id=12, expires="…")``).

    What a feature knows beyond the statement text — an access request's id, the grant it made
    and its expiry — lands in the record's ``detail`` (a JSON object). Outside a statement it does
    nothing: use ``record_decision`` for a decision that is not a statement.
    """
    statement = current()
    if statement is None:
        return
    with _state_lock:
        _notes.setdefault(statement.id, {}).update(detail)


def decision_of(error: BaseException | None) -> str:
    if error is None:
        return ALLOWED
    if isinstance(error, (AccessDenied, AuthenticationError, CommitRejected, RateLimited)):
        return REFUSED
    return ERROR


def reason_of(error: BaseException | None) -> str | None:
    if error is None:
        return None
    message = getattr(error, "message", None) or str(error)
    return redact_statement(f"{type(error).__name__}: {message}")[:MAX_REASON]


def statement_record(
    statement: Statement,
    error: BaseException | None,
    rows: int | None,
    written_columns: Mapping[str, Sequence[str]] | None = None,
) -> AuditRecord:
    """The audit record of a statement that ended (``error`` None: it succeeded)."""
    tables_read: list[str] = []
    columns_read: list[str] = []
    policies: list[str] = []
    for read in statement.reads:
        tables_read.append(read.table)
        if read.columns is None:
            columns_read.append(f"{read.table}.*")
        else:
            columns_read.extend(f"{read.table}.{c}" for c in read.columns)
        policies.extend(f"{read.table}: {name}" for name in read.policies)
    tables_written = list(dict.fromkeys(w.table for w in statement.writes))
    columns_written = [f"{t}.{c}" for t, cols in (written_columns or {}).items() for c in cols]
    with _state_lock:
        detail = _notes.pop(statement.id, {})
    if statement.retries:
        detail = {**detail, "retries": statement.retries}
    return AuditRecord(
        principal=statement.principal.name,
        kind="statement",
        operation=statement.kind,
        statement=redact_statement(statement.text),
        decision=decision_of(error),
        reason=reason_of(error),
        tables_read=tuple(dict.fromkeys(tables_read)),
        columns_read=tuple(dict.fromkeys(columns_read)),
        tables_written=tuple(tables_written),
        columns_written=tuple(dict.fromkeys(columns_written)),
        policies=tuple(dict.fromkeys(policies)),
        rows=rows,
        duration_ms=round((time.perf_counter() - statement.started) * 1000, 3),
        request_id=_REQUEST_ID.get(),
        detail=detail,
        event_id=statement.id,
    )


def audits(log: AuditLog, principal: Principal) -> bool:
    """Whether statements of ``principal`` are recorded (always, but for the owner of a lake opened with ``audit=False``)."""
    return log.audit_owner or not principal.is_owner


def record_statement(
    log: AuditLog,
    statement: Statement,
    error: BaseException | None,
    rows: int | None,
    written_columns: Mapping[str, Sequence[str]] | None = None,
) -> bool:
    """Write the record of a statement that ended (False: not audited); ``AuditUnavailable`` (saying whether it
    committed) if it cannot."""
    with _state_lock:
        pending = statement.id in _pending
        _pending.discard(statement.id)
    if not pending and not audits(log, statement.principal):
        with _state_lock:
            _notes.pop(statement.id, None)
        return False
    record = statement_record(statement, error, rows, written_columns)
    try:
        log.write(record, replace_pending=pending)
    except AuditUnavailable as exc:
        if statement.writes and error is None:
            tables = ", ".join(dict.fromkeys(w.table for w in statement.writes))
            raise AuditUnavailable(
                f"{exc.message}. The statement's changes to {tables} were committed; its audit record stays 'pending'",
                hint=exc.hint,
            ) from exc.__cause__
        raise
    return True


def audit_gate(change: TableChange) -> None:
    """``before_commit``: the first commit of a statement writes its ``pending`` record (no commit lands unrecorded)."""
    statement = current()
    if statement is None or change.catalog is None:
        return
    with _state_lock:
        if statement.id in _pending:
            return
    log = audit_log_for(change.catalog)
    if not audits(log, statement.principal):
        return
    record = AuditRecord(
        principal=statement.principal.name,
        kind="statement",
        operation=statement.kind,
        statement=redact_statement(statement.text),
        decision=PENDING,
        reason="committing",
        tables_written=(change.table,),
        request_id=_REQUEST_ID.get(),
        event_id=statement.id,
    )
    log.write(record)  # raises AuditUnavailable: the gate refuses the commit
    with _state_lock:
        _pending.add(statement.id)


unregister_gate = register_builtin("before_commit", audit_gate)


# --- decisions that are not statements ------------------------------------------------------------


def record_decision(
    catalog: LakeCatalog,
    *,
    principal: str,
    kind: str,
    operation: str,
    decision: str,
    reason: str | None = None,
    statement: str = "",
    tables: Sequence[str] = (),
    detail: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Record a governance decision that is not a statement (raises ``AuditUnavailable`` if it cannot).

    For features deciding outside SQL: an access request approved or denied by a webhook or the
    HTTP API, a sign-in refused by the identity provider, a user created on first sign-in::

        record_decision(lake.catalog, principal="alice", kind="authentication", operation="oidc",
                        decision="refused", reason="token expired", detail={"issuer": iss})

    ``decision`` is ``allowed``, ``refused`` or ``error``; ``reason`` and ``statement`` are
    redacted; ``tables`` are the objects the decision is about.
    """
    if decision not in (ALLOWED, REFUSED, ERROR):
        raise InvalidArgument(f"decision must be allowed, refused or error, not {decision!r}")
    record = AuditRecord(
        principal=principal,
        kind=kind,
        operation=operation,
        statement=redact_statement(statement or operation),
        decision=decision,
        reason=redact_statement(reason)[:MAX_REASON] if reason else None,
        tables_read=tuple(tables),
        request_id=_REQUEST_ID.get(),
        detail=dict(detail or {}),
    )
    audit_log_for(catalog).write(record)
    return record


# --- who may read it --------------------------------------------------------------------------------


def may_read(state: GovernanceState, identity: Identity) -> bool:
    """SELECT granted on ``system.audit_log`` or ``NAMESPACE system`` (not catalog-wide), or owning it."""
    if identity.name == state.owner:
        return True
    grantees = identity.grantees
    return any(
        (g.grantee_kind, g.grantee) in grantees
        and g.privilege in (SELECT, ALL)
        and not g.column
        and (g.object_kind, g.object_name) in ((TABLE, AUDIT_TABLE), (NAMESPACE, "system"))
        for g in state.grants
    )


def check_reader(lake_owner: str, catalog: LakeCatalog, principal: Principal) -> None:
    """Raise ``AccessDenied`` unless ``principal`` may read the audit log."""
    if principal.is_owner:
        return
    from wharf.governance.store import store_for

    state = store_for(catalog, lake_owner).state()
    if not may_read(state, state.identity(principal)):
        raise AccessDenied(
            f"{principal.name} may not read {AUDIT_TABLE}",
            hint=f"ask the lake owner ({state.owner}) to run GRANT SELECT ON TABLE {AUDIT_TABLE} TO USER {principal.name}",
        )


def _read_system_table(ctx: Context) -> pa.Table:
    owner = ctx.lake.owner if ctx.lake is not None else ""
    check_reader(owner, ctx.catalog, ctx.principal)
    return audit_log_for(ctx.catalog).to_arrow()


register_system_table("audit_log", _read_system_table)


class Audit:
    """``lake.audit``: the audit log as the handle's principal may read it (the owner, or a grantee)."""

    def __init__(self, lake: Lakehouse) -> None:
        self.lake = lake
        self.log = audit_log_for(lake.catalog)

    def _check(self) -> None:
        check_reader(self.lake.owner, self.lake.catalog, self.lake.principal)

    def records(self, **filters: Any) -> list[AuditRecord]:
        """``AuditRecord``s, oldest first; filters ``since``, ``until``, ``principal``, ``limit`` (see ``AuditLog.records``)."""
        self._check()
        return list(self.log.records(**filters))

    def to_arrow(self, **filters: Any) -> pa.Table:
        """The records as ``system.audit_log``'s rows."""
        self._check()
        return self.log.to_arrow(**filters)

    def export(self, out: IO[str], **filters: Any) -> int:
        """Write the records as JSON lines to ``out`` (a text file); returns how many.

        >>> import io  # doctest: +SKIP
        >>> lake.audit.export(io.StringIO(), since="24h")  # doctest: +SKIP
        """
        self._check()
        return self.log.export(out, **filters)

    def record(self, **fields: Any) -> AuditRecord:
        """``record_decision`` on this lake (``principal`` defaults to the handle's)."""
        fields.setdefault("principal", self.lake.principal.name)
        return record_decision(self.lake.catalog, **fields)


__all__ = [
    "ALLOWED",
    "ERROR",
    "PENDING",
    "REFUSED",
    "Audit",
    "AuditLog",
    "AuditRecord",
    "audit_log_for",
    "bind_request",
    "note",
    "record_decision",
    "record_statement",
    "redact_statement",
]
