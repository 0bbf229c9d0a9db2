"""Each rule type compiled: the metrics it asks the ``MetricBook`` for, and how its outcome is decided.

Compiling happens in two steps so every rule's metrics share the same scans: ``compile_rule``
registers metrics and returns a *thunk*; after the book's passes ran, calling the thunk reads
the metrics and decides Passed / Failed / Error. Row-level rules also give a SQL predicate per
row (``row_test``) used both for their compliance ratio and for the row-level outcome columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from wharf.errors import WharfError
from wharf.quality.catalogue import RULE_TYPES
from wharf.quality.conditions import (
    check,
    describe_bounds,
    row_predicate,
    sql_ident,
    sql_string,
    timestamp_literal,
)
from wharf.quality.history import (
    InsufficientHistory,
    MetricHistory,
    detect_anomaly,
    evaluate_number,
    uses_history,
)
from wharf.quality.metrics import MetricBook, MetricError
from wharf.quality.model import Composite, Condition, Keyword, Rule, RuleNode, String
from wharf.quality.result import ERROR, FAILED, PASSED

# Glue's type names for ColumnDataType, and the DuckDB type a string value must cast to.
GLUE_TYPES = {
    "STRING": "VARCHAR",
    "BOOLEAN": "BOOLEAN",
    "BYTE": "TINYINT",
    "SHORT": "SMALLINT",
    "INTEGER": "INTEGER",
    "INT": "INTEGER",
    "LONG": "BIGINT",
    "BIGINT": "BIGINT",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "DECIMAL": "DECIMAL(38, 10)",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
}


class RuleError(Exception):
    """The rule cannot be evaluated as written (a missing column, a bad reference): outcome Error."""


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    note: str | None = None


Thunk = Callable[[], Outcome]


@dataclass
class Context:
    """What compiling a rule needs to know about the evaluation."""

    book: MetricBook
    schema: pa.Schema
    now: datetime
    history: MetricHistory | None
    dataset: Callable[[str], str]  # alias or table name -> a SELECT over it
    source: str
    row_composites: bool = False
    checked_wheres: set[str] = field(default_factory=set)

    def column(self, name: str) -> str:
        """The column as the source spells it; a missing column is a RuleError naming the others."""
        if name in self.schema.names:
            return name
        folded = [n for n in self.schema.names if n.lower() == name.lower()]
        if folded:
            return folded[0]
        raise RuleError(f'Column "{name}" does not exist in {self.source} (columns: {", ".join(self.schema.names)})')

    def type_of(self, name: str) -> pa.DataType:
        return self.schema.field(self.column(name)).type

    def check_where(self, where: str) -> None:
        """Bind ``where`` against the source without reading it, so a bad predicate fails only its rule."""
        if where in self.checked_wheres:
            return
        probe = f'{self.book.cte} SELECT count(*) FROM (SELECT * FROM "primary" LIMIT 0) AS __dq_probe WHERE ({where})'
        try:
            self.book.lake.sql(probe).fetchall()
        except WharfError as exc:
            raise RuleError(f'Invalid where clause "{where}": {exc.message.splitlines()[0]}') from exc
        self.checked_wheres.add(where)

    def past(self, metric: str) -> list[float]:
        return self.history.values(metric) if self.history is not None else []


def where_suffix(where: str | None) -> str:
    return f".where({where})" if where else ""


def where_filter(where: str | None) -> str:
    return f" FILTER (WHERE coalesce(({where}), FALSE))" if where else ""


def _cols(params: tuple[str, ...], ctx: Context) -> tuple[str, ...]:
    return tuple(ctx.column(p) for p in params)


def _metric_subject(columns: tuple[str, ...]) -> str:
    return f"Column.{columns[0]}" if len(columns) == 1 else f"Multicolumn.{','.join(columns)}"


# --- measures: the metric each rule type computes ----------------------------------------------

SIMPLE_AGGREGATES = {
    "Mean": "avg({c})",
    "Sum": "sum({c})",
    "StandardDeviation": "stddev_pop({c})",
    "Variance": "var_pop({c})",
}
GROUP_MEASURES = {
    "Uniqueness": "uniqueness",
    "UniqueValueRatio": "unique_ratio",
    "DistinctValuesCount": "distinct",
    "Entropy": "entropy",
}


def measure(rule_type: str, params: tuple[str, ...], where: str | None, ctx: Context) -> str:
    """Register the main metric of ``rule_type`` on ``params``; returns its (Glue-style) name."""
    book, sfx, filt = ctx.book, where_suffix(where), where_filter(where)
    if rule_type == "RowCount":
        return book.aggregate(f"Dataset.*.RowCount{sfx}", f"count(*){filt}")
    if rule_type == "ColumnCount":
        return book.constant("Dataset.*.ColumnCount", float(len(ctx.schema)))
    if rule_type in ("Completeness", "IsComplete"):
        (c,) = _cols(params[:1], ctx)
        return book.aggregate(
            f"Column.{c}.Completeness{sfx}",
            f"coalesce(count({sql_ident(c)}){filt} / nullif(count(*){filt}, 0), 1.0)",
        )
    if rule_type in SIMPLE_AGGREGATES:
        (c,) = _cols(params[:1], ctx)
        sql = SIMPLE_AGGREGATES[rule_type].format(c=sql_ident(c))
        return book.aggregate(f"Column.{c}.{rule_type}{sfx}", sql + filt)
    if rule_type == "ColumnCorrelation":
        a, b = _cols(params[:2], ctx)
        return book.aggregate(f"Multicolumn.{a},{b}.ColumnCorrelation{sfx}", f"corr({sql_ident(a)}, {sql_ident(b)}){filt}")
    if rule_type in GROUP_MEASURES or rule_type == "IsUnique":
        kind = GROUP_MEASURES.get(rule_type, "uniqueness")
        name = "Uniqueness" if rule_type == "IsUnique" else rule_type
        columns = _cols(params, ctx)
        return book.group(f"{_metric_subject(columns)}.{name}{sfx}", columns, where, kind)
    if rule_type == "DuplicateRowCount":
        return book.group(f"Dataset.*.DuplicateRowCount{sfx}", tuple(ctx.schema.names), where, "duplicates")
    if rule_type == "ColumnLength":
        (c,) = _cols(params[:1], ctx)
        return book.aggregate(f"Column.{c}.MaximumLength{sfx}", f"max(length(CAST({sql_ident(c)} AS VARCHAR))){filt}")
    raise RuleError(f"{rule_type} has no metric to measure")


# --- deciding number conditions ----------------------------------------------------------------


def judge(condition: Condition, value: float | None, metric: str, ctx: Context, metrics: dict[str, float]) -> Outcome:
    """Decide a number condition on a metric value, resolving dynamic operands over the history."""
    dynamic = any(uses_history(o) for o in condition.operands)
    past = ctx.past(metric) if dynamic else []
    try:
        bounds: list[float | None] = []
        for operand in condition.operands:
            if isinstance(operand, Keyword):
                bounds.append(None)
                continue
            resolved = evaluate_number(operand, past)  # type: ignore[arg-type]
            if isinstance(resolved, list):
                raise RuleError(f"'{operand}' is a list of values; reduce it with avg, min, max, std or index")
            bounds.append(resolved)
    except InsufficientHistory as exc:
        return Outcome(PASSED, None, metrics, note=f"dynamic rule not checked yet: {exc}")
    if check(value, condition, bounds):
        return Outcome(PASSED, None, metrics)
    shown = "NULL" if value is None else f"{value:g}"
    reason = f"Value: {shown} does not meet the constraint requirement!"
    if dynamic:
        reason += f" (condition evaluated as {describe_bounds(condition, bounds)})"
    return Outcome(FAILED, reason, metrics)


def _metrics(ctx: Context, *names: str) -> dict[str, float]:
    out = {}
    for name in names:
        value = ctx.book.value(name)
        if value is not None:
            out[name] = value
    return out


def number_rule(rule: Rule, ctx: Context, metric: str) -> Thunk:
    condition = rule.condition
    assert condition is not None

    def run() -> Outcome:
        value = ctx.book.value(metric)
        return judge(condition, value, metric, ctx, _metrics(ctx, metric))

    return run


# --- row-level tests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RowTest:
    """A per-row SQL predicate (never NULL). ``windowed`` ones cannot sit inside an aggregate."""

    sql: str
    windowed: bool = False


def _value_expr(column: str, kind: str, ctx: Context) -> str:
    ident, dtype = sql_ident(column), ctx.type_of(column)
    if kind == "string":
        return ident if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) else f"CAST({ident} AS VARCHAR)"
    if kind == "number":
        numeric = pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
        return ident if numeric else f"TRY_CAST({ident} AS DOUBLE)"
    if kind == "date":
        return f"TRY_CAST({ident} AS TIMESTAMP)"
    raise RuleError(f"a {kind} condition does not apply to column values")


def _timestamp_expr(rule: Rule, column: str, ctx: Context) -> str:
    ident, dtype = sql_ident(column), ctx.type_of(column)
    zone = rule.tag("timeZone")
    if zone and pa.types.is_timestamp(dtype) and dtype.tz is None:
        return f"timezone({sql_string(zone)}, {ident})"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return ident
    return f"TRY_CAST({ident} AS TIMESTAMP)"


def _declared_glue_type(dtype: pa.DataType) -> str | None:
    checks = [
        (pa.types.is_string, "STRING"),
        (pa.types.is_large_string, "STRING"),
        (pa.types.is_boolean, "BOOLEAN"),
        (pa.types.is_int8, "BYTE"),
        (pa.types.is_int16, "SHORT"),
        (pa.types.is_int32, "INTEGER"),
        (pa.types.is_int64, "LONG"),
        (pa.types.is_float32, "FLOAT"),
        (pa.types.is_float64, "DOUBLE"),
        (pa.types.is_decimal, "DECIMAL"),
        (pa.types.is_date, "DATE"),
        (pa.types.is_timestamp, "TIMESTAMP"),
    ]
    return next((name for test, name in checks if test(dtype)), None)


def _data_type_test(rule: Rule, ctx: Context) -> RowTest:
    condition = rule.condition
    assert condition is not None
    column = ctx.column(rule.parameters[0])
    asked = []
    for operand in condition.operands:
        if not isinstance(operand, String) or operand.value.upper() not in GLUE_TYPES:
            raise RuleError(f"ColumnDataType: unknown type {operand}; use one of {', '.join(GLUE_TYPES)}")
        asked.append(operand.value.upper())
    if condition.op not in ("=", "!=", "in", "not in"):
        raise RuleError("ColumnDataType compares with =, !=, in or not in")
    negative = condition.op in ("!=", "not in")
    declared = _declared_glue_type(ctx.type_of(column))
    same = {"INT": "INTEGER", "BIGINT": "LONG"}
    if declared != "STRING" or "STRING" in asked:
        # A typed column: its declared type decides for every row.
        matches = declared in {same.get(a, a) for a in asked}
        return RowTest("TRUE" if matches != negative else "FALSE")
    ident = sql_ident(column)
    castable = " OR ".join(f"TRY_CAST({ident} AS {GLUE_TYPES[a]}) IS NOT NULL" for a in asked)
    return RowTest(f"({ident} IS NULL OR {'NOT ' if negative else ''}({castable}))")


def _reference(spec: str) -> tuple[str, tuple[str, ...]]:
    """``"reference.{a,b}"`` / ``"db.t.id"`` -> (dataset, columns)."""
    if ".{" in spec and spec.endswith("}"):
        dataset, cols = spec.split(".{", 1)
        return dataset, tuple(c.strip() for c in cols[:-1].split(","))
    if "." not in spec:
        raise RuleError(f'"{spec}" names no dataset: write "reference.column" or "db.table.column"')
    dataset, col = spec.rsplit(".", 1)
    return dataset, (col,)


def _primary_columns(spec: str) -> tuple[str, ...]:
    if spec.startswith("primary."):
        spec = spec[len("primary.") :]
    if spec.startswith("{") and spec.endswith("}"):
        return tuple(c.strip() for c in spec[1:-1].split(","))
    return (spec,)


def _exists_in(reference_sql: str, pairs: list[tuple[str, str]], *, null_safe: list[tuple[str, str]] = ()) -> str:  # type: ignore[assignment]
    on = [f'__ref.{sql_ident(r)} = "primary".{sql_ident(p)}' for p, r in pairs]
    on += [f'__ref.{sql_ident(r)} IS NOT DISTINCT FROM "primary".{sql_ident(p)}' for p, r in null_safe]
    return f"EXISTS (SELECT 1 FROM ({reference_sql}) AS __ref WHERE {' AND '.join(on)})"


def _referential_test(rule: Rule, ctx: Context) -> RowTest:
    primary = tuple(ctx.column(c) for c in _primary_columns(rule.parameters[0]))
    dataset, ref_cols = _reference(rule.parameters[1])
    if len(primary) != len(ref_cols):
        raise RuleError(f"ReferentialIntegrity: {len(primary)} primary column(s) but {len(ref_cols)} reference column(s)")
    some_null = " OR ".join(f"{sql_ident(c)} IS NULL" for c in primary)
    return RowTest(f"({some_null} OR {_exists_in(ctx.dataset(dataset), list(zip(primary, ref_cols, strict=True)))})")


def row_test(rule: Rule, ctx: Context) -> RowTest | None:
    """The rule's pass/fail predicate for one row, or None for dataset-level rules."""
    kind = rule.rule_type
    if kind in ("IsComplete", "Completeness"):
        return RowTest(f"({sql_ident(ctx.column(rule.parameters[0]))} IS NOT NULL)")
    if kind == "ColumnValues":
        assert rule.condition is not None
        column = ctx.column(rule.parameters[0])
        return RowTest(row_predicate(_value_expr(column, rule.condition.kind, ctx), rule.condition, ctx.now))
    if kind == "ColumnLength":
        assert rule.condition is not None
        if any(uses_history(o) for o in rule.condition.operands):
            raise RuleError("ColumnLength compares each value's length: dynamic values (last, avg, …) do not apply")
        length = f"length(coalesce(CAST({sql_ident(ctx.column(rule.parameters[0]))} AS VARCHAR), ''))"
        return RowTest(row_predicate(length, rule.condition, ctx.now))
    if kind == "DataFreshness":
        assert rule.condition is not None
        column = ctx.column(rule.parameters[0])
        age = f"(epoch({timestamp_literal(ctx.now)}) - epoch({_timestamp_expr(rule, column, ctx)}))"
        return RowTest(row_predicate(age, rule.condition, ctx.now))
    if kind == "ColumnDataType":
        return _data_type_test(rule, ctx)
    if kind in ("IsUnique", "Uniqueness", "IsPrimaryKey"):
        columns = _cols(rule.parameters, ctx)
        idents = [sql_ident(c) for c in columns]
        partition = ", ".join(idents + ([f"coalesce(({rule.where}), FALSE)"] if rule.where else []))
        joiner = " OR " if kind != "IsPrimaryKey" else " AND "
        present = joiner.join(f"{i} IS NOT NULL" for i in idents)
        return RowTest(f"(({present}) AND count(*) OVER (PARTITION BY {partition}) = 1)", windowed=True)
    if kind == "ReferentialIntegrity":
        return _referential_test(rule, ctx)
    return None


