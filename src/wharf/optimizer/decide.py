"""What the optimizer does to one table, and why: measure the table, then decide from its policy.

``measure`` reads only metadata (the scan plan of the table's current snapshot, the snapshot
list). ``decide`` is a pure function of the policy, the measurements, what the maintenance log
says about earlier runs, and the time, so every trigger is testable without a table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import ancestors_of

from wharf.tables.compaction import RewriteOptions, plan_groups
from wharf.tables.optimizer_policy import Policy
from wharf.tables.scan import ScanPlanner

DAY_S = 86_400.0
MAX_BACKOFF_S = DAY_S
"""The longest a failing table waits before the optimizer tries it again."""

COMPACT = "compact"
EXPIRE = "expire_snapshots"
ORPHANS = "remove_orphan_files"


@dataclass(frozen=True)
class TableStats:
    """A table's files and snapshots, as far as the triggers need them (main's current snapshot)."""

    snapshot_id: int | None = None
    data_files: int = 0
    delete_files: int = 0
    small_files: int = 0  # small data files in partitions that hold at least two: what compaction can combine
    files_past_delete_thresholds: int = 0
    snapshots: int = 0
    expirable_snapshots: int = 0


@dataclass(frozen=True)
class TableState:
    """What the maintenance log says about a table's earlier runs (epoch seconds)."""

    last_run: float | None = None
    last_orphans: float | None = None
    consecutive_failures: int = 0
    retry_after: float | None = None


@dataclass(frozen=True)
class Action:
    """One maintenance action on a table: ``compact``, ``expire_snapshots`` or ``remove_orphan_files``."""

    kind: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """What to do with a table and why; ``skipped`` says why nothing is done (then ``actions`` is empty)."""

    table: str
    actions: tuple[Action, ...] = ()
    skipped: str | None = None
    stats: TableStats | None = None
    policy: Policy = field(default_factory=Policy, compare=False)


def measure(table: Table, policy: Policy, now: float | None = None, planner: ScanPlanner | None = None) -> TableStats:
    """Count what the triggers look at, from metadata only."""
    now = time.time() if now is None else now
    metadata = table.metadata
    ref = metadata.refs.get(MAIN_BRANCH)
    snapshots = len(metadata.snapshots)
    expirable = _expirable(table, policy, now)
    if ref is None:
        return TableStats(snapshots=snapshots, expirable_snapshots=expirable)
    plan = (planner or ScanPlanner()).plan(table, ref.snapshot_id)
    small_by_partition: dict[tuple[object, ...], int] = {}
    for f in plan.files:
        if f.data_file.file_size_in_bytes < policy.small_file_bytes:
            small_by_partition[f.partition] = small_by_partition.get(f.partition, 0) + 1
    # Only files with too many deletes are candidates: a file is never "small" (min size 0) or
    # "too large" here, and groups need more input files than any table has.
    deletes_only = RewriteOptions(
        target_file_size_bytes=policy.target_size,
        min_file_size_bytes=0,
        max_file_size_bytes=2**62,
        min_input_files=2**31 - 1,
        delete_file_threshold=policy.delete_file_threshold,
        delete_ratio_threshold=policy.delete_ratio_threshold,
    )
    burdened = sum(len(g.files) for g in plan_groups(table, plan, deletes_only)) if plan.delete_files else 0
    return TableStats(
        snapshot_id=ref.snapshot_id,
        data_files=len(plan.files),
        delete_files=len(plan.delete_files),
        small_files=sum(n for n in small_by_partition.values() if n >= 2),
        files_past_delete_thresholds=burdened,
        snapshots=snapshots,
        expirable_snapshots=expirable,
    )


def _expirable(table: Table, policy: Policy, now: float) -> int:
    """Snapshots older than the retention cut-off that no ref head and no ``retain-last`` keeps (an estimate:
    expiry itself applies each branch's own retention and the tags)."""
    metadata = table.metadata
    cutoff_ms = (now - policy.retention_days * DAY_S) * 1000
    kept = {ref.snapshot_id for ref in metadata.refs.values()}
    main = metadata.refs.get(MAIN_BRANCH)
    if main is not None:
        head = metadata.snapshot_by_id(main.snapshot_id)
        if head is not None:
            for i, snapshot in enumerate(ancestors_of(head, metadata)):
                if i >= policy.retain_last:
                    break
                kept.add(snapshot.snapshot_id)
    return sum(1 for s in metadata.snapshots if s.timestamp_ms < cutoff_ms and s.snapshot_id not in kept)


