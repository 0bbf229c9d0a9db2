"""Type mapping between SQL (DuckDB / sqlglot) types and Iceberg types.

Differences are data: two tables drive the primitive mappings, nested types recurse.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

from pyiceberg import types as it
from sqlglot import exp

from wharf.errors import SchemaMismatch, UnsupportedStatement

_T = exp.DataType.Type

# sqlglot data type -> Iceberg primitive type (parameterised types handled below).
_SQL_TO_ICEBERG: dict[exp.DType, it.PrimitiveType] = {
    _T.BOOLEAN: it.BooleanType(),
    _T.TINYINT: it.IntegerType(),
    _T.SMALLINT: it.IntegerType(),
    _T.INT: it.IntegerType(),
    _T.UTINYINT: it.IntegerType(),
    _T.USMALLINT: it.IntegerType(),
    _T.BIGINT: it.LongType(),
    _T.UINT: it.LongType(),
    _T.FLOAT: it.FloatType(),
    _T.DOUBLE: it.DoubleType(),
    _T.VARCHAR: it.StringType(),
    _T.NVARCHAR: it.StringType(),
    _T.CHAR: it.StringType(),
    _T.NCHAR: it.StringType(),
    _T.TEXT: it.StringType(),
    _T.DATE: it.DateType(),
    _T.TIME: it.TimeType(),
    _T.TIMESTAMP: it.TimestampType(),
    _T.DATETIME: it.TimestampType(),
    _T.TIMESTAMPNTZ: it.TimestampType(),
    _T.TIMESTAMPTZ: it.TimestamptzType(),
    _T.TIMESTAMPLTZ: it.TimestamptzType(),
    _T.UUID: it.UUIDType(),
    _T.BINARY: it.BinaryType(),
    _T.VARBINARY: it.BinaryType(),
    _T.BLOB: it.BinaryType(),
}

# Iceberg primitive type class -> DuckDB type name.
_ICEBERG_TO_DUCKDB: dict[type, str] = {
    it.BooleanType: "BOOLEAN",
    it.IntegerType: "INTEGER",
    it.LongType: "BIGINT",
    it.FloatType: "FLOAT",
    it.DoubleType: "DOUBLE",
    it.DateType: "DATE",
    it.TimeType: "TIME",
    it.TimestampType: "TIMESTAMP",
    it.TimestamptzType: "TIMESTAMPTZ",
    it.TimestampNanoType: "TIMESTAMP_NS",
    it.TimestamptzNanoType: "TIMESTAMPTZ",
    it.StringType: "VARCHAR",
    it.UUIDType: "UUID",
    it.BinaryType: "BLOB",
    it.FixedType: "BLOB",
}


def sql_type_to_iceberg(dtype: exp.DataType, ids: Iterator[int] | None = None, column: str = "?") -> it.IcebergType:
    """Convert a parsed SQL type (``DECIMAL(10,2)``, ``INT[]``, ``STRUCT(a INT)``) to an Iceberg type.

    ``ids`` hands out field ids for nested fields; the catalog re-assigns them on create.
    """
    ids = ids if ids is not None else count(1000)
    kind = dtype.this
    if kind in _SQL_TO_ICEBERG:
        return _SQL_TO_ICEBERG[kind]
    if kind == _T.DECIMAL:
        params = [int(p.this.this if isinstance(p.this, exp.Literal) else p.name) for p in dtype.expressions]
        precision, scale = (params + [18, 3][len(params) :])[:2] if params else (18, 3)
        if len(params) == 1:
            scale = 0
        return it.DecimalType(precision, scale)
    if kind in (_T.ARRAY, _T.LIST):
        element = sql_type_to_iceberg(dtype.expressions[0], ids, column)
        return it.ListType(element_id=next(ids), element_type=element, element_required=False)
    if kind == _T.MAP:
        key = sql_type_to_iceberg(dtype.expressions[0], ids, column)
        value = sql_type_to_iceberg(dtype.expressions[1], ids, column)
        return it.MapType(key_id=next(ids), key_type=key, value_id=next(ids), value_type=value, value_required=False)
    if kind == _T.STRUCT:
        fields = []
        for field in dtype.expressions:
            name = field.name
            inner = field.args.get("kind") or (field.expressions[0] if field.expressions else None)
            if inner is None:
                # DuckDB's parser reads Spark's STRUCT<x: DOUBLE> as field names without types.
                raise UnsupportedStatement(
                    f"Column '{column}': field '{name}' of the STRUCT has no type",
                    hint="write STRUCT(x DOUBLE, y DOUBLE) in DuckDB SQL, or STRUCT<x: DOUBLE, y: DOUBLE> with dialect='spark'",
                )
            fields.append(
                it.NestedField(field_id=next(ids), name=name, field_type=sql_type_to_iceberg(inner, ids, column), required=False)
            )
        return it.StructType(*fields)
    raise UnsupportedStatement(
        f"Column '{column}' has type {dtype.sql('duckdb')}, which Iceberg tables cannot store",
        hint="use BOOLEAN, INTEGER, BIGINT, FLOAT, DOUBLE, DECIMAL(p,s), VARCHAR, DATE, TIME, TIMESTAMP, "
        "TIMESTAMPTZ, UUID, BLOB, or LIST/MAP/STRUCT of those",
    )


def iceberg_to_duckdb(t: it.IcebergType) -> str:
    """Return the DuckDB type name that holds values of Iceberg type ``t``."""
    for klass, name in _ICEBERG_TO_DUCKDB.items():
        if isinstance(t, klass):
            return name
    if isinstance(t, it.DecimalType):
        return f"DECIMAL({t.precision},{t.scale})"
    if isinstance(t, it.ListType):
        return f"{iceberg_to_duckdb(t.element_type)}[]"
    if isinstance(t, it.MapType):
        return f"MAP({iceberg_to_duckdb(t.key_type)}, {iceberg_to_duckdb(t.value_type)})"
    if isinstance(t, it.StructType):
        inner = ", ".join(f'"{f.name}" {iceberg_to_duckdb(f.field_type)}' for f in t.fields)
        return f"STRUCT({inner})"
    raise SchemaMismatch(f"Iceberg type {t} has no DuckDB equivalent")


# Iceberg's legal type promotions (spec: "Schema Evolution"), as data.
_WIDENINGS: dict[type, tuple[type, ...]] = {
    it.IntegerType: (it.LongType,),
    it.FloatType: (it.DoubleType,),
    it.DateType: (it.TimestampType,),
}


def check_promotion(column: str, current: it.IcebergType, new: it.IcebergType) -> None:
    """Raise ``SchemaMismatch`` unless ``current`` may be widened to ``new`` under the Iceberg spec."""
    if current == new:
        return
    if isinstance(current, it.DecimalType) and isinstance(new, it.DecimalType):
        if new.scale == current.scale and new.precision >= current.precision:
            return
    elif isinstance(new, _WIDENINGS.get(type(current), ())) and not isinstance(current, it.DateType):
        return
    raise SchemaMismatch(
        f"Cannot change column '{column}' from {current} to {new}",
        hint="Iceberg allows only widening: int -> bigint, float -> double, decimal(P,S) -> decimal(P2,S) with P2 >= P",
    )