def share_sql(predicate: str, where: str | None) -> str:
    """Share of rows (within ``where``) satisfying ``predicate``; 1.0 when there are none.

    Counted with aggregate FILTERs: far cheaper than averaging a CASE of decimals.
    """
    scope = f"coalesce(({where}), FALSE)" if where else None
    passing = f"({predicate}) AND {scope}" if scope else predicate
    total = f"count(*) FILTER (WHERE {scope})" if scope else "count(*)"
    return f"coalesce(count(*) FILTER (WHERE {passing}) / nullif({total}, 0), 1.0)"


def compliance_metric(rule: Rule, test: RowTest, ctx: Context) -> str:
    """Share of rows (within the where clause) passing ``test``; 1.0 when there are no rows."""
    column = rule.parameters[0] if rule.parameters else "*"
    base = f"Column.{column}.{rule.rule_type}.Compliance{where_suffix(rule.where)}"
    sql = share_sql(test.sql, rule.where)
    if ctx.book.aggregates.get(base, sql) != sql:
        base = f"{base}[{rule.condition}]"  # another rule on the column holds the plain name
    return ctx.book.aggregate(base, sql)


def compliance_rule(rule: Rule, ctx: Context, extra: tuple[str, ...] = ()) -> Thunk:
    test = row_test(rule, ctx)
    assert test is not None and not test.windowed
    metric = compliance_metric(rule, test, ctx)

    def run() -> Outcome:
        value = ctx.book.value(metric)
        metrics = _metrics(ctx, metric, *extra)
        if rule.threshold is not None:
            return judge(rule.threshold, value, metric, ctx, metrics)
        if value == 1.0:
            return Outcome(PASSED, None, metrics)
        failed = 1.0 - (value or 0.0)
        return Outcome(FAILED, f"{failed:.2%} of rows failed the rule (compliance {value:g}, expected 1)", metrics)

    return run


