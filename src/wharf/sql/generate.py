"""The generate pass: each reference becomes a ``Relation`` node, and the statement becomes DuckDB SQL.

A ``Relation`` is a sqlglot node that carries the DuckDB SQL of one planned reference — a
subquery over exactly the Parquet files the plan chose (deletes applied), wrapped in the
reference's policy, or the name of a registered metadata table — and keeps the reference's
alias. ``WharfDuckDB`` generates it verbatim; everything else is generated as DuckDB SQL.
No string search-and-replace happens on the generated text.
"""

from __future__ import annotations

import itertools
from typing import Any

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB

from wharf.sql.references import REF_META, Reference
from wharf.tables.scan import FILE_COLUMN, POS_COLUMN, quote_ident

_names = itertools.count()


class Relation(exp.Expression):
    """A planned table reference: ``this`` is the DuckDB SQL of the relation, ``alias`` its alias."""

    arg_types = {"this": True, "alias": False}


def _relation_sql(generator: Any, node: Relation) -> str:
    alias = generator.sql(node, "alias")
    return f"{node.this} AS {alias}" if alias else str(node.this)


class WharfDuckDB(DuckDB):
    """DuckDB's dialect, plus ``Relation`` nodes."""

    class Generator(DuckDB.Generator):  # type: ignore[misc, valid-type]  # sqlglot builds dialect generators per class
        TRANSFORMS = {**DuckDB.Generator.TRANSFORMS, Relation: _relation_sql}


def relation_sql(ref: Reference, registered_name: str | None = None) -> str:
    """The DuckDB SQL one reference reads: planned files (or a registered metadata table) under its policy."""
    if ref.metadata is not None and "relation" in ref.extra:  # t.changes, t.scd2: SQL, not registered rows
        base = f"({ref.extra['relation']})"
        columns = [quote_ident(name) for name in ref.extra["columns"]]  # type: ignore[attr-defined]
    elif ref.metadata is not None:
        assert registered_name is not None
        base = quote_ident(registered_name)
        columns = [quote_ident(name) for name in ref.data.column_names] if ref.data is not None else []
    else:
        assert ref.plan is not None
        base = ref.plan.relation_sql(with_position=ref.with_position)
        columns = [quote_ident(f.name) for f in ref.plan.schema.fields]
    policy = ref.policy
    if policy is None:
        return base
    masks = {name.lower(): mask for name, mask in policy.masks.items()}
    projected = []
    for column in columns:
        mask = masks.get(column.strip('"').replace('""', '"').lower())
        projected.append(f"{mask.sql('duckdb')} AS {column}" if mask is not None else column)
    if ref.with_position:
        projected += [FILE_COLUMN, POS_COLUMN]
    where = f" WHERE {policy.row_filter.sql('duckdb')}" if policy.row_filter is not None else ""
    return f"(SELECT {', '.join(projected)} FROM {base} AS __wharf_policy{where})"


def metadata_name() -> str:
    return f"__wharf_meta_{next(_names)}"


def replace_references(expression: exp.Expression, relations: dict[int, str]) -> exp.Expression:
    """Replace every resolved table node by its ``Relation`` (keeping its alias, or naming it after the table)."""
    for node in list(expression.find_all(exp.Table)):
        index = node.meta.get(REF_META)
        if index is None:
            continue
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
        replacement = Relation(this=relations[index], alias=alias)
        if node is expression:
            return replacement
        node.replace(replacement)
    return expression


def to_duckdb(expression: exp.Expression, *, copy: bool = True) -> str:
    """The DuckDB SQL of ``expression``. ``copy=False``: sqlglot's generator may rewrite the tree
    while it generates, which a working tree the compiler throws away afterwards can afford."""
    return expression.sql(dialect=WharfDuckDB, copy=copy)
