"""The maintenance log: ``system.maintenance_log``, an Iceberg table of every maintenance action.

The optimizer (and ``wharf optimize``) append one row per action they took on a table: what,
why, the outcome (``ok``, ``skipped`` — a conflict with a writer, an unsupported table — or
``failed``), the counts, and the table's failure streak with the time before which it is not
tried again. Being an ordinary Iceberg table in the reserved namespace ``system``, it is
queryable by every engine (``SELECT * FROM system.maintenance_log``), and a new optimizer
process reads the back-off state of every table from it.

Nothing is logged for a table the optimizer only looked at: the log holds work, not polling.
The log table carries an optimizer policy itself, so the optimizer compacts and expires it too.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from wharf.errors import AlreadyExists
from wharf.optimizer.decide import ORPHANS, TableState

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse

LOG_NAMESPACE = "system"
LOG_TABLE = "maintenance_log"
LOG_NAME = f"{LOG_NAMESPACE}.{LOG_TABLE}"

OK, SKIPPED, FAILED = "ok", "skipped", "failed"

_TIME = pa.timestamp("us", tz="UTC")
# (column, SQL type, Arrow type): the log's schema.
_COLUMNS: tuple[tuple[str, str, pa.DataType], ...] = (
    ("run_id", "VARCHAR", pa.string()),
    ("table_name", "VARCHAR", pa.string()),
    ("action", "VARCHAR", pa.string()),
    ("outcome", "VARCHAR", pa.string()),
    ("reason", "VARCHAR", pa.string()),
    ("message", "VARCHAR", pa.string()),
    ("started_at", "TIMESTAMPTZ", _TIME),
    ("finished_at", "TIMESTAMPTZ", _TIME),
    ("duration_ms", "BIGINT", pa.int64()),
    ("data_files_before", "BIGINT", pa.int64()),
    ("data_files_after", "BIGINT", pa.int64()),
    ("delete_files_before", "BIGINT", pa.int64()),
    ("delete_files_after", "BIGINT", pa.int64()),
    ("rewritten_files", "BIGINT", pa.int64()),
    ("added_files", "BIGINT", pa.int64()),
    ("rewritten_bytes", "BIGINT", pa.int64()),
    ("removed_delete_files", "BIGINT", pa.int64()),
    ("expired_snapshots", "BIGINT", pa.int64()),
    ("deleted_files", "BIGINT", pa.int64()),
    ("consecutive_failures", "INTEGER", pa.int32()),
    ("retry_after", "TIMESTAMPTZ", _TIME),
    ("runner", "VARCHAR", pa.string()),
    ("principal", "VARCHAR", pa.string()),
)
_SCHEMA = pa.schema([(name, kind) for name, _sql, kind in _COLUMNS])

# The log is maintained like any table: compacted once it has a few small files, its snapshots
# (one per logged table run) kept a day.
LOG_PROPERTIES = {
    "wharf.optimizer.enabled": "true",
    "wharf.optimizer.compaction.min-input-files": "20",
    "wharf.optimizer.expiry.retention-days": "1",
}


def runner_id() -> str:
    """``host:pid`` of this process, recorded with each row."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class LogEntry:
    """One row of the maintenance log (times in epoch seconds)."""

    run_id: str
    table_name: str
    action: str
    outcome: str
    reason: str
    started_at: float
    finished_at: float
    message: str | None = None
    data_files_before: int | None = None
    data_files_after: int | None = None
    delete_files_before: int | None = None
    delete_files_after: int | None = None
    rewritten_files: int | None = None
    added_files: int | None = None
    rewritten_bytes: int | None = None
    removed_delete_files: int | None = None
    expired_snapshots: int | None = None
    deleted_files: int | None = None
    consecutive_failures: int = 0
    retry_after: float | None = None
    runner: str = ""
    principal: str = ""

    @property
    def duration_ms(self) -> int:
        return int(round((self.finished_at - self.started_at) * 1000))


_ENTRY_FIELDS = {f.name for f in fields(LogEntry)}
assert _ENTRY_FIELDS | {"duration_ms"} == {name for name, _sql, _kind in _COLUMNS}


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def to_arrow(entries: Sequence[LogEntry]) -> pa.Table:
    rows = []
    for entry in entries:
        row = asdict(entry)
        row["duration_ms"] = entry.duration_ms
        for key in ("started_at", "finished_at", "retry_after"):
            row[key] = _utc(row[key])
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=_SCHEMA)


class MaintenanceLog:
    """Reads and appends ``system.maintenance_log`` through a lake handle (as its principal)."""

    def __init__(self, lake: Lakehouse) -> None:
        self.lake = lake

    def exists(self) -> bool:
        return self.lake.loader.exists(LOG_NAMESPACE, LOG_TABLE)

    def ensure(self) -> None:
        """Create the namespace and the table on first use (several processes may race: fine)."""
        if self.exists():
            return
        if not self.lake.catalog.namespace_exists(LOG_NAMESPACE):
            self.lake.sql(f"CREATE SCHEMA IF NOT EXISTS {LOG_NAMESPACE}")
        columns = ", ".join(f"{name} {sql}" for name, sql, _kind in _COLUMNS)
        props = ", ".join(f"'{k}'='{v}'" for k, v in LOG_PROPERTIES.items())
        try:
            self.lake.sql(f"CREATE TABLE IF NOT EXISTS {LOG_NAME} ({columns}) TBLPROPERTIES ({props})")
        except AlreadyExists:
            pass

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Append the rows of one table run in one commit."""
        if not entries:
            return
        self.ensure()
        self.lake.table(LOG_NAME).append(to_arrow(entries))

    def states(self) -> dict[str, TableState]:
        """Per table: when it last ran, last looked for orphans, and its failure streak (from its newest
        ``ok`` or ``failed`` row; a ``skipped`` run leaves the streak as it was)."""
        if not self.exists():
            return {}
        rows = self.lake.sql(
            f"""
            SELECT table_name,
                   epoch(max(finished_at)),
                   epoch(max(finished_at) FILTER (WHERE action = '{ORPHANS}' AND outcome <> '{FAILED}')),
                   arg_max(consecutive_failures, finished_at) FILTER (WHERE outcome IN ('{OK}', '{FAILED}')),
                   epoch(arg_max(retry_after, finished_at) FILTER (WHERE outcome IN ('{OK}', '{FAILED}')))
            FROM {LOG_NAME}
            GROUP BY table_name
            """
        ).fetchall()
        return {
            str(name): TableState(
                last_run=_float(last_run),
                last_orphans=_float(last_orphans),
                consecutive_failures=int(failures or 0),
                retry_after=_float(retry_after),
            )
            for name, last_run, last_orphans, failures, retry_after in rows
        }


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]  # DuckDB gives numbers here


__all__ = ["FAILED", "LOG_NAME", "LOG_NAMESPACE", "LOG_TABLE", "OK", "SKIPPED", "LogEntry", "MaintenanceLog", "runner_id"]