# --- rule types ----------------------------------------------------------------------------------


def _metric_rule(rule: Rule, ctx: Context) -> Thunk:
    return number_rule(rule, ctx, measure(rule.rule_type, rule.parameters, rule.where, ctx))


def _is_complete(rule: Rule, ctx: Context) -> Thunk:
    metric = measure("Completeness", rule.parameters, rule.where, ctx)

    def run() -> Outcome:
        value = ctx.book.value(metric)
        if value == 1.0:
            return Outcome(PASSED, None, _metrics(ctx, metric))
        return Outcome(FAILED, f"Value: {value:g} does not meet the constraint requirement!", _metrics(ctx, metric))

    return run


def _is_unique(rule: Rule, ctx: Context) -> Thunk:
    metric = measure("Uniqueness", rule.parameters, rule.where, ctx)
    completeness = (
        [measure("Completeness", (c,), rule.where, ctx) for c in rule.parameters] if rule.rule_type == "IsPrimaryKey" else []
    )

    def run() -> Outcome:
        metrics = _metrics(ctx, metric, *completeness)
        incomplete = [m for m in completeness if ctx.book.value(m) != 1.0]
        if incomplete:
            return Outcome(FAILED, f"Key has NULL values: {', '.join(incomplete)} below 1", metrics)
        value = ctx.book.value(metric)
        if value == 1.0:
            return Outcome(PASSED, None, metrics)
        return Outcome(FAILED, f"Value: {value:g} does not meet the constraint requirement!", metrics)

    return run


