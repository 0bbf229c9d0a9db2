"""The DQDL rule catalogue as data: parameters, condition kinds, where/threshold support, scope.

Follows the public rule catalogue of AWS Glue Data Quality (awslabs/dqdl ``rules-config.json``).
One row per rule type; the parser validates against it, the evaluator dispatches on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleType:
    name: str
    min_params: int
    max_params: int | None  # None: variadic
    conditions: tuple[str, ...]  # condition kinds accepted; () means the rule takes no condition
    where: bool = False
    threshold: bool = False
    scope: str = "column"  # table | column | file
    row_level: bool = False  # gives a pass/fail per row
    condition_optional: bool = False
    analyzer: bool = True  # usable in Analyzers = [...]
    analyzer_only: bool = False


NUM = ("number",)

RULE_TYPES: dict[str, RuleType] = {
    r.name: r
    for r in (
        RuleType("RowCount", 0, 0, NUM, where=True, scope="table"),
        RuleType("RowCountMatch", 1, 1, NUM, scope="table", analyzer=False),
        RuleType("ColumnCount", 0, 0, NUM, scope="table"),
        RuleType("ColumnExists", 1, 1, (), analyzer=False),
        RuleType("ColumnNamesMatchPattern", 1, 1, (), scope="table", analyzer=False),
        RuleType("ColumnDataType", 1, 1, ("string",), where=True, threshold=True, row_level=True, analyzer=False),
        RuleType("IsComplete", 1, 1, (), where=True, row_level=True, analyzer=False),
        RuleType("Completeness", 1, 1, NUM, where=True, row_level=True),
        RuleType("IsUnique", 1, None, (), where=True, row_level=True, analyzer=False),
        RuleType("Uniqueness", 1, None, NUM, where=True, row_level=True),
        RuleType("IsPrimaryKey", 1, None, (), where=True, row_level=True, analyzer=False),
        RuleType("UniqueValueRatio", 1, 1, NUM, where=True),
        RuleType("DistinctValuesCount", 1, 1, NUM, where=True),
        RuleType("Entropy", 1, 1, NUM, where=True),
        RuleType("Mean", 1, 1, NUM, where=True),
        RuleType("Sum", 1, 1, NUM, where=True),
        RuleType("StandardDeviation", 1, 1, NUM, where=True),
        RuleType("Variance", 1, 1, NUM, where=True),
        RuleType("ColumnCorrelation", 2, 2, NUM, where=True),
        RuleType("ColumnLength", 1, 1, NUM, where=True, row_level=True),
        RuleType("ColumnValues", 1, 1, ("string", "number", "date"), where=True, threshold=True, row_level=True, analyzer=False),
        RuleType("CustomSql", 1, 1, NUM, threshold=True, scope="table", condition_optional=True, analyzer=False),
        RuleType("DataFreshness", 1, 1, ("duration",), where=True, row_level=True, analyzer=False),
        RuleType("ReferentialIntegrity", 2, 2, NUM, scope="table", row_level=True, analyzer=False),
        RuleType("DatasetMatch", 2, 3, NUM, scope="table", analyzer=False),
        RuleType("SchemaMatch", 1, 1, NUM, scope="table", analyzer=False),
        RuleType("AggregateMatch", 2, 2, NUM, scope="table", analyzer=False),
        RuleType("DetectAnomalies", 1, None, (), analyzer=False),
        RuleType("DuplicateRowCount", 0, 0, NUM, where=True, scope="table"),
        RuleType("AllStatistics", 1, 1, (), analyzer_only=True),
        # File rules: parsed for compatibility, reported as not applicable to tables.
        RuleType("FileFreshness", 0, 1, ("date", "duration"), threshold=True, scope="file", analyzer=False),
        RuleType("FileMatch", 0, 2, ("string",), scope="file", condition_optional=True, analyzer=False),
        RuleType("FileSize", 0, 1, ("size",), threshold=True, scope="file", analyzer=False),
        RuleType("FileUniqueness", 0, 1, NUM, scope="file", analyzer=False),
    )
}

# Rules whose row-level outcome Glue leaves out of row-wise composite evaluation.
EXCLUDED_FROM_ROW_COMPOSITES = frozenset({"Completeness", "Uniqueness", "ReferentialIntegrity", "DatasetMatch"})
