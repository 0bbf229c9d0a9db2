"""Data quality: DQDL (AWS Glue Data Quality's rule language) parsed, compiled to SQL, evaluated.

>>> import wharf.quality as q
>>> ruleset = q.parse('Rules = [ RowCount > 0, IsComplete "id", ColumnValues "price" between 0 and 100 ]')
>>> result = q.evaluate(lake, "db.orders", ruleset)  # doctest: +SKIP
>>> result.passed, result.rules[0].outcome  # doctest: +SKIP

The public contract: ``parse`` → ``Ruleset``; ``evaluate`` → ``QualityResult`` (``.passed``,
``.rules`` of ``RuleResult``, ``.metrics``, ``.to_arrow()``, ``.rows()``, ``.row_level_sql``);
``MetricHistory`` is what dynamic rules read earlier runs from.
"""

from wharf.quality.evaluate import evaluate
from wharf.quality.history import InMemoryHistory, MetricHistory, detect_anomaly
from wharf.quality.model import Analyzer, Composite, Condition, Rule, RuleNode, Ruleset
from wharf.quality.parser import parse, parse_rule
from wharf.quality.result import AnalyzerResult, QualityResult, RuleResult

__all__ = [
    "Analyzer",
    "AnalyzerResult",
    "Composite",
    "Condition",
    "InMemoryHistory",
    "MetricHistory",
    "QualityResult",
    "Rule",
    "RuleNode",
    "RuleResult",
    "Ruleset",
    "detect_anomaly",
    "evaluate",
    "parse",
    "parse_rule",
]
