"""``system.quality_results``: every data quality run, as an Iceberg table every engine can query.

One row per rule per run (``rule`` set): which ruleset, on which table, ref and snapshot, the
outcome, why it failed and the metrics the rule evaluated. Write-audit-publish and dead-letter
writes add one summary row per batch (``rule`` NULL, ``step`` ``publish``/``dlq``) with main's head
before and after and the rows published and quarantined. Rows of one run share ``run_id``; runs
of one write share ``batch_id``.

The table is also the metric history of dynamic rules (``avg(last(10))``, ``DetectAnomalies``):
``StoredHistory`` reads the metrics of earlier runs of the same ruleset on the same table.
Like ``system.maintenance_log`` it carries an optimizer policy, so its many small commits are
compacted and its snapshots expired.
"""

from __future__ import annotations

import contextvars
import hashlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from wharf.errors import AlreadyExists
from wharf.tables.scan import quote_str

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse

RESULTS_NAMESPACE = "system"
RESULTS_TABLE = "quality_results"
RESULTS_NAME = f"{RESULTS_NAMESPACE}.{RESULTS_TABLE}"

# What produced a run (``kind``) and which step of a write it was (``step``).
EVALUATE, GATE, WAP, DLQ = "evaluate", "gate", "wap", "dlq"
CHECK, STAGE, AUDIT, ROWS, PUBLISH = "check", "stage", "audit", "rows", "publish"

_TIME = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("batch_id", pa.string()),
        ("kind", pa.string()),
        ("step", pa.string()),
        ("ruleset", pa.string()),
        ("ruleset_hash", pa.string()),
        ("table_name", pa.string()),
        ("ref", pa.string()),
        ("snapshot_id", pa.int64()),
        ("rule", pa.string()),
        ("outcome", pa.string()),
        ("failure_reason", pa.string()),
        ("metrics", pa.map_(pa.string(), pa.float64())),
        ("evaluated_at", _TIME),
        ("principal", pa.string()),
        ("main_before", pa.int64()),
        ("main_after", pa.int64()),
        ("published_rows", pa.int64()),
        ("quarantined_rows", pa.int64()),
        ("message", pa.string()),
    ]
)

RESULTS_PROPERTIES = {
    "wharf.optimizer.enabled": "true",
    "wharf.optimizer.compaction.min-input-files": "20",
}


def new_id() -> str:
    """A run or batch id: 32 hex digits (a UUID4 without dashes)."""
    return uuid.uuid4().hex


def ruleset_hash(canonical: str) -> str:
    """A short fingerprint of a ruleset's canonical DQDL: runs of the same rules share it."""
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class ResultRow:
    """One row of ``system.quality_results`` (``evaluated_at`` in epoch seconds)."""

    run_id: str
    kind: str
    step: str
    ruleset: str
    ruleset_hash: str
    table_name: str | None
    ref: str | None
    snapshot_id: int | None
    evaluated_at: float
    principal: str
    batch_id: str | None = None
    rule: str | None = None
    outcome: str | None = None
    failure_reason: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    main_before: int | None = None
    main_after: int | None = None
    published_rows: int | None = None
    quarantined_rows: int | None = None
    message: str | None = None


def to_arrow(rows: Sequence[ResultRow]) -> pa.Table:
    records = []
    for row in rows:
        record = asdict(row)
        record["evaluated_at"] = datetime.fromtimestamp(row.evaluated_at, UTC)
        record["metrics"] = [(k, float(v)) for k, v in row.metrics.items() if _finite(v)]
        records.append(record)
    return pa.Table.from_pylist(records, schema=SCHEMA)


def _finite(value: object) -> bool:
    try:
        number = float(value)  # type: ignore[arg-type]  # metrics are numbers; anything else is skipped
    except (TypeError, ValueError):
        return False
    return number == number and number not in (float("inf"), float("-inf"))


# Writes the quality machinery makes itself (results, quarantine) are not gated again: set while
# they run, read by the commit gate (``wharf.quality.gate``).
_INTERNAL: contextvars.ContextVar[bool] = contextvars.ContextVar("wharf_quality_internal", default=False)


@contextmanager
def internal_writes() -> Iterator[None]:
    """Mark the block's commits as the quality machinery's own (the gate lets them through)."""
    token = _INTERNAL.set(True)
    try:
        yield
    finally:
        _INTERNAL.reset(token)


def is_internal() -> bool:
    return _INTERNAL.get()