def _column_exists(rule: Rule, ctx: Context) -> Thunk:
    name = rule.parameters[0]
    found = name in ctx.schema.names or any(n.lower() == name.lower() for n in ctx.schema.names)
    return lambda: Outcome(PASSED) if found else Outcome(FAILED, f'Column "{name}" does not exist in {ctx.source}')


def _names_match(rule: Rule, ctx: Context) -> Thunk:
    pattern = rule.parameters[0]
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise RuleError(f"Invalid regular expression {pattern!r}: {exc}") from exc
    bad = [n for n in ctx.schema.names if not compiled.fullmatch(n)]
    if not bad:
        return lambda: Outcome(PASSED)
    return lambda: Outcome(FAILED, f"Columns not matching {pattern!r}: {', '.join(bad)}")


def _column_values(rule: Rule, ctx: Context) -> Thunk:
    return compliance_rule(rule, ctx)


def _column_length(rule: Rule, ctx: Context) -> Thunk:
    (c,) = _cols(rule.parameters, ctx)
    filt, sfx = where_filter(rule.where), where_suffix(rule.where)
    length = f"length(CAST({sql_ident(c)} AS VARCHAR))"
    low = ctx.book.aggregate(f"Column.{c}.MinimumLength{sfx}", f"min({length}){filt}")
    high = ctx.book.aggregate(f"Column.{c}.MaximumLength{sfx}", f"max({length}){filt}")
    return compliance_rule(rule, ctx, extra=(low, high))


