"""The dead-letter alternative to WAP: validate rows before writing, divert the bad ones.

``write_with_dlq(quality, table, data, ruleset)`` evaluates the row-level rules on the incoming
rows (no branch), appends the passing rows to main and the failing ones — with Glue's outcome
columns — to ``<table>__quarantine``. Both snapshots carry the batch id in their summary
(``wharf.quality.batch-id``), so the pair can be matched from either side
(``SELECT * FROM db.t.snapshots WHERE summary['wharf.quality.batch-id'] = …``). The quarantine
rows are written first; if the main append then fails (a gate refuses it, a conflict), they are
deleted again, so the pair is visible completely or not at all in both tables' current state.
Dataset-level rules are not checked here (there is no complete dataset to check before the
write); a table that needs them uses WAP, or the ``wharf.wap.ruleset`` gate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wharf.quality import batch_writes, quarantine
from wharf.quality.results_log import DLQ, PUBLISH, ResultRow, internal_writes, new_id
from wharf.tables.scan import quote_str

if TYPE_CHECKING:
    from wharf.quality.lake_quality import Quality, QualityRun

log = logging.getLogger(__name__)


@dataclass
class DlqResult:
    """What one dead-letter write did: rows appended to main and to the quarantine table, and their snapshots."""

    table: str
    batch_id: str
    written_rows: int
    quarantined_rows: int
    snapshot_id: int | None
    quarantine_table: str | None
    quarantine_snapshot_id: int | None
    report: QualityRun | None

    def __repr__(self) -> str:
        return (
            f"DlqResult on {self.table} (batch {self.batch_id}): {self.written_rows} row(s) written "
            f"(snapshot {self.snapshot_id}), {self.quarantined_rows} quarantined"
            + (f" in {self.quarantine_table} (snapshot {self.quarantine_snapshot_id})" if self.quarantine_table else "")
        )


def write_with_dlq(quality: Quality, table: str, data: Any, ruleset: str | Any) -> DlqResult:
    """Append valid rows of ``data`` to ``table`` and invalid ones to ``<table>__quarantine``."""
    from wharf.quality.wap import split_rows

    lake = quality.lake
    label = lake.table(table).full_name
    spec = quality.spec(ruleset)
    rows = batch_writes.materialize(lake, data)
    batch_id = new_id()
    result = DlqResult(label, batch_id, 0, 0, None, None, None, None)
    if rows.num_rows == 0:
        return result
    before = batch_writes.table_head(lake, label)
    pending: list[ResultRow] = []
    good, bad, result.report = split_rows(quality, spec, rows, batch_id=batch_id, kind=DLQ, sink=pending)
    name: str | None = None
    if bad.num_rows:
        name = quarantine.ensure(lake, label)
        with internal_writes():
            result.quarantine_snapshot_id = batch_writes.append(
                lake,
                name,
                quarantine.with_batch(bad, batch_id=batch_id, ruleset=spec.name),
                branch="main",
                batch_id=batch_id,
                ruleset=spec.name,
                what="dead-letter: quarantine",
            )
        result.quarantine_table, result.quarantined_rows = name, bad.num_rows
    try:
        result.snapshot_id = batch_writes.append(
            lake, label, good, branch="main", batch_id=batch_id, ruleset=spec.name, what="dead-letter: write"
        )
    except BaseException:
        if name is not None:
            # The pair is incomplete: take the batch out of the quarantine table again.
            with internal_writes():
                lake.sql(f"DELETE FROM {batch_writes.quoted(name)} WHERE wharf_batch_id = {quote_str(batch_id)}")
        raise
    result.written_rows = good.num_rows
    _record(quality, spec.name if spec.name != "inline" else spec.digest, spec.digest, result, before, pending)
    return result


def _record(quality: Quality, ruleset: str, digest: str, result: DlqResult, before: int | None, pending: list[ResultRow]) -> None:
    row = ResultRow(
        run_id=new_id(),
        kind=DLQ,
        step=PUBLISH,
        ruleset=ruleset,
        ruleset_hash=digest,
        table_name=result.table,
        ref="main",
        snapshot_id=result.snapshot_id,
        evaluated_at=time.time(),
        principal=quality.lake.principal.name,
        batch_id=result.batch_id,
        outcome="written",
        main_before=before,
        main_after=result.snapshot_id if result.snapshot_id is not None else before,
        published_rows=result.written_rows,
        quarantined_rows=result.quarantined_rows,
        message=f"{result.written_rows} row(s) appended, {result.quarantined_rows} quarantined"
        + (f" in {result.quarantine_table} (snapshot {result.quarantine_snapshot_id})" if result.quarantine_table else ""),
    )
    try:
        quality.log.append([*pending, row])
    except Exception:  # noqa: BLE001 - the rows are written; losing the summary row must not undo that
        log.exception("could not record dead-letter summary of batch %s", result.batch_id)


__all__ = ["DlqResult", "write_with_dlq"]