class ResultsLog:
    """Reads and appends ``system.quality_results`` through a lake handle."""

    def __init__(self, lake: Lakehouse) -> None:
        self.lake = lake

    def exists(self) -> bool:
        return self.lake.loader.exists(RESULTS_NAMESPACE, RESULTS_TABLE)

    def ensure(self) -> None:
        """Create the namespace and the table on first use (several processes may race: fine)."""
        if self.exists():
            return
        with internal_writes():
            if not self.lake.catalog.namespace_exists(RESULTS_NAMESPACE):
                self.lake.sql(f"CREATE SCHEMA IF NOT EXISTS {RESULTS_NAMESPACE}")
            try:
                self.lake.create_table(RESULTS_NAME, SCHEMA, properties=RESULTS_PROPERTIES, exist_ok=True)
            except AlreadyExists:
                pass

    def append(self, rows: Sequence[ResultRow]) -> None:
        """Append the rows of one or more runs in one commit."""
        if not rows:
            return
        from wharf.quality.batch_writes import append

        self.ensure()
        with internal_writes():
            append(self.lake, RESULTS_NAME, to_arrow(rows), branch="main", batch_id=None, ruleset=None, what="quality results")

    def query(self, where: str = "true", order: str = "evaluated_at DESC") -> pa.Table:
        """Rows matching the SQL condition ``where`` (empty when nothing was ever recorded)."""
        if not self.exists():
            return SCHEMA.empty_table()
        return self.lake.sql(f"SELECT * FROM {RESULTS_NAME} WHERE {where} ORDER BY {order}").to_arrow()

    def passed(self, table_name: str, snapshot_id: int, ruleset: str, digest: str) -> bool:
        """Whether a run of ``ruleset`` (with these exact rules) passed every rule on that snapshot."""
        if not self.exists():
            return False
        found = self.lake.sql(
            f"""
            SELECT count(*) FROM (
              SELECT run_id FROM {RESULTS_NAME}
              WHERE table_name = {quote_str(table_name)} AND snapshot_id = {int(snapshot_id)}
                AND ruleset = {quote_str(ruleset)} AND ruleset_hash = {quote_str(digest)} AND rule IS NOT NULL
              GROUP BY run_id
              HAVING bool_and(outcome = 'Passed')
            )
            """
        ).scalar()
        return bool(found)


class StoredHistory:
    """``MetricHistory`` over ``system.quality_results``: earlier runs of one ruleset on one table.

    ``values(metric)`` returns the metric's value in each earlier run, newest first. The rows are
    read once, on first use.
    """

    def __init__(self, log: ResultsLog, table_name: str | None, ruleset: str) -> None:
        self._log = log
        self._table = table_name
        self._ruleset = ruleset
        self._runs: list[dict[str, float]] | None = None

    def _load(self) -> list[dict[str, float]]:
        if self._runs is not None:
            return self._runs
        self._runs = []
        if self._table is None or not self._log.exists():
            return self._runs
        rows = self._log.lake.sql(
            f"""
            SELECT run_id, max(evaluated_at) AS at, list(metrics) AS metrics
            FROM {RESULTS_NAME}
            WHERE table_name = {quote_str(self._table)} AND ruleset = {quote_str(self._ruleset)}
            GROUP BY run_id
            ORDER BY at DESC
            """
        ).fetchall()
        for _run_id, _at, maps in rows:
            merged: dict[str, float] = {}
            for entries in maps:
                merged.update(_as_dict(entries))
            self._runs.append(merged)
        return self._runs

    def values(self, metric: str) -> list[float]:
        return [run[metric] for run in self._load() if metric in run]


def _as_dict(entries: Any) -> dict[str, float]:
    """A DuckDB MAP as Python: a dict, or a list of (key, value) pairs, depending on the client."""
    if entries is None:
        return {}
    if isinstance(entries, dict):
        if set(entries) == {"key", "value"} and isinstance(entries["key"], list):
            return {k: float(v) for k, v in zip(entries["key"], entries["value"], strict=True) if v is not None}
        return {str(k): float(v) for k, v in entries.items() if v is not None}
    return {str(k): float(v) for k, v in entries if v is not None}


__all__ = [
    "AUDIT",
    "CHECK",
    "DLQ",
    "EVALUATE",
    "GATE",
    "PUBLISH",
    "RESULTS_NAME",
    "ROWS",
    "STAGE",
    "WAP",
    "ResultRow",
    "ResultsLog",
    "StoredHistory",
    "internal_writes",
    "is_internal",
    "new_id",
    "ruleset_hash",
]
