"""UPDATE t SET … [FROM …] [WHERE …], and the parts DELETE and MERGE share with it.

A row-level statement reads its target through ``TargetScan``: the target table at the head of
its branch, planned with the Iceberg translation of the statement's predicates, as a DuckDB
relation that also carries each row's data file and position. The statement's SQL is rebuilt
around that relation and compiled by the reference pipeline with the target pre-resolved (other
Wharf tables in it take every pass, as in any query),
DuckDB computes the changed rows into a temp table, which ``tables.rewrite.copy_on_write`` turns
into the new contents of exactly the affected files, or ``tables.deletes.merge_on_read`` into
positional delete files plus new rows (``write.<statement>.mode``), committed as one snapshot.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import overload

import duckdb
import pyarrow as pa
from pyiceberg import expressions as ie
from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.types import NestedField
from sqlglot import exp

from wharf.errors import InvalidArgument, SchemaMismatch, SqlParseError, UnsupportedStatement
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.pipeline import compile_query
from wharf.sql.plan import plan_reference
from wharf.sql.references import REF_META
from wharf.sql.targets import Target, commit, commit_delta, resolve_target, write_rows
from wharf.tables import predicates
from wharf.tables.commit import FileChanges, remove_files
from wharf.tables.deletes import (
    COPY_ON_WRITE,
    MERGE_ON_READ,
    merge_on_read,
    removable_deletes,
    write_mode,
    write_position_deletes,
)
from wharf.tables.rewrite import (
    OP_COLUMN,
    UPDATE,
    Rewrite,
    check_required,
    check_unique_targets,
    copy_on_write,
    duckdb_can_write,
    write_query,
)
from wharf.tables.scan import FILE_COLUMN, POS_COLUMN, ScanPlan
from wharf.tables.types import iceberg_to_duckdb

_names = itertools.count()


def temp_name(kind: str) -> str:
    return f"__wharf_{kind}_{next(_names)}"


@dataclass
class TargetScan:
    """The target of a row-level statement, under the alias its SQL uses for it."""

    ctx: Context
    target: Target
    alias: str
    qualifiers: set[str]
    # The statement kind whose ``write.<kind>.mode`` applies (default: the running statement's);
    # a procedure that writes through MERGE (``apply_changes``) says "merge".
    mode_kind: str | None = None

    @classmethod
    def of(cls, ctx: Context, node: exp.Table) -> TargetScan:
        target = resolve_target(ctx, node)
        alias = node.alias or target.name
        qualifiers = {alias.lower(), node.name.lower(), target.name.lower()}
        return cls(ctx, target, alias, qualifiers)

    @property
    def schema(self) -> Schema:
        return self.target.table.schema()

    def run(self, sql: str) -> duckdb.DuckDBPyConnection:
        return run_duckdb(self.ctx.con, sql)

    def field(self, name: str, *, statement: str) -> NestedField:
        lowered = name.lower()
        for f in self.schema.fields:
            if f.name.lower() == lowered:
                return f
        raise SchemaMismatch(
            f"{statement}: column '{name}' does not exist in table {self.target.label}",
            hint=f"its columns are: {', '.join(f.name for f in self.schema.fields)}",
        )

    @overload
    def normalize(self, node: exp.Expression) -> exp.Expression: ...
    @overload
    def normalize(self, node: None) -> None: ...
    def normalize(self, node: exp.Expression | None) -> exp.Expression | None:
        """Point column qualifiers naming the target (``t.x``, ``db.t.x``, ``branch_b.x``) at its alias."""
        if node is None:
            return None
        node = node.copy()
        for col in list(node.find_all(exp.Column)):
            if col.table and col.table.lower() in self.qualifiers and (col.table != self.alias or col.args.get("db")):
                col.set("table", exp.to_identifier(self.alias))
                col.set("db", None)
                col.set("catalog", None)
        return node

    def relation(self) -> exp.Table:
        """The target's table node for a statement's query: the pipeline generates it from the planned target."""
        node = exp.Table(
            this=exp.to_identifier(self.target.name), alias=exp.TableAlias(this=exp.to_identifier(self.alias, quoted=True))
        )
        node.meta[REF_META] = 0  # position 0 of the compilation's references: the target
        return node

    def sql(self, query: exp.Expression, plan: ScanPlan) -> str:
        """DuckDB SQL for ``query``, whose target node reads the planned files with their positions."""
        assert self.target.reference.plan is plan
        return compile_query(self.ctx, query, targets=[self.target.reference]).sql

    def owns(self, col: exp.Column, *, alone: bool) -> str | None:
        """The target field a column refers to (unqualified columns only when the target is the only source)."""
        if col.table:
            return col.name if col.table.lower() == self.alias.lower() else None
        return col.name if alone else None

    def iceberg_filter(self, condition: exp.Expression | None, *, alone: bool = True) -> ie.BooleanExpression:
        """An inclusive Iceberg filter for the target rows ``condition`` can be true for."""
        filters = []
        for conjunct in predicates.conjuncts(condition):
            if conjunct.find(exp.Subquery, exp.Select):
                continue
            filters.append(predicates.to_iceberg(conjunct, self.schema, lambda c: self.owns(c, alone=alone)))
        return predicates.combine(filters)

    def plan(self, row_filter: ie.BooleanExpression) -> ScanPlan:
        """Plan the target at the head of its branch with the statement's filter (and its policy's)."""
        ref = self.target.reference
        ref.snapshot_id = self.target.snapshot_id
        ref.schema = self.schema
        ref.with_position = True
        plan_reference(self.ctx, ref, row_filter)
        assert ref.plan is not None
        return ref.plan

    def cast(self, value: exp.Expr, f: NestedField) -> exp.Cast:
        return exp.Cast(this=value, to=exp.DataType.build(iceberg_to_duckdb(f.field_type), dialect="duckdb"))

    def column(self, name: str) -> exp.Column:
        return exp.column(name, table=self.alias, quoted=True)

    def assignment_target(self, lhs: exp.Expression, statement: str) -> NestedField:
        """The column an ``x = …`` assignment sets (``t.x`` and ``x`` both name column x)."""
        if not isinstance(lhs, exp.Column) or (lhs.table and lhs.table.lower() not in self.qualifiers):
            raise UnsupportedStatement(
                f"{statement}: cannot assign to {lhs.sql('duckdb')}", hint="assign whole top-level columns: SET col = expr"
            )
        return self.field(lhs.name, statement=statement)

    @contextmanager
    def temp_tables(self) -> Iterator[list[str]]:
        """Names appended to the yielded list are dropped at the end, whatever happens."""
        names: list[str] = []
        try:
            yield names
        finally:
            for name in names:
                try:
                    self.ctx.con.execute(f"DROP TABLE IF EXISTS {name}")
                except duckdb.Error:
                    pass

    @property
    def write_mode(self) -> str:
        """``copy-on-write`` or ``merge-on-read``, from the table's ``write.<statement>.mode``.

        INSERT OVERWRITE replaces whole files whatever the mode (as in Spark)."""
        kind = self.mode_kind or self.ctx.statement.kind
        return write_mode(self.target.table, kind) if kind in ("delete", "update", "merge") else COPY_ON_WRITE

    def rewrite(self, plan: ScanPlan, changes: str, *, with_values: bool = True) -> Rewrite:
        """What the changes table ``changes`` does to the target, in the table's write mode."""
        if self.write_mode == MERGE_ON_READ:
            return merge_on_read(self.run, plan, changes, with_values=with_values)
        return copy_on_write(self.run, plan, changes, with_values=with_values)

    def finish(
        self,
        rewrite: Rewrite,
        row_filter: ie.BooleanExpression,
        changes: str | None = None,
        *,
        with_values: bool = True,
        added: Sequence[DataFile] = (),
    ) -> Snapshot | None:
        """Write the rewritten rows (and delete files) and commit one snapshot (none if nothing changed).

        ``changes`` (the changes table, still alive) lets DuckDB write the files directly after
        checking NOT NULL columns on the changed rows (``with_values``: a DELETE's changes carry
        none, and the rows it keeps satisfied the constraint already); otherwise rows go through
        ``write_rows``. ``added`` are files written before (INSERT OVERWRITE's rows), committed with it.
        Delete files that apply only to removed data files are removed in the same snapshot.
        """
        table = self.target.table
        written: list[DataFile] = []
        try:
            if rewrite.query is not None:
                if changes is not None and duckdb_can_write(table):
                    if with_values:
                        check_required(self.run, self.schema, changes, self.target.label)
                    written = write_query(self.run, table, rewrite.query)
                else:
                    rows = self.run(rewrite.query).to_arrow_table()
                    written = write_rows(self.target, rows) if rows.num_rows else []
            deletes: list[DataFile] = []
            if rewrite.positions is not None:
                positions = self.run(rewrite.positions).to_arrow_table()
                deletes = write_position_deletes(table, positions, rewrite.referenced)
        except BaseException:
            remove_files(table, written)
            raise
        files = [*written, *added]
        if not files and not rewrite.removed and not deletes:
            return None
        plan = self.target.reference.plan
        dangling = removable_deletes(table, plan, rewrite.removed) if plan is not None and rewrite.removed else []
        if not deletes and not dangling:
            return commit(self.ctx, self.target, added=files, removed=rewrite.removed, read_filter=row_filter)
        delta = FileChanges(
            added=files,
            removed=[f.data_file for f in rewrite.removed],
            added_deletes=deletes,
            removed_deletes=dangling,
            referenced=[f.data_file for f in rewrite.referenced],
        )
        return commit_delta(self.ctx, self.target, delta, read_filter=row_filter)


