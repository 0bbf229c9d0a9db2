"""``lake.quality``: data quality in the lake — stored rulesets, recorded runs, scores, alerts, WAP.

::

    lake.quality.create_ruleset("sensor_rules", "iot.readings", 'Rules = [ColumnValues "temperature" between -10 and 50]')
    run = lake.quality.evaluate("iot.readings.branch_stg", "sensor_rules")   # recorded in system.quality_results
    run.passed, run.rules, run.rows("failed")
    lake.quality.history("iot.readings")        # every run on the table, newest first
    lake.quality.score("iot.readings")          # share of rules passed in the latest run
    lake.quality.write_audit_publish("iot.readings", new_rows, "sensor_rules", on_failure="quarantine")
    lake.quality.write_with_dlq("iot.readings", new_rows, "sensor_rules")

The DQDL parser and evaluator are ``wharf.quality.parse`` / ``wharf.quality.evaluate``; this
module stores what they need and what they find. Evaluating a table reference pins it to a
snapshot first, so the snapshot recorded is the one evaluated.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from wharf.errors import InvalidArgument, NotFound
from wharf.quality.results_log import (
    CHECK,
    EVALUATE,
    RESULTS_NAME,
    ResultRow,
    ResultsLog,
    StoredHistory,
    new_id,
    ruleset_hash,
)
from wharf.quality.stored_rulesets import RulesetStore, StoredRuleset, check_name, check_webhook
from wharf.quality.webhooks import Delivery, RetryPolicy, secret_from_env, send
from wharf.tables.scan import quote_ident, quote_str

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.quality.dead_letter import DlqResult
    from wharf.quality.wap import WapResult

INLINE = "inline"  # the ruleset name recorded for a ruleset given as text
_QUERY_START = re.compile(r"^\s*(\(|select\b|with\b|from\b|values\b)", re.IGNORECASE)


@dataclass(frozen=True)
class RulesetSpec:
    """A ruleset ready to evaluate: its name (stored, or ``inline``), text, parsed form and fingerprint."""

    name: str
    text: str
    parsed: Any  # wharf.quality.Ruleset
    digest: str
    webhook: str | None = None
    table: str | None = None  # the table a stored ruleset is for


@dataclass(frozen=True)
class Source:
    """What an evaluation reads: ``sql`` (a pinned table reference or a query) and, for a table,
    its name, the ref it was named by and the snapshot read."""

    sql: str
    table: str | None = None
    ref: str | None = None
    snapshot_id: int | None = None


@dataclass
class QualityRun:
    """One recorded evaluation: the ruleset's result plus where it ran and how it was recorded.

    ``result`` is ``wharf.quality.QualityResult``; ``passed``, ``rules``, ``metrics``, ``rows()``
    and ``to_arrow()`` are its own. ``alert`` says what happened to the webhook call, if any.
    """

    result: Any
    run_id: str
    ruleset: RulesetSpec
    source: Source
    evaluated_at: float
    alert: Delivery | None = None
    recorded: bool = True

    @property
    def passed(self) -> bool:
        return bool(self.result.passed)

    @property
    def rules(self) -> list[Any]:
        return list(self.result.rules)

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.result.metrics)

    @property
    def snapshot_id(self) -> int | None:
        return self.source.snapshot_id

    @property
    def table(self) -> str | None:
        return self.source.table

    @property
    def score(self) -> float:
        rules = self.rules
        return sum(r.outcome == "Passed" for r in rules) / len(rules) if rules else 1.0

    def failed_rules(self) -> list[Any]:
        return [r for r in self.rules if r.outcome != "Passed"]

    def rows(self, which: str = "all") -> pa.Table:
        return self.result.rows(which)  # type: ignore[no-any-return]

    @property
    def row_level_sql(self) -> str | None:
        return self.result.row_level_sql  # type: ignore[no-any-return]

    def to_arrow(self) -> pa.Table:
        return self.result.to_arrow()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        where = self.source.table or "query"
        if self.source.snapshot_id is not None:
            where += f" @ {self.source.snapshot_id}" + (f" ({self.source.ref})" if self.source.ref else "")
        head = f"ruleset {self.ruleset.name} on {where}, run {self.run_id[:12]}"
        return f"{self.result!r}\n  {head}"


def _looks_like_dqdl(text: str) -> bool:
    return bool(re.search(r"\b(Rules|Analyzers)\s*=\s*\[", text))


class Quality:
    """The data quality façade of one lake handle (``lake.quality``); runs as the handle's principal."""

    def __init__(self, lake: Lakehouse) -> None:
        self.lake = lake
        self.webhook_secret: str | None = secret_from_env()
        self.webhook_retry = RetryPolicy()

    @property
    def store(self) -> RulesetStore:
        return RulesetStore(self.lake.catalog.engine)

    @property
    def log(self) -> ResultsLog:
        return ResultsLog(self.lake)

    # --- rulesets ---------------------------------------------------------------------------

    def create_ruleset(
        self, name: str, table: str, text: str, *, webhook: str | None = None, replace: bool = False
    ) -> StoredRuleset:
        """Store DQDL ``text`` as ruleset ``name`` for ``table`` (parsed first: invalid rules are refused)."""
        from wharf.quality import parse

        check_name(name)
        parse(text)  # raises with line and column
        label = self._may_alter(table)
        existing = self.store.find(name)
        if existing is not None and replace and existing.table.lower() != label.lower():
            self._may_alter(existing.table)  # replacing moves it off a table: that table's gate changes too
        stored = StoredRuleset(name, label, text, check_webhook(webhook), created_by=self.lake.principal.name)
        return self.store.save(stored, replace=replace)

    def drop_ruleset(self, name: str, *, if_exists: bool = False) -> bool:
        """Remove a stored ruleset; False when ``if_exists`` and it did not exist. Recorded runs stay."""
        existing = self.store.find(name)
        if existing is not None and self.lake.catalog.table_exists(tuple(existing.table.rsplit(".", 1))):
            self._may_alter(existing.table)
        return self.store.drop(name, if_exists=if_exists)

    def _may_alter(self, table: str) -> str:
        """The table's name as the catalog spells it, if this principal may alter it (a ruleset can gate
        the table's writes, so defining one is altering the table: the reference pipeline decides)."""
        from wharf.tables.loader import split_name

        ns, name = split_name(table)
        stored = self.lake.iceberg_table(ns, name, role="alter").name()
        return ".".join(stored)

    def rulesets(self, table: str | None = None) -> list[StoredRuleset]:
        """Stored rulesets (of ``table`` only, if given)."""
        label = self.lake.table(table).full_name if table is not None else None
        return self.store.list(label)

    def ruleset(self, name: str) -> StoredRuleset:
        return self.store.get(name)

    def spec(self, ruleset: str | Any) -> RulesetSpec:
        """A ruleset to evaluate from a stored name, DQDL text or a parsed ``Ruleset``."""
        from wharf.quality import parse

        if not isinstance(ruleset, str):
            text = str(ruleset)
            return RulesetSpec(INLINE, text, ruleset, ruleset_hash(text))
        if _looks_like_dqdl(ruleset):
            parsed = parse(ruleset)
            return RulesetSpec(INLINE, ruleset, parsed, ruleset_hash(str(parsed)))
        stored = self.store.find(ruleset.strip())
        if stored is None:
            known = ", ".join(r.name for r in self.store.list()) or "none"
            raise NotFound(
                f"'{ruleset}' is neither a stored data quality ruleset nor DQDL text",
                hint=f"stored rulesets: {known}; DQDL text looks like Rules = [ RowCount > 0 ]",
            )
        parsed = parse(stored.text)
        return RulesetSpec(stored.name, stored.text, parsed, ruleset_hash(str(parsed)), stored.webhook, stored.table)

    # --- evaluation -------------------------------------------------------------------------

    def resolve_source(self, source: str) -> Source:
        """Pin a table reference (``db.t``, ``db.t.branch_x``, ``db.t FOR VERSION AS OF …``) to its snapshot;
        a query or a registered name is evaluated as it is."""
        from wharf.sql.pipeline import resolve_reference

        text = source.strip().rstrip(";")
        if not text:
            raise InvalidArgument("Nothing to evaluate: give a table (db.t, db.t.branch_x) or a query")
        if _QUERY_START.match(text):
            return Source(text)
        try:
            node = sqlglot.parse_one(f"SELECT * FROM {text}", read="duckdb").find(exp.Table)
        except sqlglot.errors.ParseError as exc:
            raise InvalidArgument(
                f"Cannot read '{text}' as a table reference: {str(exc).splitlines()[0]}",
                hint="give db.t, db.t.branch_<name>, db.t FOR VERSION AS OF <id>, or a SELECT query",
            ) from None
        if node is None:
            return Source(text)
        with self.lake.api_statement("inspect", f"-- data quality source {text}") as ctx:
            from wharf.sql.references import resolve_table

            if resolve_table(ctx, node.copy(), required=False) is None:
                return Source(text)  # a registered DataFrame or a DuckDB object
            ref = resolve_reference(ctx, node, role="read")
        label = ref.label
        if ref.snapshot_id is None:
            return Source(text, label, ref.version.ref or "main", None)
        ref_name = ref.version.ref or (None if not ref.version.is_default else ctx.session.branch or "main")
        pinned = f"{quote_ident(ref.namespace)}.{quote_ident(ref.name)} FOR VERSION AS OF {ref.snapshot_id}"
        return Source(pinned, label, ref_name, ref.snapshot_id)

    def evaluate(
        self,
        table_or_query: str,
        ruleset: str | Any,
        *,
        row_level: bool = False,
        aliases: Mapping[str, str] | None = None,
        record: bool = True,
        kind: str = EVALUATE,
        step: str = CHECK,
        batch_id: str | None = None,
    ) -> QualityRun:
        """Evaluate ``ruleset`` (a stored name, DQDL text or a parsed ruleset) on a table reference or
        a query; the run is stored in ``system.quality_results`` and, if it fails, the ruleset's
        webhook is called."""
        spec = self.spec(ruleset)
        source = self.resolve_source(table_or_query)
        return self.run(
            spec, source, row_level=row_level, aliases=aliases, record=record, kind=kind, step=step, batch_id=batch_id
        )

    def run(
        self,
        spec: RulesetSpec,
        source: Source,
        *,
        row_level: bool = False,
        aliases: Mapping[str, str] | None = None,
        record: bool = True,
        kind: str = EVALUATE,
        step: str = CHECK,
        batch_id: str | None = None,
        principal: str | None = None,
        sink: list[ResultRow] | None = None,
        evaluator: Lakehouse | None = None,
    ) -> QualityRun:
        """Evaluate an already resolved ruleset on an already resolved source (WAP and the gate use this).

        ``sink`` collects the run's result rows instead of appending them now (a write records
        its runs together, in fewer commits). ``evaluator`` is the handle the rules run on (default:
        this one) — the gate runs them as the committing principal, and records as the owner."""
        from wharf.quality import evaluate

        history = StoredHistory(self.log, source.table, spec.name if spec.name != INLINE else spec.digest)
        evaluated_at = time.time()
        reader = evaluator if evaluator is not None else self.lake
        result = evaluate(reader, source.sql, spec.parsed, row_level=row_level, history=history, aliases=aliases)
        run = QualityRun(result, new_id(), spec, source, evaluated_at, recorded=record)
        if record:
            rows = run_rows(run, kind=kind, step=step, batch_id=batch_id, principal=principal or self.lake.principal.name)
            if sink is not None:
                sink.extend(rows)
            else:
                self.log.append(rows)
        if not run.passed and spec.webhook:
            run.alert = self.alert(run, batch_id=batch_id)
        return run

    def alert(self, run: QualityRun, *, batch_id: str | None = None) -> Delivery | None:
        """Call the ruleset's webhook about a failed run (signed, retried, bounded; never raises)."""
        if not run.ruleset.webhook:
            return None
        payload = {
            "event": "quality.run_failed",
            "ruleset": run.ruleset.name,
            "table": run.source.table,
            "ref": run.source.ref,
            "snapshot_id": run.source.snapshot_id,
            "run_id": run.run_id,
            "batch_id": batch_id,
            "evaluated_at": run.evaluated_at,
            "failed_rules": [
                {"rule": r.rule, "outcome": r.outcome, "failure_reason": r.failure_reason} for r in run.failed_rules()
            ],
            "score": run.score,
        }
        return send(run.ruleset.webhook, payload, secret=self.webhook_secret, policy=self.webhook_retry)

    # --- history and score --------------------------------------------------------------------

    def history(self, table: str, *, limit: int | None = None) -> pa.Table:
        """Every recorded rule outcome on ``table``, newest run first."""
        label = self.lake.table(table).full_name
        where = f"table_name = {quote_str(label)}"
        order = "evaluated_at DESC, rule NULLS FIRST"
        rows = self.log.query(where, order)
        return rows.slice(0, limit) if limit is not None else rows

    def score(self, table: str) -> float | None:
        """Share of rules passed in the latest run on ``table`` (None: never evaluated)."""
        label = self.lake.table(table).full_name
        if not self.log.exists():
            return None
        row = self.lake.sql(
            f"""
            WITH latest AS (
              SELECT run_id FROM {RESULTS_NAME}
              WHERE table_name = {quote_str(label)} AND rule IS NOT NULL
              ORDER BY evaluated_at DESC LIMIT 1)
            SELECT avg(CASE WHEN outcome = 'Passed' THEN 1.0 ELSE 0.0 END)
            FROM {RESULTS_NAME} WHERE run_id = (SELECT run_id FROM latest) AND rule IS NOT NULL
            """
        ).scalar()
        return None if row is None else float(row)

    # --- writes through the gate --------------------------------------------------------------

    def write_audit_publish(
        self,
        table: str,
        data: Any,
        ruleset: str | Any,
        *,
        on_failure: str = "reject",
        staging_branch: str | None = None,
        max_attempts: int = 3,
    ) -> WapResult:
        """Write ``data`` (Arrow / DataFrame, or a query) to a staging branch, audit it with ``ruleset``,
        publish it to main only if it passes; see ``wharf.quality.wap``."""
        from wharf.quality.wap import write_audit_publish

        return write_audit_publish(
            self, table, data, ruleset, on_failure=on_failure, staging_branch=staging_branch, max_attempts=max_attempts
        )

    def write_with_dlq(self, table: str, data: Any, ruleset: str | Any) -> DlqResult:
        """Append the rows of ``data`` that pass the row-level rules to main, and the others to
        ``<table>__quarantine``; see ``wharf.quality.dead_letter``."""
        from wharf.quality.dead_letter import write_with_dlq

        return write_with_dlq(self, table, data, ruleset)


