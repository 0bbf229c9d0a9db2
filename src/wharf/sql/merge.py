"""MERGE INTO t USING src ON … WHEN … (Spark + Iceberg semantics; copy-on-write or merge-on-read).

Clauses: ``WHEN MATCHED [AND c] THEN UPDATE SET …|* | DELETE``, ``WHEN NOT MATCHED [BY TARGET]
[AND c] THEN INSERT (…) VALUES (…)|*``, ``WHEN NOT MATCHED BY SOURCE [AND c] THEN UPDATE SET … |
DELETE``; for each row the first clause whose condition holds applies. A target row matched by
more than one source row is an error (unless the only MATCHED clause is an unconditional DELETE).

The source is materialised once in DuckDB. When ON equates a target column with a source
expression, the target is planned with the source keys (``IN`` for few values, else min/max), so
only files that can hold a matching row are read; NOT MATCHED BY SOURCE clauses add the files
their conditions may select. One join (inner, left, right or full, depending on the clauses)
computes every changed row; ``TargetScan.rewrite`` rewrites exactly the affected files
(copy-on-write) or marks the changed rows in positional delete files (``write.merge.mode`` =
merge-on-read).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from pyiceberg import expressions as ie
from pyiceberg.types import NestedField
from sqlglot import exp

from wharf.errors import SchemaMismatch, UnsupportedStatement
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles
from wharf.sql.pipeline import compile_query
from wharf.sql.update import TargetScan, cardinality_error, statement_result, temp_name
from wharf.tables import predicates
from wharf.tables.rewrite import DELETE, INSERT, OP_COLUMN, UPDATE, any_of, check_unique_targets, key_filter
from wharf.tables.scan import FILE_COLUMN, POS_COLUMN, quote_ident
from wharf.tables.types import iceberg_to_duckdb

SOURCE_MARK = "__wharf_s"
MATCHED_MARK = "__wharf_m"


@dataclass
class Clause:
    """One WHEN clause: ``kind`` is matched / not_matched / not_matched_by_source; ``op`` U, D or I."""

    kind: str
    op: str
    condition: exp.Expression | None
    values: dict[str, exp.Expression]  # target column -> value (already cast)


def _clauses(scan: TargetScan, node: exp.Merge, source_columns: list[str], source_alias: str) -> list[Clause]:
    whens = node.args.get("whens")
    result: list[Clause] = []
    by_lower = {c.lower(): c for c in source_columns}

    def from_source(f: NestedField, what: str) -> exp.Expression:
        name = by_lower.get(f.name.lower())
        if name is None:
            raise SchemaMismatch(
                f"MERGE {what} *: the source has no column '{f.name}' of {scan.target.label}",
                hint=f"the source's columns are: {', '.join(source_columns)}; list the columns explicitly",
            )
        return scan.cast(exp.column(name, table=source_alias, quoted=True), f)

    for when in whens.expressions if whens else []:
        matched = bool(when.args.get("matched"))
        by_source = bool(when.args.get("source"))
        kind = "matched" if matched else "not_matched_by_source" if by_source else "not_matched"
        # Unqualified names: NOT MATCHED BY SOURCE sees only the target, NOT MATCHED only the source.
        scope = {"not_matched_by_source": scan.alias, "not_matched": source_alias}.get(kind)

        def bind(expression: exp.Expression | None, scope: str | None = scope) -> exp.Expression | None:
            return _qualify(scan.normalize(expression), scope)

        condition = bind(when.args.get("condition"))
        then = when.args.get("then")
        values: dict[str, exp.Expression] = {}
        if isinstance(then, exp.Var) and then.name.upper() == "DELETE":
            op = DELETE
        elif isinstance(then, exp.Update):
            op = UPDATE
            if len(then.expressions) == 1 and isinstance(then.expressions[0], exp.Star):
                if kind != "matched":
                    raise UnsupportedStatement("MERGE: UPDATE SET * is only allowed in WHEN MATCHED clauses")
                values = {f.name: from_source(f, "UPDATE SET") for f in scan.schema.fields}
            else:
                for eq in then.expressions:
                    if not isinstance(eq, exp.EQ):
                        raise UnsupportedStatement(f"MERGE: expected 'column = value', got {eq.sql('duckdb')}")
                    f = scan.assignment_target(eq.this, "MERGE")
                    values[f.name] = scan.cast(bind(eq.expression), f)  # type: ignore[arg-type]  # a value is never None
        elif isinstance(then, exp.Insert):
            op = INSERT
            if isinstance(then.this, exp.Star):
                values = {f.name: from_source(f, "INSERT") for f in scan.schema.fields}
            else:
                names = then.this.expressions if isinstance(then.this, exp.Tuple) else None
                given = then.expression.expressions if isinstance(then.expression, exp.Tuple) else []
                fields = (
                    [scan.assignment_target(n, "MERGE INSERT") for n in names] if names is not None else list(scan.schema.fields)
                )
                if len(fields) != len(given):
                    raise SchemaMismatch(
                        f"MERGE INSERT into {scan.target.label} lists {len(fields)} column(s) but {len(given)} value(s)"
                    )
                values = {f.name: scan.cast(bind(v), f) for f, v in zip(fields, given, strict=True)}  # type: ignore[arg-type]  # never None
        else:
            raise UnsupportedStatement(f"MERGE: unsupported action {then.sql('duckdb') if then else '(none)'}")
        if (op == INSERT) != (kind == "not_matched"):
            verb = {INSERT: "INSERT", UPDATE: "UPDATE", DELETE: "DELETE"}[op]
            raise UnsupportedStatement(
                f"MERGE: {verb} is not allowed in a WHEN {kind.upper().replace('_', ' ')} clause",
                hint="WHEN MATCHED / NOT MATCHED BY SOURCE: UPDATE or DELETE; WHEN NOT MATCHED: INSERT",
            )
        result.append(Clause(kind, op, condition, values))
    for earlier, later in itertools.combinations(result, 2):
        if earlier.condition is None and earlier.kind == later.kind:
            raise UnsupportedStatement(
                f"MERGE: a WHEN {earlier.kind.upper().replace('_', ' ')} clause without a condition must be the "
                "last clause of its kind (the ones after it could never apply)",
                hint="add an AND <condition> to it or move it after the others",
            )
    return result


def _qualify(expression: exp.Expression | None, alias: str | None) -> exp.Expression | None:
    """Qualify unqualified columns (outside subqueries) with ``alias``."""
    if expression is None or alias is None:
        return expression
    for col in list(expression.find_all(exp.Column)):
        if not col.table and col.find_ancestor(exp.Select) is None:
            col.set("table", exp.to_identifier(alias, quoted=True))
    return expression


def _case(branches: list[tuple[exp.Expr | None, exp.Expr]], default: exp.Expr) -> exp.Expr:
    """CASE WHEN c1 THEN v1 … ELSE default END; a branch without condition always applies (and ends the list)."""
    case = exp.Case()
    for condition, value in branches:
        if condition is None:
            if not case.args.get("ifs"):
                return value
            return case.else_(value)
        case = case.when(condition, value)
    return case.else_(default) if case.args.get("ifs") else default


def _side_of(col: exp.Column, target: TargetScan, source_alias: str, source_columns: set[str]) -> str | None:
    if col.table:
        lowered = col.table.lower()
        return "t" if lowered == target.alias.lower() else "s" if lowered == source_alias.lower() else None
    in_target = any(f.name.lower() == col.name.lower() for f in target.schema.fields)
    in_source = col.name.lower() in source_columns
    return "t" if in_target and not in_source else "s" if in_source and not in_target else None


def _matched_filter(
    scan: TargetScan, on: exp.Expression, source: str, source_alias: str, source_columns: list[str]
) -> ie.BooleanExpression:
    """Inclusive filter for target rows that can match some source row."""
    lowered = {c.lower() for c in source_columns}
    filters: list[ie.BooleanExpression] = []
    for conjunct in predicates.conjuncts(on):
        if conjunct.find(exp.Subquery, exp.Select):
            continue
        sides = {_side_of(c, scan, source_alias, lowered) for c in conjunct.find_all(exp.Column)}
        if sides == {"t"}:
            filters.append(predicates.to_iceberg(conjunct, scan.schema, lambda c: scan.owns(c, alone=True)))
        elif isinstance(conjunct, exp.EQ):
            for mine, other in ((conjunct.left, conjunct.right), (conjunct.right, conjunct.left)):
                other_sides = {_side_of(c, scan, source_alias, lowered) for c in other.find_all(exp.Column)}
                if isinstance(mine, exp.Column) and _side_of(mine, scan, source_alias, lowered) == "t" and other_sides <= {"s"}:
                    f = scan.field(mine.name, statement="MERGE")
                    filters.append(
                        key_filter(
                            scan.run,
                            f"{source} AS {quote_ident(source_alias)}",
                            f.name,
                            f.field_type,
                            iceberg_to_duckdb(f.field_type),
                            other.sql("duckdb"),
                        )
                    )
                    break
    if any(f == ie.AlwaysFalse() for f in filters):
        return ie.AlwaysFalse()
    return predicates.combine(filters)


@handles(exp.Merge, kind="merge")
def run_merge(ctx: Context, node: exp.Merge) -> Result:
    return merge_into(ctx, TargetScan.of(ctx, node.this), node)


def merge_into(ctx: Context, scan: TargetScan, node: exp.Merge) -> Result:
    """Run ``node`` against an already resolved target (``apply_changes`` resolves it first, to read
    the snapshot it merges into and to stamp the commit)."""
    using = node.args["using"]
    source_alias = using.alias_or_name
    if source_alias.lower() == scan.alias.lower():
        raise UnsupportedStatement(
            f"MERGE: the source and the target are both called '{source_alias}'", hint="give one of them an alias"
        )
    on = scan.normalize(node.args.get("on")) or exp.true()
    with scan.temp_tables() as temps:
        source = temp_name("source")
        temps.append(source)
        rewritten = compile_query(ctx, exp.select("*").from_(using.copy())).sql
        scan.run(f"CREATE TEMP TABLE {source} AS SELECT *, true AS {SOURCE_MARK} FROM ({rewritten})")
        source_columns = [r[0] for r in scan.run(f"DESCRIBE {source}").fetchall() if r[0] != SOURCE_MARK]
        clauses = _clauses(scan, node, source_columns, source_alias)
        kinds = {c.kind for c in clauses}
        if not clauses:
            return statement_result(_counts(0, 0, 0), 0, None)

        # Which target files can be affected: those with possible matches, plus NOT MATCHED BY SOURCE candidates.
        candidates: list[ie.BooleanExpression] = []
        if kinds & {"matched", "not_matched"}:
            candidates.append(_matched_filter(scan, on, source, source_alias, source_columns))
        for clause in clauses:
            if clause.kind == "not_matched_by_source":
                candidates.append(scan.iceberg_filter(clause.condition))
        row_filter = any_of(candidates)
        plan = scan.plan(row_filter)

        matched = [c for c in clauses if c.kind == "matched"]
        inserts = [c for c in clauses if c.kind == "not_matched"]
        by_source = [c for c in clauses if c.kind == "not_matched_by_source"]
        if not plan.files and not inserts:
            return statement_result(_counts(0, 0, 0), 0, None)
        side = {(False, False): None, (True, False): "LEFT", (False, True): "RIGHT", (True, True): "FULL"}[
            (bool(inserts), bool(by_source))
        ]
        is_matched = exp.condition(
            f"{_col(scan.alias, POS_COLUMN)} IS NOT NULL AND {_col(source_alias, SOURCE_MARK)} IS NOT NULL"
        )
        no_source = exp.condition(f"{_col(source_alias, SOURCE_MARK)} IS NULL")
        no_target = exp.condition(f"{_col(scan.alias, POS_COLUMN)} IS NULL")

        def pick(per_clause: list[Clause], value: Callable[[Clause], exp.Expr], default: exp.Expr) -> exp.Expr:
            return _case([(c.condition, value(c)) for c in per_clause], default)

        def combine(m: exp.Expr, s: exp.Expr, i: exp.Expr) -> exp.Expr:
            branches: list[tuple[exp.Expr | None, exp.Expr]] = []
            if matched:
                branches.append((is_matched.copy(), m))
            if by_source:
                branches.append((no_source.copy(), s))
            if inserts:
                branches.append((no_target.copy(), i))
            return _case(branches, exp.null())

        op = combine(
            pick(matched, lambda c: exp.Literal.string(c.op), exp.null()),
            pick(by_source, lambda c: exp.Literal.string(c.op), exp.null()),
            pick(inserts, lambda c: exp.Literal.string(c.op), exp.null()),
        )

        def kept(name: str, own: exp.Expr) -> Callable[[Clause], exp.Expr]:
            # A deleted row's values are never written: NULL keeps the joined table small.
            return lambda c: exp.null() if c.op == DELETE else c.values.get(name, own)

        def inserted(name: str) -> Callable[[Clause], exp.Expr]:
            return lambda c: c.values.get(name, exp.null())

        columns = []
        for f in scan.schema.fields:
            own = scan.column(f.name)
            value = combine(
                pick(matched, kept(f.name, own), own),
                pick(by_source, kept(f.name, own), own),
                pick(inserts, inserted(f.name), exp.null()),
            )
            columns.append(exp.alias_(scan.cast(value, f), f.name, quoted=True))
        query = exp.select(
            exp.column(FILE_COLUMN, table=scan.alias, quoted=True),
            exp.column(POS_COLUMN, table=scan.alias, quoted=True),
            exp.alias_(op, OP_COLUMN),
            exp.alias_(is_matched.copy(), MATCHED_MARK),
            *columns,
        ).from_(
            exp.Table(this=exp.to_identifier(source), alias=exp.TableAlias(this=exp.to_identifier(source_alias, quoted=True)))
        )
        query.append("joins", exp.Join(this=scan.relation(), side=side, on=on.copy()))
        # As in Spark: a target row may match several source rows only if all they can do is delete it.
        check_cardinality = bool(matched) and not (len(matched) == 1 and matched[0].op == DELETE and matched[0].condition is None)
        joined = temp_name("joined")
        temps.append(joined)
        keep = f"{OP_COLUMN} IS NOT NULL" + (f" OR {MATCHED_MARK}" if check_cardinality else "")
        scan.run(f"CREATE TEMP TABLE {joined} AS SELECT * FROM ({scan.sql(query, plan)}) WHERE {keep}")
        if check_cardinality:
            duplicate = check_unique_targets(scan.run, f"(SELECT * FROM {joined} WHERE {MATCHED_MARK})")
            if duplicate is not None:
                raise cardinality_error(scan, "MERGE", duplicate)
        changes = f"(SELECT * FROM {joined} WHERE {OP_COLUMN} IS NOT NULL)"
        rewrite = scan.rewrite(plan, changes)
        snapshot = scan.finish(rewrite, row_filter, changes)
    return statement_result(_counts(rewrite.updated, rewrite.deleted, rewrite.inserted), rewrite.affected, snapshot)


def _col(table: str, name: str) -> str:
    return f"{quote_ident(table)}.{quote_ident(name)}"


def _counts(updated: int, deleted: int, inserted: int) -> dict[str, int]:
    return {
        "num_affected_rows": updated + deleted + inserted,
        "num_updated_rows": updated,
        "num_deleted_rows": deleted,
        "num_inserted_rows": inserted,
    }
