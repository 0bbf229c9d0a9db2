"""What an evaluation returns: per-rule outcomes as AWS Glue reports them, metrics, row-level rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from wharf.errors import InvalidArgument

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse

PASSED, FAILED, ERROR = "Passed", "Failed", "Error"
ROW_COLUMNS = ("DataQualityRulesPass", "DataQualityRulesFail", "DataQualityRulesSkip", "DataQualityEvaluationResult")


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome. ``rule`` is its canonical DQDL text; ``outcome`` is Passed, Failed or Error.

    ``note`` explains a pass that did not really check anything yet (a dynamic rule or
    DetectAnomalies without enough history).
    """

    rule: str
    outcome: str
    failure_reason: str | None = None
    evaluated_metrics: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED


@dataclass(frozen=True)
class AnalyzerResult:
    """One analyzer's metrics."""

    analyzer: str
    metrics: dict[str, float]


@dataclass
class QualityResult:
    """The outcome of ``evaluate``: ``.passed`` when every rule passed.

    ``.metrics`` holds every metric computed (rules and analyzers) by Glue's names;
    ``.row_level_sql`` is a query (run it with ``lake.sql``) giving the source rows plus the four
    outcome columns; ``.rows()`` runs it. ``.scans`` counts the queries that read the source
    for dataset-level metrics.
    """

    rules: list[RuleResult]
    metrics: dict[str, float]
    analyzers: list[AnalyzerResult]
    source: str
    row_level_sql: str | None = None
    scans: int = 0
    queries: list[str] = field(default_factory=list)
    _lake: Lakehouse | None = field(default=None, repr=False)
    _rows: pa.Table | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return all(r.outcome == PASSED for r in self.rules)

    @property
    def score(self) -> float:
        """Share of rules that passed (1.0 when there are no rules)."""
        return sum(r.outcome == PASSED for r in self.rules) / len(self.rules) if self.rules else 1.0

    def failed_rules(self) -> list[RuleResult]:
        return [r for r in self.rules if r.outcome != PASSED]

    def to_arrow(self) -> pa.Table:
        """One row per rule: rule, outcome, failure_reason, evaluated_metrics (map<string, double>)."""
        return pa.table(
            {
                "rule": pa.array([r.rule for r in self.rules], pa.string()),
                "outcome": pa.array([r.outcome for r in self.rules], pa.string()),
                "failure_reason": pa.array([r.failure_reason for r in self.rules], pa.string()),
                "evaluated_metrics": pa.array(
                    [list(r.evaluated_metrics.items()) for r in self.rules], pa.map_(pa.string(), pa.float64())
                ),
            }
        )

    def rows(self, which: str = "all") -> pa.Table:
        """The source rows with the outcome columns (``row_level=True`` only); which = all | passed | failed."""
        if which not in ("all", "passed", "failed"):
            raise InvalidArgument(f"rows(which={which!r}): expected 'all', 'passed' or 'failed'")
        if self.row_level_sql is None or self._lake is None:
            raise InvalidArgument("No row-level results", hint="evaluate with row_level=True")
        if self._rows is None:
            self._rows = self._lake.sql(self.row_level_sql).to_arrow()
        if which == "all":
            return self._rows
        import pyarrow.compute as pc

        wanted = "Passed" if which == "passed" else "Failed"
        return self._rows.filter(pc.equal(self._rows["DataQualityEvaluationResult"], wanted))

    def __repr__(self) -> str:
        status = "PASSED" if self.passed else "FAILED"
        passed = sum(r.outcome == PASSED for r in self.rules)
        lines = [f"QualityResult {status}: {passed}/{len(self.rules)} rules passed on {self.source}"]
        width = min(max((len(r.rule) for r in self.rules), default=4), 70)
        for r in self.rules:
            text = r.rule if len(r.rule) <= width else r.rule[: width - 1] + "…"
            reason = f"  {r.failure_reason}" if r.failure_reason else ""
            lines.append(f"  {r.outcome:<6}  {text:<{width}}{reason}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{html.escape(r.outcome)}</td><td><code>{html.escape(r.rule)}</code></td>"
            f"<td>{html.escape(r.failure_reason or '')}</td></tr>"
            for r in self.rules
        )
        return f"<table><tr><th>outcome</th><th>rule</th><th>failure reason</th></tr>{rows}</table>"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for logs, webhooks, the CLI)."""
        return {
            "source": self.source,
            "passed": self.passed,
            "score": self.score,
            "rules": [
                {
                    "rule": r.rule,
                    "outcome": r.outcome,
                    "failure_reason": r.failure_reason,
                    "evaluated_metrics": r.evaluated_metrics,
                    "labels": r.labels,
                }
                for r in self.rules
            ],
            "metrics": self.metrics,
        }
