"""Evaluate a DQDL ruleset against a table, a ref, a registered name or a query, through ``lake.sql``.

Everything is SQL run by ``lake.sql`` over one CTE named ``"primary"`` that reads the source, so
time travel, branches, views and governance (row filters, masks) apply to quality checks exactly
as they apply to queries. Dataset-level metrics are batched (see ``wharf.quality.metrics``);
row-level outcomes are one more query, built as text (``QualityResult.row_level_sql``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from wharf.errors import InvalidArgument
from wharf.quality.catalogue import RULE_TYPES
from wharf.quality.conditions import sql_ident, sql_string
from wharf.quality.history import MetricHistory
from wharf.quality.metrics import MetricBook, MetricError
from wharf.quality.model import Analyzer, Rule, RuleNode, Ruleset
from wharf.quality.parser import parse
from wharf.quality.result import ERROR, ROW_COLUMNS, AnalyzerResult, QualityResult, RuleResult
from wharf.quality.rules import (
    Context,
    RowTest,
    RuleError,
    compile_node,
    composite_row_test,
    measure,
    row_test,
)

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse

QUERY_RE = re.compile(r"(?is)^\s*\(?\s*(select|with|from|values)\b")


def source_select(source: str) -> str:
    """A SELECT over ``source``: a query is kept as written, a table reference is wrapped."""
    text = source.strip().rstrip(";")
    if not text:
        raise InvalidArgument("Empty data quality source", hint="name a table (db.t, db.t.branch_stg) or give a query")
    if QUERY_RE.match(text):
        return text
    return f"SELECT * FROM {text}"


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

    A rule that cannot be evaluated (missing column, bad where clause, file rule) gets outcome
    ``Error`` with the reason; the others are still evaluated.
    """
    parsed = parse(ruleset) if isinstance(ruleset, str) else ruleset
    clock = now or datetime.now(UTC)
    cte = f'WITH "primary" AS ({source_select(source)})'
    schema = lake.sql(f'{cte} SELECT * FROM "primary" LIMIT 0').schema
    method = (parsed.option("compositeRuleEvaluation.method") or "COLUMN").upper()
    if method not in ("ROW", "COLUMN"):
        raise InvalidArgument(
            f"compositeRuleEvaluation.method is {method!r}", hint='use "ROW" (row-wise) or "COLUMN" (dataset-wise)'
        )
    mapping: dict[str, str] = {
        k: v for k, v in parsed.data_sources.items() if isinstance(v, str) and k not in ("Primary", "primary")
    }
    mapping.update(aliases or {})

    def dataset(alias: str) -> str:
        if alias.lower() == "primary":
            return 'SELECT * FROM "primary"'
        return source_select(mapping.get(alias, alias))

    book = MetricBook(lake, cte)
    ctx = Context(book, schema, clock, history, dataset, source, row_composites=method == "ROW")
    thunks = [(node, compile_node(node, ctx)) for node in parsed.rules]
    analyzer_metrics = [(a, _register_analyzer(a, ctx)) for a in parsed.analyzers]
    book.compute()

    defaults = dict(parsed.default_labels)
    results: list[RuleResult] = []
    for node, thunk in thunks:
        outcome = thunk()
        labels = {**defaults, **dict(node.labels)} if isinstance(node, Rule) else dict(defaults)
        results.append(RuleResult(str(node), outcome.outcome, outcome.reason, outcome.metrics, labels, outcome.note))
    analyzers = []
    for analyzer, names in analyzer_metrics:
        values: dict[str, float] = {}
        for name in names:
            try:
                value = book.value(name)
            except MetricError:
                continue
            if value is not None:
                values[name] = value
        analyzers.append(AnalyzerResult(str(analyzer), values))
    metrics = {name: value for name, value in book.values.items() if value is not None}
    errored = {r.rule for r in results if r.outcome == ERROR}
    sql = row_level_sql(parsed, ctx, errored) if row_level else None
    return QualityResult(
        rules=results,
        metrics=metrics,
        analyzers=analyzers,
        source=source,
        row_level_sql=sql,
        scans=book.scans,
        queries=list(book.queries),
        _lake=lake,
    )