def statement_result(counts: dict[str, int], rowcount: int, snapshot: Snapshot | None) -> Result:
    """A one-row result like Spark's (``num_affected_rows`` …)."""
    return Result(
        pa.table({k: pa.array([v], pa.int64()) for k, v in counts.items()}),
        rowcount=rowcount,
        snapshot_id=snapshot.snapshot_id if snapshot else None,
    )


def cardinality_error(scan: TargetScan, statement: str, where: tuple[str, int]) -> InvalidArgument:
    from wharf.errors import MergeCardinalityError

    return MergeCardinalityError(
        f"{statement} on {scan.target.label}: a target row (file {where[0].rsplit('/', 1)[-1]}, position {where[1]}) "
        "matches more than one source row, so it is ambiguous how to change it",
        hint="make the source unique on the join keys (e.g. deduplicate it with GROUP BY or QUALIFY row_number())",
    )


@handles(exp.Update, kind="update")
def run_update(ctx: Context, node: exp.Update) -> Result:
    if not node.expressions:
        raise SqlParseError("UPDATE needs a SET clause", sql=ctx.statement.text, hint="UPDATE t SET column = value [WHERE …]")
    scan = TargetScan.of(ctx, node.this)
    from_ = node.args.get("from_") or node.args.get("from")
    where = node.args.get("where")
    condition = scan.normalize(where.this) if where is not None else None
    assignments: dict[str, exp.Expression] = {}
    for eq in node.expressions:
        if not isinstance(eq, exp.EQ):
            raise UnsupportedStatement(f"UPDATE: expected 'column = value', got {eq.sql('duckdb')}")
        f = scan.assignment_target(eq.this, "UPDATE")
        if f.name in assignments:
            raise InvalidArgument(f"UPDATE sets column '{f.name}' of {scan.target.label} more than once")
        assignments[f.name] = scan.normalize(eq.expression)
    row_filter = scan.iceberg_filter(condition, alone=from_ is None)
    plan = scan.plan(row_filter)
    if not plan.files:
        return statement_result({"num_affected_rows": 0}, 0, None)
    columns = [
        exp.alias_(scan.cast(assignments[f.name], f) if f.name in assignments else scan.column(f.name), f.name, quoted=True)
        for f in scan.schema.fields
    ]
    query = exp.select(
        exp.column(FILE_COLUMN, table=scan.alias, quoted=True),
        exp.column(POS_COLUMN, table=scan.alias, quoted=True),
        exp.alias_(exp.Literal.string(UPDATE), OP_COLUMN),
        *columns,
    ).from_(scan.relation())
    if from_ is not None:
        # sqlglot hangs the FROM clause's own joins on its first table: make them joins of the query.
        first = from_.this.copy()
        inner_joins = first.args.get("joins") or []
        first.set("joins", None)
        for join in [exp.Join(this=first), *inner_joins, *(node.args.get("joins") or [])]:
            query.append("joins", join.copy())
    if condition is not None:
        query = query.where(condition)
    with scan.temp_tables() as temps:
        changes = temp_name("changes")
        temps.append(changes)
        scan.run(f"CREATE TEMP TABLE {changes} AS {scan.sql(query, plan)}")
        if from_ is not None:
            duplicate = check_unique_targets(scan.run, changes)
            if duplicate is not None:
                raise cardinality_error(scan, "UPDATE ... FROM", duplicate)
        rewrite = scan.rewrite(plan, changes)
        snapshot = scan.finish(rewrite, row_filter, changes)
    return statement_result({"num_affected_rows": rewrite.updated}, rewrite.updated, snapshot)


__all__ = ["TargetScan", "run_update", "statement_result", "temp_name"]