def run_rows(run: QualityRun, *, kind: str, step: str, batch_id: str | None, principal: str) -> list[ResultRow]:
    """The ``system.quality_results`` rows of one run: one per rule, plus one holding all its metrics."""
    source, spec = run.source, run.ruleset
    ref = source.ref if source.table is not None else _shorten(source.sql)
    common: dict[str, Any] = {
        "run_id": run.run_id,
        "kind": kind,
        "step": step,
        "ruleset": spec.name if spec.name != INLINE else spec.digest,
        "ruleset_hash": spec.digest,
        "table_name": source.table,
        "ref": ref,
        "snapshot_id": source.snapshot_id,
        "evaluated_at": run.evaluated_at,
        "principal": principal,
        "batch_id": batch_id,
    }
    rows = [
        ResultRow(
            **common,
            rule=r.rule,
            outcome=r.outcome,
            failure_reason=r.failure_reason,
            metrics=dict(r.evaluated_metrics),
        )
        for r in run.rules
    ]
    passed = sum(r.outcome == "Passed" for r in run.rules)
    rows.append(
        ResultRow(
            **common,
            outcome="Passed" if run.passed else "Failed",
            metrics=_numbers(run.metrics),
            message=f"{passed}/{len(run.rules)} rules passed",
        )
    )
    return rows


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _shorten(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["INLINE", "Quality", "QualityRun", "RulesetSpec", "Source", "run_rows"]