def compaction_options(policy: Policy) -> dict[str, str]:
    """The ``rewrite_data_files`` options a triggered compaction runs with.

    Every partition with two or more small files is combined, data files past the delete
    thresholds are rewritten without their deleted rows, and conflicting groups are skipped
    (partial progress) instead of failing the others.
    """
    return {
        "target-file-size-bytes": str(policy.target_size),
        "min-file-size-bytes": str(policy.small_file_bytes),
        "min-input-files": "2",
        "delete-file-threshold": str(policy.delete_file_threshold),
        "delete-ratio-threshold": str(policy.delete_ratio_threshold),
        "partial-progress.enabled": "true",
        "remove-dangling-deletes": "true",
    }


def backoff_s(policy: Policy, failures: int) -> float:
    """How long a table waits after ``failures`` consecutive failed runs: the minimum interval (at
    least a minute) doubled per failure, at most a day."""
    if failures <= 0:
        return 0.0
    base = max(policy.min_interval_s, 60.0)
    return float(min(base * 2 ** min(failures - 1, 30), MAX_BACKOFF_S))


def gate(policy: Policy, state: TableState, now: float) -> str | None:
    """Why the table is not looked at now (None: measure it and decide)."""
    if not policy.enabled:
        return "optimizer not enabled (wharf.optimizer.enabled)"
    if state.retry_after is not None and now < state.retry_after:
        return f"backing off after {state.consecutive_failures} failed run(s) until {_clock(state.retry_after)}"
    if state.last_run is not None and now - state.last_run < policy.min_interval_s:
        return f"ran {_ago(now - state.last_run)} ago (min interval {_ago(policy.min_interval_s)})"
    return None


def decide(name: str, policy: Policy, state: TableState, now: float, stats: Callable[[], TableStats]) -> Decision:
    """The actions the policy calls for on table ``name``; ``stats`` is only measured when the gate is open."""
    why_not = gate(policy, state, now)
    if why_not is not None:
        return Decision(name, skipped=why_not, policy=policy)
    measured = stats()
    actions: list[Action] = []
    if policy.compaction:
        reasons = []
        if measured.small_files > policy.min_input_files:
            reasons.append(
                f"{measured.small_files} small data files (< {format_bytes(policy.small_file_bytes)}), "
                f"more than {policy.min_input_files}"
            )
        if measured.files_past_delete_thresholds:
            reasons.append(
                f"{measured.files_past_delete_thresholds} data file(s) with >= {policy.delete_file_threshold} delete files "
                f"or >= {policy.delete_ratio_threshold:.0%} of rows deleted"
            )
        if reasons:
            actions.append(Action(COMPACT, "; ".join(reasons)))
    if policy.expiry and measured.expirable_snapshots:
        actions.append(
            Action(
                EXPIRE,
                f"{measured.expirable_snapshots} snapshot(s) older than {policy.retention_days:g} day(s) "
                f"(keeping the last {policy.retain_last})",
            )
        )
    if policy.orphans:
        interval = policy.orphan_interval_hours * 3600
        if state.last_orphans is None:
            actions.append(Action(ORPHANS, "never looked for orphan files"))
        elif now - state.last_orphans >= interval:
            actions.append(Action(ORPHANS, f"last looked for orphan files {_ago(now - state.last_orphans)} ago"))
    if not actions:
        return Decision(name, skipped="nothing to do", stats=measured, policy=policy)
    return Decision(name, tuple(actions), stats=measured, policy=policy)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 2 * DAY_S:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / DAY_S:.1f}d"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_bytes(size: float) -> str:
    """``1.5 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


__all__ = ["Action", "Decision", "TableState", "TableStats", "backoff_s", "compaction_options", "decide", "gate", "measure"]