def _register_analyzer(analyzer: Analyzer, ctx: Context) -> list[str]:
    try:
        if analyzer.analyzer_type == "AllStatistics":
            return _all_statistics(analyzer.parameters[0], ctx)
        names = [measure(analyzer.analyzer_type, analyzer.parameters, None, ctx)]
        if analyzer.analyzer_type == "ColumnLength":
            column = ctx.column(analyzer.parameters[0])
            names.append(
                ctx.book.aggregate(f"Column.{column}.MinimumLength", f"min(length(CAST({sql_ident(column)} AS VARCHAR)))")
            )
        return names
    except RuleError as exc:
        ctx.book.errors[f"Analyzer.{analyzer}"] = str(exc)
        return [f"Analyzer.{analyzer}"]


def _all_statistics(column: str, ctx: Context) -> list[str]:
    name = ctx.column(column)
    dtype = ctx.type_of(name)
    ident = sql_ident(name)
    names = [measure(kind, (name,), None, ctx) for kind in ("Completeness", "DistinctValuesCount", "Uniqueness")]
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        names += [measure(kind, (name,), None, ctx) for kind in ("Mean", "Sum", "StandardDeviation")]
        names.append(ctx.book.aggregate(f"Column.{name}.Minimum", f"min({ident})"))
        names.append(ctx.book.aggregate(f"Column.{name}.Maximum", f"max({ident})"))
    elif pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        names.append(ctx.book.aggregate(f"Column.{name}.MinimumLength", f"min(length({ident}))"))
        names.append(ctx.book.aggregate(f"Column.{name}.MaximumLength", f"max(length({ident}))"))
    return names


def _state(node: RuleNode, ctx: Context) -> str | None:
    """SQL giving 'P', 'F' or 'S' (skipped: outside the rule's where clause) per row, or None."""
    test: RowTest | None
    try:
        if isinstance(node, Rule):
            if RULE_TYPES[node.rule_type].scope == "file":
                return None
            test = row_test(node, ctx)
        else:
            test = composite_row_test(node, ctx)
    except RuleError:
        return None
    if test is None:
        return None
    if isinstance(node, Rule) and node.where:
        return f"CASE WHEN NOT coalesce(({node.where}), FALSE) THEN 'S' WHEN {test.sql} THEN 'P' ELSE 'F' END"
    return f"CASE WHEN {test.sql} THEN 'P' ELSE 'F' END"


def row_level_sql(ruleset: Ruleset, ctx: Context, errored: set[str] | None = None) -> str:
    """A query over the source giving every row plus Glue's four outcome columns.

    ``DataQualityRulesPass`` / ``Fail`` / ``Skip`` are arrays of rule texts; a rule without a
    row-level form (RowCount, Mean, …) and a row outside a rule's ``where`` are skipped;
    ``DataQualityEvaluationResult`` is 'Failed' when any rule failed on the row.
    """
    errored = errored or set()
    states: list[tuple[str, str | None]] = []
    for node in ruleset.rules:
        text = str(node)
        states.append((text, None if text in errored else _state(node, ctx)))
    row_rules = [(i, text) for i, (text, state) in enumerate(states) if state is not None]
    skipped_always = [text for text, state in states if state is None]

    def array(letter: str) -> str:
        items = [f"CASE WHEN __dq_{i} = '{letter}' THEN {sql_string(text)} END" for i, text in row_rules]
        if letter == "S":
            items += [sql_string(text) for text in skipped_always]
        if not items:
            return "CAST([] AS VARCHAR[])"
        return f"list_filter(CAST([{', '.join(items)}] AS VARCHAR[]), x -> x IS NOT NULL)"

    failed = " OR ".join(f"__dq_{i} = 'F'" for i, _ in row_rules) or "FALSE"
    outputs = [
        f'{array("P")} AS "{ROW_COLUMNS[0]}"',
        f'{array("F")} AS "{ROW_COLUMNS[1]}"',
        f'{array("S")} AS "{ROW_COLUMNS[2]}"',
        f"CASE WHEN {failed} THEN 'Failed' ELSE 'Passed' END AS \"{ROW_COLUMNS[3]}\"",
    ]
    if not row_rules:
        return f'{ctx.book.cte} SELECT *, {", ".join(outputs)} FROM "primary"'
    state_columns = ", ".join(f"{states[i][1]} AS __dq_{i}" for i, _ in row_rules)
    hidden = ", ".join(f"__dq_{i}" for i, _ in row_rules)
    return (
        f"{ctx.book.cte} SELECT * EXCLUDE ({hidden}), {', '.join(outputs)} "
        f'FROM (SELECT *, {state_columns} FROM "primary") AS __dq_rows'
    )