def _custom_sql(rule: Rule, ctx: Context) -> Thunk:
    statement = rule.parameters[0].strip().rstrip(";")
    if not re.match(r"(?is)^\s*(select|with)\b", statement):
        raise RuleError("CustomSql takes a SELECT (or WITH …) statement over primary")
    query = f"{ctx.book.cte} SELECT * FROM ({statement}) AS __custom"
    if rule.condition is not None:
        condition = rule.condition
        metric = "Dataset.*.CustomSQL"

        def scalar() -> float | None:
            rows = ctx.book.run_query(query)
            if len(rows) != 1 or len(rows[0]) != 1:
                raise MetricError("CustomSql with a condition must return one row with one number")
            value = rows[0][0]
            if value is not None and not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
                raise MetricError(f"CustomSql returned {value!r}, not a number")
            return None if value is None else float(value)

        key = ctx.book.deferred(f"{metric}[{statement}]", scalar, query)

        def run() -> Outcome:
            value = ctx.book.value(key)
            metrics = {metric: value} if value is not None else {}
            return judge(condition, value, key, ctx, metrics)

        return run
    rows_metric = measure("RowCount", (), None, ctx)
    key = f"Dataset.*.CustomSQL.Compliance[{statement}]"

    def ratio() -> float | None:
        returned = ctx.book.run_query(f"{ctx.book.cte} SELECT count(*) FROM ({statement}) AS __custom")[0][0]
        total = ctx.book.value(rows_metric)
        return 1.0 if not total else float(returned) / total

    key = ctx.book.deferred(key, ratio, f"rows:{statement}")

    def run_rows() -> Outcome:
        value = ctx.book.value(key)
        metrics = {"Dataset.*.CustomSQL.Compliance": value} if value is not None else {}
        if rule.threshold is not None:
            return judge(rule.threshold, value, key, ctx, metrics)
        if value == 1.0:
            return Outcome(PASSED, None, metrics)
        return Outcome(FAILED, f"The query returned {value:.2%} of the rows, expected all", metrics)

    return run_rows


