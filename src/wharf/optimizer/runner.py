"""The optimizer: one pass over every table (for cron), or a loop of passes (a service).

A pass lists the lake's tables, works out each table's policy (namespace properties, then table
properties), skips tables not enabled, backing off or run too recently, measures the rest from
metadata, and runs the actions their triggers call for: compaction, snapshot expiry, orphan-file
cleanup, in that order. Each table's actions are logged to ``system.maintenance_log`` in one
commit.

The optimizer never blocks writers: compaction commits with partial progress and yields every
file group a concurrent commit changed; a ``ConflictError`` (from any action) is logged as
``skipped`` and the table is simply looked at again on a later pass. Any other failure is logged
as ``failed`` and the table backs off exponentially (the minimum interval, at least a minute,
doubled per consecutive failure, at most a day). The streak lives in the log, so a new process
respects it.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wharf.errors import AccessDenied, ConflictError, InvalidArgument, NotFound, UnsupportedStatement, WharfError
from wharf.optimizer.decide import (
    COMPACT,
    EXPIRE,
    ORPHANS,
    Action,
    Decision,
    TableState,
    TableStats,
    backoff_s,
    compaction_options,
    decide,
    measure,
)
from wharf.optimizer.log import FAILED, LOG_NAME, OK, SKIPPED, LogEntry, MaintenanceLog, runner_id
from wharf.statement import new_statement_id
from wharf.tables.compaction import Progress, RewriteDataFilesResult
from wharf.tables.loader import split_name
from wharf.tables.optimizer_policy import Policy
from wharf.tables.scan import quote_str

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse

log = logging.getLogger("wharf.optimizer")

INVALID_POLICY = "invalid wharf.optimizer.* properties"

Clock = Callable[[], float]


def optimize_table(
    lake: Lakehouse,
    name: str,
    *,
    strategy: str | None = None,
    sort_order: str | None = None,
    where: str | None = None,
    options: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> RewriteDataFilesResult:
    """Compact table ``name`` now, as a statement of ``lake``'s principal: ``Table.rewrite_data_files``
    (what ``CALL system.rewrite_data_files`` does, plus a ``progress(bytes_done, bytes_total)`` callback)."""
    return lake.table(name).rewrite_data_files(
        strategy=strategy, sort_order=sort_order, where=where, options=options, progress=progress
    )


def expire_snapshots(lake: Lakehouse, name: str, *, older_than: float, retain_last: int) -> tuple[int, int]:
    """``CALL system.expire_snapshots``; returns (snapshots expired, files deleted)."""
    result = lake.sql(
        f"CALL system.expire_snapshots(table => {quote_str(name)}, "
        f"older_than => TIMESTAMP {quote_str(_timestamp(older_than))}, retain_last => {int(retain_last)})"
    )
    row = result.to_arrow().to_pylist()[0]
    deleted = sum(int(v or 0) for k, v in row.items() if k.startswith("deleted_"))
    return int(row.get("expired_snapshots_count") or 0), deleted


def remove_orphan_files(lake: Lakehouse, name: str, *, older_than: float) -> int:
    """``CALL system.remove_orphan_files``; returns how many files were deleted."""
    cutoff = quote_str(_timestamp(older_than))
    result = lake.sql(f"CALL system.remove_orphan_files(table => {quote_str(name)}, older_than => TIMESTAMP {cutoff})")
    return len(result.fetchall())


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True)
class Compaction:
    """How to compact: ``rewrite_data_files``'s strategy, sort order, options and file filter."""

    strategy: str | None = None
    sort_order: str | None = None
    options: dict[str, str] | None = None
    where: str | None = None


@dataclass
class PassReport:
    """What one pass decided for each table and what it logged."""

    run_id: str
    started: float
    finished: float = 0.0
    decisions: list[Decision] = field(default_factory=list)
    entries: list[LogEntry] = field(default_factory=list)

    @property
    def failed(self) -> list[LogEntry]:
        return [e for e in self.entries if e.outcome == FAILED]

    @property
    def acted(self) -> list[Decision]:
        return [d for d in self.decisions if d.actions]


