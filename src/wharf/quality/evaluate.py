"""Evaluate a DQDL ruleset against a table, a ref, a registered name or a query, through ``lake.sql``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from wharf.quality.history import MetricHistory
from wharf.quality.model import Ruleset
from wharf.quality.result import QualityResult

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse


def evaluate(
    lake: Lakehouse,
    source: str,
    ruleset: Ruleset | str,
    *,
    row_level: bool = False,
    history: MetricHistory | None = None,
    aliases: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> QualityResult:
    """Evaluate ``ruleset`` on ``source`` and return every rule's outcome and the metrics.

    ``source``: a table reference (``db.t``, ``db.t.branch_stg``, ``db.t.tag_x``,
    ``db.t FOR VERSION AS OF 123``), a name registered with ``lake.register``, or a query
    (``SELECT …`` / ``WITH …``). Rules read it through ``lake.sql``, so time travel, branches,
    views and governance apply. ``history`` gives earlier values of metrics for dynamic rules
    and DetectAnomalies; ``aliases`` maps DQDL dataset aliases (``reference``) to table names
    (overriding ``DataSources``); ``now`` fixes the clock for ``now()`` and DataFreshness.
    ``row_level=True`` also builds ``result.row_level_sql`` and enables ``result.rows()``.
    """
    raise NotImplementedError("evaluation lands in the next commit")