def _referential(rule: Rule, ctx: Context) -> Thunk:
    test = _referential_test(rule, ctx)
    primary = _primary_columns(rule.parameters[0])

    def compute() -> float | None:
        present = " AND ".join(f"{sql_ident(c)} IS NOT NULL" for c in primary)
        sql = (
            f'{ctx.book.cte} SELECT coalesce(avg(CASE WHEN {test.sql} THEN 1.0 ELSE 0.0 END), 1.0) FROM "primary" WHERE {present}'
        )
        return float(ctx.book.run_query(sql)[0][0])

    metric = ctx.book.deferred(f"Column.{rule.parameters[1]}.ReferentialIntegrity", compute, test.sql)
    return number_rule(rule, ctx, metric)


def _mapping(spec: str) -> list[tuple[str, str]]:
    pairs = []
    for item in spec.split(","):
        left, _, right = item.strip().partition("->")
        pairs.append((left.strip(), (right or left).strip()))
    return pairs


def _reference_schema(sql: str, ctx: Context) -> pa.Schema:
    ctx.book.queries.append(f"SELECT * FROM ({sql}) LIMIT 0")
    return ctx.book.lake.sql(f"SELECT * FROM ({sql}) AS __ref LIMIT 0").schema


def _dataset_match(rule: Rule, ctx: Context) -> Thunk:
    alias = rule.parameters[0]
    reference = ctx.dataset(alias)
    keys = [(ctx.column(p), r) for p, r in _mapping(rule.parameters[1])]

    def compute() -> float | None:
        if len(rule.parameters) > 2:
            matches = [(ctx.column(p), r) for p, r in _mapping(rule.parameters[2])]
        else:
            ref_names = {n.lower(): n for n in _reference_schema(reference, ctx).names}
            key_names = {p.lower() for p, _ in keys}
            matches = [(n, ref_names[n.lower()]) for n in ctx.schema.names if n.lower() in ref_names.keys() - key_names]
        exists = _exists_in(reference, keys, null_safe=matches)
        sql = f'{ctx.book.cte} SELECT coalesce(avg(CASE WHEN {exists} THEN 1.0 ELSE 0.0 END), 1.0) FROM "primary"'
        return float(ctx.book.run_query(sql)[0][0])

    metric = ctx.book.deferred(f"Dataset.{alias}.DatasetMatch", compute, f"{reference}|{rule.parameters[1:]}")
    return number_rule(rule, ctx, metric)


def _row_count_match(rule: Rule, ctx: Context) -> Thunk:
    alias = rule.parameters[0]
    reference = ctx.dataset(alias)
    rows = measure("RowCount", (), None, ctx)

    def compute() -> float | None:
        other = ctx.book.run_query(f"SELECT count(*) FROM ({reference}) AS __ref", scans=0)[0][0]
        mine = ctx.book.value(rows) or 0.0
        return (1.0 if mine == 0 else None) if not other else mine / float(other)

    metric = ctx.book.deferred(f"Dataset.{alias}.RowCountMatch", compute, reference)
    return number_rule(rule, ctx, metric)


def _schema_match(rule: Rule, ctx: Context) -> Thunk:
    alias = rule.parameters[0]
    reference = ctx.dataset(alias)

    def compute() -> float | None:
        theirs = {f.name.lower(): f.type for f in _reference_schema(reference, ctx)}
        mine = {f.name.lower(): f.type for f in ctx.schema}
        same = sum(1 for name, dtype in mine.items() if theirs.get(name) == dtype)
        return same / max(len(mine), len(theirs), 1)

    metric = ctx.book.deferred(f"Dataset.{alias}.SchemaMatch", compute, reference)
    return number_rule(rule, ctx, metric)


