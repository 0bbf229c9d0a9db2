"""Write-Audit-Publish: new data reaches main only through a staging branch and a quality gate.

``write_audit_publish(quality, table, data, ruleset, on_failure=…)``:

1. **write** the incoming rows (read once) to a staging branch, positioned at main's head first
   (created if missing) — one snapshot ``S`` carrying the batch id;
2. **audit** ``S`` (the whole table as it would be) with the ruleset, recorded in
   ``system.quality_results`` (step ``stage``);
3. **publish**: every rule passes → fast-forward main to ``S``. Otherwise, with
   ``on_failure="reject"`` main stays where it was and the report says why; with
   ``"quarantine"`` the rows are evaluated row by row: those passing every row-level rule are
   written to an audit branch (at main's head), the dataset-level rules are checked again there
   (step ``audit``), and only if they all pass is main fast-forwarded to it and the failing
   rows, with their outcome columns and the batch id, appended to ``<table>__quarantine``.

Main moves only to an audited snapshot, and only from the head the audit started from: if
another writer moved main meanwhile, publishing fails with ``ConflictError`` and the whole flow
is retried on the new head (``max_attempts``). One summary row (step ``publish``) records the
outcome, main's head before and after, and the rows published and quarantined.

Branches: by default each batch stages on ``wap_<batch>`` (and audits on ``wap_<batch>_audit``);
a branch that ends up in main's history is dropped, one that holds unpublished data is kept for
inspection (``SELECT * FROM db.t.branch_wap_<batch>``). A named ``staging_branch`` is kept and
reset to main's head at the start of each batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from wharf.errors import ConflictError, InvalidArgument
from wharf.quality import batch_writes, quarantine
from wharf.quality.results_log import AUDIT, PUBLISH, ROWS, STAGE, WAP, ResultRow, new_id

if TYPE_CHECKING:
    from wharf.quality.lake_quality import Quality, QualityRun, RulesetSpec

log = logging.getLogger(__name__)

REJECT, QUARANTINE = "reject", "quarantine"
ON_FAILURE = (REJECT, QUARANTINE)
# Outcomes of a batch.
PUBLISHED, REJECTED, QUARANTINED, NOTHING = "published", "rejected", "quarantined", "nothing to write"


@dataclass
class WapResult:
    """What one write-audit-publish did. ``outcome``: published, quarantined (valid rows published,
    the others quarantined), rejected (main untouched) or ``nothing to write``."""

    table: str
    batch_id: str
    on_failure: str
    outcome: str
    staging_branch: str
    audit_branch: str | None = None
    main_before: int | None = None
    main_after: int | None = None
    staged_snapshot_id: int | None = None
    audit_snapshot_id: int | None = None
    published_rows: int = 0
    quarantined_rows: int = 0
    quarantine_table: str | None = None
    report: QualityRun | None = None
    audit_report: QualityRun | None = None
    attempts: int = 1
    message: str = ""
    branches_kept: list[str] = field(default_factory=list)
    # Result rows of this batch's runs not yet in system.quality_results (recorded together).
    pending: list[ResultRow] = field(default_factory=list, repr=False)

    @property
    def published(self) -> bool:
        """Whether main moved (all rows, or the valid ones)."""
        return self.outcome in (PUBLISHED, QUARANTINED)

    def __repr__(self) -> str:
        lines = [
            f"WapResult {self.outcome.upper()} on {self.table} (batch {self.batch_id}): {self.message}",
            f"  main: {self.main_before} -> {self.main_after}; staged {self.staged_snapshot_id} on '{self.staging_branch}'"
            + (f", audited {self.audit_snapshot_id} on '{self.audit_branch}'" if self.audit_branch else ""),
            f"  rows published: {self.published_rows}, quarantined: {self.quarantined_rows}"
            + (f" (in {self.quarantine_table})" if self.quarantine_table else ""),
        ]
        if self.report is not None:
            lines += ["  " + line for line in repr(self.report.result).splitlines()]
        return "\n".join(lines)


def write_audit_publish(
    quality: Quality,
    table: str,
    data: Any,
    ruleset: str | Any,
    *,
    on_failure: str = REJECT,
    staging_branch: str | None = None,
    max_attempts: int = 3,
) -> WapResult:
    """Write ``data`` to ``table`` through a staging branch and ``ruleset``; see the module docstring."""
    if on_failure not in ON_FAILURE:
        raise InvalidArgument(f"on_failure must be 'reject' or 'quarantine', got {on_failure!r}")
    if max_attempts < 1:
        raise InvalidArgument(f"max_attempts must be at least 1, got {max_attempts}")
    lake = quality.lake
    label = lake.table(table).full_name
    spec = quality.spec(ruleset)
    rows = batch_writes.materialize(lake, data)
    batch_id = new_id()
    staging = staging_branch or f"wap_{batch_id[:12]}"
    result = WapResult(label, batch_id, on_failure, NOTHING, staging)
    if rows.num_rows == 0:
        result.main_before = result.main_after = batch_writes.table_head(lake, label)
        result.message = "the batch has no rows: nothing was written"
        return result
    for attempt in range(1, max_attempts + 1):
        result = WapResult(label, batch_id, on_failure, NOTHING, staging, attempts=attempt)
        try:
            _attempt(quality, spec, rows, result, named_branch=staging_branch is not None)
            break
        except ConflictError as exc:
            _record(quality, spec, result, outcome="conflict", message=exc.message)
            if attempt == max_attempts:
                raise
            log.info("write-audit-publish of batch %s on %s: %s; auditing again", batch_id, label, exc.message)
            time.sleep(0.01 * attempt)
        except Exception as exc:
            _record(quality, spec, result, outcome="failed", message=f"{type(exc).__name__}: {exc}")
            raise
    _tidy_branches(quality, result, named_branch=staging_branch is not None)
    _record(quality, spec, result, outcome=result.outcome, message=result.message)
    return result


def _attempt(quality: Quality, spec: RulesetSpec, rows: pa.Table, result: WapResult, *, named_branch: bool) -> None:
    from wharf.quality.lake_quality import Source

    lake, label, batch = quality.lake, result.table, result.batch_id
    base = batch_writes.table_head(lake, label)
    result.main_before = result.main_after = base
    batch_writes.position_branch(lake, label, result.staging_branch, base)
    staged = batch_writes.append(
        lake, label, rows, branch=result.staging_branch, batch_id=batch, ruleset=spec.name, what="write-audit-publish: stage"
    )
    assert staged is not None  # rows is not empty
    result.staged_snapshot_id = staged
    source = Source(f"{batch_writes.quoted(label)} FOR VERSION AS OF {staged}", label, result.staging_branch, staged)
    report = quality.run(spec, source, kind=WAP, step=STAGE, batch_id=batch, sink=result.pending)
    result.report = report
    if report.passed:
        _flush(quality, result)  # the gate of a gated table finds the audit it may skip
        batch_writes.publish(lake, label, base, staged, batch_id=batch)
        result.outcome, result.main_after, result.published_rows = PUBLISHED, staged, rows.num_rows
        result.message = f"all {len(report.rules)} rules passed; main fast-forwarded to snapshot {staged}"
        return
    failed = ", ".join(r.rule for r in report.failed_rules())
    if result.on_failure == REJECT:
        result.outcome = REJECTED
        result.message = f"rejected, main unchanged: {len(report.failed_rules())} rule(s) failed: {failed}"
        return
    _quarantine(quality, spec, rows, result, base, failed)


def _quarantine(quality: Quality, spec: RulesetSpec, rows: pa.Table, result: WapResult, base: int | None, failed: str) -> None:
    """Split the batch by its row-level outcomes, audit the valid rows on their own branch, publish them."""
    from wharf.quality.lake_quality import Source

    lake, label, batch = quality.lake, result.table, result.batch_id
    good, bad, _run = split_rows(quality, spec, rows, batch_id=batch, sink=result.pending)
    if bad.num_rows == 0:
        # Every row passes the row-level rules: what failed is a dataset-level rule, and
        # quarantining rows cannot fix that.
        result.outcome = REJECTED
        result.message = f"rejected, main unchanged: no row fails a row-level rule, but dataset-level rule(s) failed: {failed}"
        return
    audit = f"{result.staging_branch}_audit"
    result.audit_branch = audit
    batch_writes.position_branch(lake, label, audit, base)
    audited = batch_writes.append(
        lake, label, good, branch=audit, batch_id=batch, ruleset=spec.name, what="write-audit-publish: audit"
    )
    target = audited if audited is not None else base
    result.audit_snapshot_id = target
    if target is not None:
        source = Source(f"{batch_writes.quoted(label)} FOR VERSION AS OF {target}", label, audit, target)
        result.audit_report = quality.run(spec, source, kind=WAP, step=AUDIT, batch_id=batch, sink=result.pending)
        if not result.audit_report.passed:
            still = ", ".join(r.rule for r in result.audit_report.failed_rules())
            result.outcome = REJECTED
            result.message = f"rejected, main unchanged: without its {bad.num_rows} failing row(s) the batch still fails: {still}"
            return
    if audited is not None:
        _flush(quality, result)
        batch_writes.publish(lake, label, base, audited, batch_id=batch)
        result.main_after = audited
    result.published_rows = good.num_rows
    name = quarantine.ensure(lake, label)
    from wharf.quality.results_log import internal_writes

    with internal_writes():
        batch_writes.append(
            lake,
            name,
            quarantine.with_batch(bad, batch_id=batch, ruleset=spec.name),
            branch="main",
            batch_id=batch,
            ruleset=spec.name,
            what="write-audit-publish: quarantine",
        )
    result.quarantine_table = name
    result.quarantined_rows = bad.num_rows
    result.outcome = QUARANTINED
    result.message = f"{good.num_rows} valid row(s) published, {bad.num_rows} quarantined in {name}"


def split_rows(
    quality: Quality,
    spec: RulesetSpec,
    rows: pa.Table,
    *,
    batch_id: str,
    kind: str = WAP,
    sink: list[ResultRow] | None = None,
) -> tuple[pa.Table, pa.Table, QualityRun]:
    """``rows`` split by the row-level rules: (passing rows as they came, failing rows with outcome
    columns, the row-level run).

    The row-level run is recorded (step ``rows``) against no table: it describes the batch.
    """
    from wharf.quality.lake_quality import Source

    lake = quality.lake
    name = f"__wharf_batch_{batch_id[:12]}"
    lake.register(name, rows)
    try:
        run = quality.run(spec, Source(name), row_level=True, kind=kind, step=ROWS, batch_id=batch_id, sink=sink)
        evaluated = run.rows("all")
    finally:
        lake.unregister(name)
    verdict = evaluated.column("DataQualityEvaluationResult")
    passing = pc.equal(verdict, "Passed")
    good = evaluated.filter(passing).select(rows.column_names)
    bad = evaluated.filter(pc.invert(passing))
    return good.cast(rows.schema), bad, run


def _tidy_branches(quality: Quality, result: WapResult, *, named_branch: bool) -> None:
    """Drop this batch's default branches whose head is in main's history; keep the others."""
    from wharf.tables.snapshots import is_ancestor

    lake, label = quality.lake, result.table
    table = lake.table(label).iceberg
    main = table.metadata.refs.get("main")
    for branch in (result.staging_branch, result.audit_branch):
        if branch is None:
            continue
        ref = table.metadata.refs.get(branch)
        if ref is None:
            continue
        published = main is not None and is_ancestor(table, ref.snapshot_id, main.snapshot_id)
        if published and not (named_branch and branch == result.staging_branch):
            batch_writes.drop_branch(lake, label, branch)
        else:
            result.branches_kept.append(branch)


def _record(quality: Quality, spec: RulesetSpec, result: WapResult, *, outcome: str, message: str) -> None:
    """The batch's summary row in ``system.quality_results`` (never fails the write)."""
    row = ResultRow(
        run_id=new_id(),
        kind=WAP,
        step=PUBLISH,
        ruleset=spec.name if spec.name != "inline" else spec.digest,
        ruleset_hash=spec.digest,
        table_name=result.table,
        ref=result.staging_branch,
        snapshot_id=result.main_after,
        evaluated_at=time.time(),
        principal=quality.lake.principal.name,
        batch_id=result.batch_id,
        outcome=outcome,
        main_before=result.main_before,
        main_after=result.main_after,
        published_rows=result.published_rows,
        quarantined_rows=result.quarantined_rows,
        message=message,
    )
    result.pending.append(row)
    _flush(quality, result)


def _flush(quality: Quality, result: WapResult) -> None:
    """Record the batch's pending result rows in one commit (never fails the write)."""
    rows, result.pending[:] = list(result.pending), []
    try:
        quality.log.append(rows)
    except Exception:  # noqa: BLE001 - the write itself is done or refused; losing its record must not change that
        log.exception("could not record the quality runs of batch %s", result.batch_id)


__all__ = [
    "ON_FAILURE",
    "PUBLISHED",
    "QUARANTINE",
    "QUARANTINED",
    "REJECT",
    "REJECTED",
    "WapResult",
    "split_rows",
    "write_audit_publish",
]
