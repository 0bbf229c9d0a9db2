"""Metric history for dynamic rules (``RowCount > avg(last(10)) * 0.8``) and ``DetectAnomalies``.

The evaluator asks a ``MetricHistory`` for the values a metric had in earlier runs of the same
ruleset on the same table, newest first. Wharf's stored history (``system.quality_results``)
implements it; ``InMemoryHistory`` is the plain one for tests and scripts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from wharf.errors import InvalidArgument
from wharf.quality.model import BinaryOp, Call, Keyword, Number, NumberExpr

# DetectAnomalies: how many earlier values it looks at, how many it needs, how wide the band is.
ANOMALY_WINDOW = 20
ANOMALY_MIN_HISTORY = 3
ANOMALY_K = 3.0


@runtime_checkable
class MetricHistory(Protocol):
    """Values of one metric in earlier runs, newest first (``Dataset.*.RowCount``, ``Column.price.Mean`` …)."""

    def values(self, metric: str) -> list[float]: ...


@dataclass
class InMemoryHistory:
    """A ``MetricHistory`` held in a dict; ``record(result.metrics)`` after each run appends a run.

    >>> h = InMemoryHistory({"Dataset.*.RowCount": [100.0, 90.0]})
    >>> h.values("Dataset.*.RowCount")
    [100.0, 90.0]
    """

    runs: dict[str, list[float]] = field(default_factory=dict)

    def values(self, metric: str) -> list[float]:
        return list(self.runs.get(metric, []))

    def record(self, metrics: Mapping[str, float | None]) -> None:
        """Add one run's metrics as the newest values."""
        for name, value in metrics.items():
            if value is not None and not math.isnan(value):
                self.runs.setdefault(name, []).insert(0, float(value))


class InsufficientHistory(Exception):
    """A dynamic expression needs earlier runs that the history does not have (yet)."""


def uses_history(expr: object) -> bool:
    """True if ``expr`` (an operand) calls a dynamic-rule function."""
    if isinstance(expr, Call):
        return True
    if isinstance(expr, BinaryOp):
        return uses_history(expr.left) or uses_history(expr.right)
    return False


def evaluate_number(expr: NumberExpr, past: list[float]) -> float | list[float] | None:
    """The value of a numeric operand; ``past`` are the metric's earlier values, newest first.

    ``last(k)`` is the list of the k newest values (``last()`` is the single newest value);
    ``avg``/``min``/``max``/``std`` (population) reduce a list; ``index(list, i)`` picks item i (0 = newest).
    """
    if isinstance(expr, Number):
        return float(expr.value)
    if isinstance(expr, Keyword):
        return None
    if isinstance(expr, BinaryOp):
        left, right = evaluate_number(expr.left, past), evaluate_number(expr.right, past)
        if left is None or right is None:
            return None
        if isinstance(left, list) or isinstance(right, list):
            raise InvalidArgument(f"'{expr}': arithmetic on a list; reduce it first with avg/min/max/std/index")
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        if expr.op == "*":
            return left * right
        return left / right if right != 0 else None
    assert isinstance(expr, Call)
    if expr.name == "last":
        if not expr.args:
            if not past:
                raise InsufficientHistory("last() needs one earlier run")
            return past[0]
        count = int(_scalar(evaluate_number(expr.args[0], past)))
        if not past:
            raise InsufficientHistory(f"last({count}) needs at least one earlier run")
        return past[:count]
    if expr.name == "index":
        items = _as_list(evaluate_number(expr.args[0], past))
        position = int(_scalar(evaluate_number(expr.args[1], past)))
        if position >= len(items):
            raise InsufficientHistory(f"{expr} needs {position + 1} earlier runs, the history has {len(items)}")
        return items[position]
    items = _as_list(evaluate_number(expr.args[0], past))
    if not items:
        raise InsufficientHistory(f"{expr} needs at least one earlier run")
    if expr.name == "avg":
        return statistics.fmean(items)
    if expr.name == "min":
        return min(items)
    if expr.name == "max":
        return max(items)
    if expr.name == "std":
        return statistics.pstdev(items)
    raise InvalidArgument(f"Unknown function {expr.name}")


def _scalar(value: float | list[float] | None) -> float:
    if value is None or isinstance(value, list):
        raise InvalidArgument("Expected a number")
    return value


def _as_list(value: float | list[float] | None) -> list[float]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


@dataclass(frozen=True)
class AnomalyVerdict:
    anomalous: bool
    lower: float | None
    upper: float | None
    reason: str | None


def detect_anomaly(value: float, past: Iterable[float]) -> AnomalyVerdict:
    """Median ± k·MAD over the last ``ANOMALY_WINDOW`` values (k = 3, MAD scaled by 1.4826).

    Needs ``ANOMALY_MIN_HISTORY`` earlier values, else no verdict (not anomalous). When the
    history does not vary (MAD = 0) the population standard deviation is used instead; when
    that is 0 too, any value different from the constant is an anomaly.
    """
    window = list(past)[:ANOMALY_WINDOW]
    if len(window) < ANOMALY_MIN_HISTORY:
        return AnomalyVerdict(False, None, None, f"needs {ANOMALY_MIN_HISTORY} earlier runs, has {len(window)}")
    median = statistics.median(window)
    scale = 1.4826 * statistics.median(abs(v - median) for v in window)
    if scale == 0:
        scale = statistics.pstdev(window)
    lower, upper = median - ANOMALY_K * scale, median + ANOMALY_K * scale
    anomalous = not (lower <= value <= upper)
    reason = f"{value:g} is outside the expected range [{lower:g}, {upper:g}]" if anomalous else None
    return AnomalyVerdict(anomalous, lower, upper, reason)