AGGREGATE_RE = re.compile(r"^\s*(sum|avg|count|min|max)\s*\(\s*([^()]+?)\s*\)\s*$", re.IGNORECASE)


def _aggregate_side(expr: str, ctx: Context, index: int) -> str:
    found = AGGREGATE_RE.match(expr)
    if not found:
        raise RuleError(f"AggregateMatch: '{expr}' is not sum(col), avg(col), count(col), min(col) or max(col)")
    func, target = found.group(1).lower(), found.group(2)
    dataset, column = target.rsplit(".", 1) if "." in target else ("primary", target)
    if dataset == "primary":
        column_sql = "*" if column == "*" else sql_ident(ctx.column(column))
        return ctx.book.aggregate(f"Dataset.*.AggregateMatch.{expr.strip()}", f"{func}({column_sql})")
    reference = ctx.dataset(dataset)
    column_sql = "*" if column == "*" else sql_ident(column)
    name = f"Dataset.{dataset}.AggregateMatch.{expr.strip()}"

    def compute() -> float | None:
        value = ctx.book.run_query(f"SELECT {func}({column_sql}) FROM ({reference}) AS __ref", scans=0)[0][0]
        return None if value is None else float(value)

    return ctx.book.deferred(name, compute, f"{func}|{column_sql}|{reference}")


def _aggregate_match(rule: Rule, ctx: Context) -> Thunk:
    first = _aggregate_side(rule.parameters[0], ctx, 0)
    second = _aggregate_side(rule.parameters[1], ctx, 1)

    def compute() -> float | None:
        a, b = ctx.book.value(first), ctx.book.value(second)
        if a is None or b is None:
            return None
        return 1.0 if a == b else (a / b if b else None)

    metric = ctx.book.deferred(
        f"Dataset.*.AggregateMatch[{rule.parameters[0]}, {rule.parameters[1]}]", compute, f"{first}|{second}"
    )
    return number_rule(rule, ctx, metric)


def _detect_anomalies(rule: Rule, ctx: Context) -> Thunk:
    inner_type, params = rule.parameters[0], rule.parameters[1:]
    if inner_type not in RULE_TYPES or not RULE_TYPES[inner_type].analyzer:
        raise RuleError(f"DetectAnomalies cannot watch {inner_type}: it has no metric")
    metric = measure(inner_type, params, None, ctx)

    def run() -> Outcome:
        value = ctx.book.value(metric)
        metrics = _metrics(ctx, metric)
        if value is None:
            return Outcome(FAILED, f"{metric} is NULL", metrics)
        verdict = detect_anomaly(value, ctx.past(metric))
        if verdict.lower is None:
            return Outcome(PASSED, None, metrics, note=f"anomaly detection not checked yet: {verdict.reason}")
        metrics = {**metrics, f"{metric}.LowerBound": verdict.lower, f"{metric}.UpperBound": verdict.upper or 0.0}
        if verdict.anomalous:
            return Outcome(FAILED, f"Anomaly detected on {metric}: {verdict.reason}", metrics)
        return Outcome(PASSED, None, metrics)

    return run


def _data_type(rule: Rule, ctx: Context) -> Thunk:
    return compliance_rule(rule, ctx)


def _data_freshness(rule: Rule, ctx: Context) -> Thunk:
    return compliance_rule(rule, ctx)


COMPILERS: Mapping[str, Callable[[Rule, Context], Thunk]] = {
    "RowCount": _metric_rule,
    "ColumnCount": _metric_rule,
    "Completeness": _metric_rule,
    "Uniqueness": _metric_rule,
    "UniqueValueRatio": _metric_rule,
    "DistinctValuesCount": _metric_rule,
    "Entropy": _metric_rule,
    "Mean": _metric_rule,
    "Sum": _metric_rule,
    "StandardDeviation": _metric_rule,
    "Variance": _metric_rule,
    "ColumnCorrelation": _metric_rule,
    "DuplicateRowCount": _metric_rule,
    "IsComplete": _is_complete,
    "IsUnique": _is_unique,
    "IsPrimaryKey": _is_unique,
    "ColumnExists": _column_exists,
    "ColumnNamesMatchPattern": _names_match,
    "ColumnDataType": _data_type,
    "ColumnValues": _column_values,
    "ColumnLength": _column_length,
    "DataFreshness": _data_freshness,
    "CustomSql": _custom_sql,
    "ReferentialIntegrity": _referential,
    "DatasetMatch": _dataset_match,
    "RowCountMatch": _row_count_match,
    "SchemaMatch": _schema_match,
    "AggregateMatch": _aggregate_match,
    "DetectAnomalies": _detect_anomalies,
}


