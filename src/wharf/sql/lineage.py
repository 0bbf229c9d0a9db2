"""Column lineage of a compiled query: which table columns each output column is computed from.

Derived with ``sqlglot.lineage`` on the qualify pass's copy, where every Wharf reference is a
synthetic table with a known schema. Computed only when someone asks (a statement event's
``column_lineage()``): lineage walks every scope once per output column.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.lineage import lineage

if TYPE_CHECKING:
    from wharf.sql.pipeline import Compilation

log = logging.getLogger(__name__)
_SYNTHETIC = re.compile(r"^__wharf_t(\d+)$")


def _field_name(schema: object, column: str) -> str:
    """The schema's spelling of ``column`` (qualification lower-cases unquoted names)."""
    for field in getattr(schema, "fields", ()):
        if field.name.lower() == column.lower():
            return str(field.name)
    return column


def column_lineage(c: Compilation, outputs: Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
    """``{output column: ("ns.table.column", …)}`` for the query ``c`` compiled.

    ``outputs`` renames the query's columns by position (the target columns of an INSERT).
    Empty when the query could not be qualified.
    """
    qualified = c.qualified
    if qualified is None or not isinstance(qualified, exp.Query):
        return {}
    query: exp.Query = qualified
    if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and e.is_star) for e in query.selects):
        expanded = _with_stars_expanded(query, c)
        if expanded is None:
            return {}
        query = expanded
    names = list(query.named_selects)
    result: dict[str, tuple[str, ...]] = {}
    for position, name in enumerate(names):
        key = outputs[position] if outputs is not None and position < len(outputs) else name
        try:
            root = lineage(name, query, schema=dict(c.schema), dialect="duckdb")
        except Exception as exc:  # noqa: BLE001 - an output sqlglot cannot trace has unknown sources
            log.debug("no lineage for %s: %s", name, exc)
            continue
        sources: list[str] = []
        for node in root.walk():
            if node.downstream or not isinstance(node.source, exp.Table):
                continue
            match = _SYNTHETIC.match(node.source.name)
            if match is None:
                continue
            ref = c.references[int(match.group(1))]
            column = node.name.rsplit(".", 1)[-1]
            label = f"{ref.label}.{_field_name(ref.schema, column) if ref.metadata is None else column}"
            if label not in sources:
                sources.append(label)
        result[key] = tuple(sources)
    return result


def _with_stars_expanded(query: exp.Query, c: Compilation) -> exp.Query | None:
    """``SELECT *`` spelled out column by column (the qualify pass keeps stars for DuckDB to expand)."""
    from sqlglot.optimizer.qualify import qualify

    try:
        expanded = qualify(
            query.copy(),
            dialect="duckdb",
            schema=dict(c.schema),
            expand_stars=True,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
    except Exception as exc:  # noqa: BLE001 - no lineage rather than a failed statement
        log.debug("cannot expand the stars of %s: %s", query.sql(), exc)
        return None
    return expanded if isinstance(expanded, exp.Query) else None
