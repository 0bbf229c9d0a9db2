"""The quarantine table ``<table>__quarantine``: rows a quality gate kept out of a table, with why.

Created on first use beside the table, with the table's columns (all nullable: a quarantined row
may be missing what the table requires), Glue's four outcome columns, and the batch the rows came
in with: ``DataQualityRulesPass``/``Fail``/``Skip`` (rule texts), ``DataQualityEvaluationResult``,
``wharf_batch_id``, ``wharf_ruleset``, ``wharf_quarantined_at``. Columns the table gained since are
added before rows are written. Each append is one snapshot whose summary carries the batch id
(``wharf.quality.batch-id``), as do the snapshots of the table the batch's valid rows went to.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from wharf.errors import AlreadyExists
from wharf.quality.results_log import internal_writes

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse

SUFFIX = "__quarantine"
BATCH_PROPERTY = "wharf.quality.batch-id"
RULESET_PROPERTY = "wharf.quality.ruleset"
OUTCOME_COLUMNS = ("DataQualityRulesPass", "DataQualityRulesFail", "DataQualityRulesSkip", "DataQualityEvaluationResult")
BATCH_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("DataQualityRulesPass", pa.list_(pa.string())),
    ("DataQualityRulesFail", pa.list_(pa.string())),
    ("DataQualityRulesSkip", pa.list_(pa.string())),
    ("DataQualityEvaluationResult", pa.string()),
    ("wharf_batch_id", pa.string()),
    ("wharf_ruleset", pa.string()),
    ("wharf_quarantined_at", pa.timestamp("us", tz="UTC")),
)
_EXTRA = {name for name, _type in BATCH_COLUMNS}


def quarantine_name(table: str) -> str:
    """``db.t`` → ``db.t__quarantine``."""
    return f"{table}{SUFFIX}"


def is_quarantine(table: str) -> bool:
    return table.endswith(SUFFIX)


def _schema_for(lake: Lakehouse, table: str) -> pa.Schema:
    from wharf.tables.commit import arrow_schema

    source = arrow_schema(lake.table(table).schema)
    fields = [pa.field(f.name, f.type, nullable=True) for f in source if f.name not in _EXTRA]
    return pa.schema([*fields, *(pa.field(name, kind) for name, kind in BATCH_COLUMNS)])


def ensure(lake: Lakehouse, table: str) -> str:
    """Create ``<table>__quarantine`` if missing, or add the columns the table gained; returns its name."""
    name = quarantine_name(table)
    wanted = _schema_for(lake, table)
    with internal_writes():
        if not lake.catalog.table_exists(tuple(name.split(".", 1))):
            try:
                lake.create_table(name, wanted, properties={"wharf.quality.quarantine-of": table}, exist_ok=True)
            except AlreadyExists:
                pass
            return name
        have = {c.lower() for c in lake.table(name).schema.column_names}
        missing = [f for f in lake.table(table).schema.fields if f.name.lower() not in have]
        if missing:
            from wharf.tables.scan import quote_ident
            from wharf.tables.types import iceberg_to_duckdb

            columns = ", ".join(f"{quote_ident(f.name)} {iceberg_to_duckdb(f.field_type)}" for f in missing)
            lake.sql(f"ALTER TABLE {name} ADD COLUMNS ({columns})")
    return name


def with_batch(rows: pa.Table, *, batch_id: str, ruleset: str) -> pa.Table:
    """``rows`` (source columns + outcome columns) plus the batch columns."""
    now = datetime.fromtimestamp(time.time(), UTC)
    n = rows.num_rows
    for name, kind, value in (
        ("wharf_batch_id", pa.string(), batch_id),
        ("wharf_ruleset", pa.string(), ruleset),
        ("wharf_quarantined_at", pa.timestamp("us", tz="UTC"), now),
    ):
        if name in rows.column_names:
            rows = rows.drop_columns([name])
        rows = rows.append_column(pa.field(name, kind), pa.array([value] * n, type=kind))
    return rows


__all__ = [
    "BATCH_PROPERTY",
    "OUTCOME_COLUMNS",
    "RULESET_PROPERTY",
    "SUFFIX",
    "ensure",
    "is_quarantine",
    "quarantine_name",
    "with_batch",
]