class Optimizer:
    """Decides and runs maintenance over a lake's tables, logging to ``system.maintenance_log``.

    ``tables`` limits passes to those names; ``clock`` (epoch seconds) is injectable for tests.

    >>> Optimizer(lake).run_once()  # doctest: +SKIP
    """

    def __init__(self, lake: Lakehouse, *, tables: Sequence[str] | None = None, clock: Clock = time.time) -> None:
        # A handle of its own: the caller's session settings (a session branch…) must not steer maintenance.
        self.lake = lake.session(principal=lake.principal)
        self.tables = list(tables) if tables is not None else None
        self.clock = clock
        self.log = MaintenanceLog(self.lake)
        self.stop_event = threading.Event()

    # --- deciding ---------------------------------------------------------------------------------

    def table_names(self) -> list[str]:
        if self.tables is not None:
            return [".".join(split_name(t)) for t in self.tables]
        return self.lake.tables()

    def policy(self, name: str) -> Policy:
        """The effective policy of table ``name`` (its namespaces' properties, then its own)."""
        ns, tbl = split_name(name)
        table = self.lake.iceberg_table(ns, tbl)
        parts = ns.split(".")
        namespaces = []
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            try:
                namespaces.append((prefix, self.lake.catalog.load_namespace_properties(prefix)))
            except Exception:  # noqa: BLE001 - an intermediate level of a dotted name need not exist
                continue
        return Policy.from_properties(table.properties, namespaces)

    def plan(self) -> list[Decision]:
        """What a pass would do now, without doing it (``wharf optimizer run --dry-run``)."""
        states = self.log.states()
        now = self.clock()
        return [self._decide(name, states.get(name, TableState()), now) for name in self.table_names()]

    def _decide(self, name: str, state: TableState, now: float) -> Decision:
        try:
            policy = self.policy(name)
        except InvalidArgument as exc:
            return Decision(name, skipped=f"{INVALID_POLICY}: {exc.message}")
        except (NotFound, AccessDenied) as exc:  # dropped since listed, or not this principal's to see
            return Decision(name, skipped=f"cannot read it: {exc.message}")

        def stats() -> TableStats:
            ns, tbl = split_name(name)
            # Plans are cached by metadata location in the lake's planner: an unchanged table costs nothing.
            return measure(self.lake.iceberg_table(ns, tbl, role="maintain"), policy, now, self.lake.planner)

        return decide(name, policy, state, now, stats)

    # --- acting -----------------------------------------------------------------------------------

    def run_once(self) -> PassReport:
        """One pass over the tables: decide, act, log. Failures of one table never stop the pass."""
        report = PassReport(run_id=new_statement_id(), started=self.clock())
        states = self.log.states()
        for name in self.table_names():
            if self.stop_event.is_set():
                break
            state = states.get(name, TableState())
            now = self.clock()
            try:
                decision = self._decide(name, state, now)
            except Exception as exc:  # noqa: BLE001 - measuring one table must not end the pass
                decision = Decision(name, skipped=f"cannot measure it: {exc}")
                report.decisions.append(decision)
                report.entries += self._log(
                    report.run_id, name, state, [_failure(report.run_id, name, "measure", now, self.clock(), exc)], Policy()
                )
                continue
            report.decisions.append(decision)
            if decision.actions:
                report.entries += self.maintain(
                    name, decision.actions, decision.policy, stats=decision.stats, state=state, run_id=report.run_id
                )
            elif (decision.skipped or "").startswith(INVALID_POLICY) and not _backing_off(state, now):
                # Wharf checks the properties when SQL sets them; another engine may not have.
                entry = LogEntry(report.run_id, name, "policy", FAILED, INVALID_POLICY, now, now, message=decision.skipped)
                report.entries += self._log(report.run_id, name, state, [entry], Policy())
        report.finished = self.clock()
        return report

    def maintain(
        self,
        name: str,
        actions: Sequence[Action],
        policy: Policy,
        *,
        compaction: Compaction | None = None,
        progress: Progress | None = None,
        stats: TableStats | None = None,
        state: TableState | None = None,
        run_id: str | None = None,
    ) -> list[LogEntry]:
        """Run ``actions`` on table ``name`` now and log them (one commit); returns the log rows.

        Compaction runs as ``compaction`` says (default: the policy's strategy and triggered
        options). Errors do not propagate: they are the rows' outcomes.
        """
        if state is None:
            state = self.log.states().get(name, TableState())
        if compaction is None:
            compaction = Compaction(policy.strategy, policy.sort_order, compaction_options(policy))
        run_id = run_id or new_statement_id()
        entries = [self._act(run_id, name, a, policy, compaction, stats, progress) for a in actions]
        return self._log(run_id, name, state, entries, policy)

    def _act(
        self,
        run_id: str,
        name: str,
        action: Action,
        policy: Policy,
        compaction: Compaction,
        stats: TableStats | None,
        progress: Progress | None,
    ) -> LogEntry:
        started = self.clock()
        entry = LogEntry(run_id, name, action.kind, OK, action.reason, started, started)
        try:
            if action.kind == COMPACT:
                if stats is not None:
                    entry.data_files_before, entry.delete_files_before = stats.data_files, stats.delete_files
                result = optimize_table(
                    self.lake,
                    name,
                    strategy=compaction.strategy,
                    sort_order=compaction.sort_order,
                    where=compaction.where,
                    options=compaction.options,
                    progress=progress,
                )
                fill_compaction(entry, result)
            elif action.kind == EXPIRE:
                older_than = started - policy.retention_days * 86_400
                entry.expired_snapshots, entry.deleted_files = expire_snapshots(
                    self.lake, name, older_than=older_than, retain_last=policy.retain_last
                )
            elif action.kind == ORPHANS:
                entry.deleted_files = remove_orphan_files(
                    self.lake, name, older_than=started - policy.orphan_retention_days * 86_400
                )
            else:  # pragma: no cover - decide() only makes the kinds above
                raise ValueError(f"unknown action {action.kind}")
        except ConflictError as exc:
            entry.outcome, entry.message = SKIPPED, f"conflict: {exc.message}"
        except UnsupportedStatement as exc:
            entry.outcome, entry.message = SKIPPED, f"unsupported: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - logged, and the table backs off
            log.warning("optimizer: %s on %s failed: %s", action.kind, name, exc)
            entry.outcome, entry.message = FAILED, _describe(exc)
        entry.finished_at = self.clock()
        log.info(
            "optimizer: %s %s: %s (%s)%s",
            name,
            action.kind,
            entry.outcome,
            action.reason,
            f" — {entry.message}" if entry.message else "",
        )
        return entry

    def _log(self, run_id: str, name: str, state: TableState, entries: list[LogEntry], policy: Policy) -> list[LogEntry]:
        """Stamp the run's failure streak on its rows and append them (one commit)."""
        outcomes = {e.outcome for e in entries}
        if FAILED in outcomes:
            failures = state.consecutive_failures + 1
            retry_after: float | None = self.clock() + backoff_s(policy, failures)
        elif OK in outcomes:
            failures, retry_after = 0, None
        else:  # only skipped: the streak stands
            failures, retry_after = state.consecutive_failures, state.retry_after
        stamped = [
            replace(
                e, consecutive_failures=failures, retry_after=retry_after, runner=runner_id(), principal=self.lake.principal.name
            )
            for e in entries
        ]
        try:
            self.log.append(stamped)
        except Exception as exc:  # noqa: BLE001 - the work is done; losing its log row must not undo the pass
            log.warning("optimizer: cannot write %s for %s: %s", LOG_NAME, name, exc)
        return stamped

    # --- serving ----------------------------------------------------------------------------------

    def serve(
        self,
        interval_s: float = 60.0,
        *,
        max_passes: int | None = None,
        on_pass: Callable[[PassReport], None] | None = None,
        handle_signals: bool = True,
    ) -> int:
        """Run passes every ``interval_s`` seconds until ``stop()`` (or SIGINT/SIGTERM in the main thread).

        A stop request lets the table being maintained finish; returns the number of passes run.
        """
        passes = 0
        with self._signals(handle_signals):
            while not self.stop_event.is_set():
                try:
                    report = self.run_once()
                except Exception as exc:  # noqa: BLE001 - the catalog may be briefly unavailable; try again later
                    log.warning("optimizer: pass failed: %s", exc)
                else:
                    if on_pass is not None:
                        on_pass(report)
                passes += 1
                if max_passes is not None and passes >= max_passes:
                    break
                self.stop_event.wait(interval_s)
        return passes

    def stop(self) -> None:
        """Ask ``serve`` to stop after the current table."""
        self.stop_event.set()

    @contextmanager
    def _signals(self, enabled: bool) -> Iterator[None]:
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous: dict[int, Any] = {}

        def on_signal(signum: int, _frame: object) -> None:
            log.info("optimizer: stopping after the current table (signal %s); again to interrupt", signum)
            self.stop()
            for number, handler in previous.items():  # a second signal interrupts at once
                signal.signal(number, handler)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def fill_compaction(entry: LogEntry, result: RewriteDataFilesResult) -> None:
    """Put a compaction's counts on its log row; a compaction that only met conflicts is ``skipped``."""
    entry.rewritten_files = result.rewritten_data_files_count
    entry.added_files = result.added_data_files_count
    entry.rewritten_bytes = result.rewritten_bytes_count
    entry.removed_delete_files = result.removed_delete_files_count
    if entry.data_files_before is not None:
        entry.data_files_after = entry.data_files_before - entry.rewritten_files + entry.added_files
    if entry.delete_files_before is not None:
        entry.delete_files_after = max(0, entry.delete_files_before - entry.removed_delete_files)
    if result.failed_data_files_count:
        note = f"{result.failed_data_files_count} file(s) changed by concurrent commits were left for a later run"
        if not result.rewritten_data_files_count:
            entry.outcome, entry.message = SKIPPED, f"conflict: {note}"
        else:
            entry.message = note


def _failure(run_id: str, name: str, action: str, started: float, finished: float, exc: BaseException) -> LogEntry:
    return LogEntry(run_id, name, action, FAILED, "", started, finished, message=_describe(exc))


def _describe(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, WharfError) else str(exc)
    return f"{type(exc).__name__}: {message}"


def _backing_off(state: TableState, now: float) -> bool:
    return state.retry_after is not None and now < state.retry_after


__all__ = ["Compaction", "Optimizer", "PassReport", "expire_snapshots", "optimize_table", "remove_orphan_files"]