def guarded(thunk: Thunk) -> Thunk:
    """Turn a failure to compute into outcome Error (the rule, not the evaluation, fails)."""

    def run() -> Outcome:
        try:
            return thunk()
        except (RuleError, MetricError) as exc:
            return Outcome(ERROR, str(exc))

    return run


def compile_rule(rule: Rule, ctx: Context) -> Thunk:
    """Register the metrics ``rule`` needs and return the thunk that decides it."""
    rule_type = RULE_TYPES[rule.rule_type]
    if rule_type.scope == "file":
        reason = f"{rule.rule_type} is a file rule: not applicable to tables (Wharf evaluates tables and queries)"
        return lambda: Outcome(ERROR, reason)
    try:
        if rule.where:
            ctx.check_where(rule.where)
        return guarded(COMPILERS[rule.rule_type](rule, ctx))
    except (RuleError, MetricError) as exc:
        message = str(exc)
        return lambda: Outcome(ERROR, message)


# --- composites ----------------------------------------------------------------------------------


def combine(op: str, outcomes: list[Outcome]) -> Outcome:
    """Dataset-wise composite: and = all passed, or = any passed; Error when nothing decided."""
    metrics = {k: v for o in outcomes for k, v in o.metrics.items()}
    reasons = [o.reason for o in outcomes if o.reason]
    if op == "and":
        if all(o.outcome == PASSED for o in outcomes):
            return Outcome(PASSED, None, metrics)
        state = FAILED if any(o.outcome == FAILED for o in outcomes) else ERROR
    else:
        if any(o.outcome == PASSED for o in outcomes):
            return Outcome(PASSED, None, metrics)
        state = FAILED if any(o.outcome == FAILED for o in outcomes) else ERROR
    return Outcome(state, "; ".join(reasons) or None, metrics)


def composite_row_test(node: RuleNode, ctx: Context) -> RowTest | None:
    """The per-row predicate of a composite, or None if a member has no row-level form."""
    if isinstance(node, Rule):
        test = row_test(node, ctx)
        if test is None:
            return None
        if node.where:
            return RowTest(f"(NOT coalesce(({node.where}), FALSE) OR {test.sql})", test.windowed)
        return test
    parts = [composite_row_test(r, ctx) for r in node.rules]
    if any(p is None for p in parts):
        return None
    tests = [p for p in parts if p is not None]
    joiner = " AND " if node.op == "and" else " OR "
    return RowTest("(" + joiner.join(t.sql for t in tests) + ")", any(t.windowed for t in tests))


def leaves(node: RuleNode) -> list[Rule]:
    if isinstance(node, Rule):
        return [node]
    return [leaf for r in node.rules for leaf in leaves(r)]


def compile_node(node: RuleNode, ctx: Context) -> Thunk:
    if isinstance(node, Rule):
        return compile_rule(node, ctx)
    if ctx.row_composites:
        return _row_composite(node, ctx)
    children = [compile_node(r, ctx) for r in node.rules]
    return lambda: combine(node.op, [c() for c in children])


def _row_composite(node: Composite, ctx: Context) -> Thunk:
    from wharf.quality.catalogue import EXCLUDED_FROM_ROW_COMPOSITES

    excluded = [r.rule_type for r in leaves(node) if r.rule_type in EXCLUDED_FROM_ROW_COMPOSITES]
    try:
        test = None if excluded else composite_row_test(node, ctx)
    except RuleError as exc:
        message = str(exc)
        return lambda: Outcome(ERROR, message)
    if test is None or test.windowed:
        members = ", ".join(excluded) or "a member"
        reason = f"Row-wise composite evaluation is not possible: {members} has no row-level outcome"
        return lambda: Outcome(ERROR, reason)
    metric = ctx.book.aggregate(f"Dataset.*.CompositeRule.Compliance[{node}]", share_sql(test.sql, None))

    def run() -> Outcome:
        value = ctx.book.value(metric)
        metrics = _metrics(ctx, metric)
        if value == 1.0:
            return Outcome(PASSED, None, metrics)
        return Outcome(FAILED, f"{1.0 - (value or 0.0):.2%} of rows failed the composite rule row-wise", metrics)

    return guarded(run)
