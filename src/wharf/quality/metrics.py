"""Batched metric computation: every dataset-level metric of a ruleset in at most two scans.

Pass 1 is one aggregate ``SELECT`` over the source holding every simple metric (counts,
completeness, mean, sum, deviations, correlations, per-row compliance ratios), each rule's
``where`` applied as an aggregate ``FILTER``. Pass 2 is one ``GROUP BY GROUPING SETS`` query
for the metrics that need value frequencies (uniqueness, distinct counts, unique-value ratio,
entropy, duplicate rows), one grouping set per (columns, where) pair, reduced in the same
statement. Metrics that read other datasets (reference tables, custom SQL) run lazily, one
query each, only when a rule asks for them.

If a batched pass fails (a where clause naming a missing column, ``avg`` of a string …), the
pass is retried metric by metric so only the rules whose metric failed report ``Error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wharf.errors import WharfError
from wharf.quality.conditions import sql_ident

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse

GROUP_KINDS = ("uniqueness", "unique_ratio", "distinct", "entropy", "duplicates")


class MetricError(Exception):
    """A metric could not be computed; the rules that need it report outcome Error with this reason."""


@dataclass
class _GroupSet:
    columns: tuple[str, ...]
    where: str | None
    keep_nulls: bool  # duplicates count rows whose values are NULL too


@dataclass
class MetricBook:
    """Collects the metrics rules need, then computes them with as few queries as possible."""

    lake: Lakehouse
    cte: str  # 'WITH "primary" AS (…)'
    aggregates: dict[str, str] = field(default_factory=dict)
    group_requests: dict[str, tuple[tuple[str, ...], str | None, str]] = field(default_factory=dict)
    lazy: dict[str, Callable[[], float | None]] = field(default_factory=dict)
    signatures: dict[str, str] = field(default_factory=dict)
    values: dict[str, float | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    scans: int = 0

    # --- requests ----------------------------------------------------------------------------

    def aggregate(self, name: str, sql: str) -> str:
        """Ask for ``sql`` (an aggregate over "primary") under metric ``name``; returns the name used.

        A name already taken by a different expression gets a ``#2``, ``#3`` … suffix.
        """
        name = _free_name(name, sql, self.aggregates)
        self.aggregates.setdefault(name, sql)
        return name

    def group(self, name: str, columns: tuple[str, ...], where: str | None, kind: str) -> str:
        """Ask for a frequency metric (``kind`` in GROUP_KINDS) over ``columns`` filtered by ``where``."""
        self.group_requests.setdefault(name, (columns, where, kind))
        return name

    def constant(self, name: str, value: float | None) -> str:
        self.values[name] = value
        return name

    def deferred(self, name: str, compute: Callable[[], float | None], signature: str) -> str:
        """A metric computed by its own query the first time a rule reads it; returns the name used.

        ``signature`` identifies what is computed: the same name with another signature gets a suffix.
        """
        name = _free_name(name, signature, self.signatures)
        self.signatures.setdefault(name, signature)
        self.lazy.setdefault(name, compute)
        return name

    # --- reads -------------------------------------------------------------------------------

    def value(self, name: str) -> float | None:
        if name in self.errors:
            raise MetricError(self.errors[name])
        if name not in self.values and name in self.lazy:
            try:
                self.values[name] = self.lazy[name]()
            except MetricError as exc:
                self.errors[name] = str(exc)
                raise
            except WharfError as exc:
                self.errors[name] = exc.message
                raise MetricError(exc.message) from exc
        if name not in self.values:
            raise MetricError(f"metric {name} was not computed")
        return self.values[name]

    def run_query(self, sql: str, *, scans: int = 1) -> list[tuple[Any, ...]]:
        """Run one query through ``lake.sql`` (counted as ``scans`` reads of the source)."""
        self.queries.append(sql)
        self.scans += scans
        return self.lake.sql(sql).fetchall()

    # --- the passes --------------------------------------------------------------------------

    def compute(self) -> None:
        """Run pass 1 and pass 2 for everything requested so far."""
        if self.aggregates:
            self._batched(list(self.aggregates), self._aggregate_sql)
        if self.group_requests:
            self._batched(list(self.group_requests), self._group_sql)

    def _batched(self, names: list[str], build: Callable[[list[str]], str]) -> None:
        try:
            row = self.run_query(build(names))[0]
        except WharfError as batch_error:
            if len(names) == 1:
                self.errors[names[0]] = batch_error.message.splitlines()[0]
                return
            # Find the culprits one metric at a time (rare: only when a rule is broken).
            for name in names:
                try:
                    single = self.run_query(build([name]))[0]
                except WharfError as exc:
                    self.errors[name] = exc.message.splitlines()[0]
                else:
                    self.values[name] = _number(single[0])
            return
        for name, value in zip(names, row, strict=True):
            self.values[name] = _number(value)

    def _aggregate_sql(self, names: list[str]) -> str:
        items = ", ".join(f"{self.aggregates[n]} AS m{i}" for i, n in enumerate(names))
        return f'{self.cte} SELECT {items} FROM "primary"'

    def _group_sql(self, names: list[str]) -> str:
        # One key column per distinct source column / where predicate, then one grouping set
        # per (columns, where) pair; GROUPING(...) tells the sets apart.
        keys: dict[str, str] = {}  # SQL expression -> key alias

        def key(expr: str) -> str:
            if expr not in keys:
                keys[expr] = f"k{len(keys)}"
            return keys[expr]

        sets: list[tuple[tuple[str, ...], str | None, bool]] = []
        per_metric: list[tuple[int, str]] = []
        for name in names:
            columns, where, kind = self.group_requests[name]
            col_keys = tuple(key(sql_ident(c)) for c in columns)
            where_key = key(f"coalesce(({where}), FALSE)") if where else None
            spec = (col_keys, where_key, kind == "duplicates")
            if spec not in sets:
                sets.append(spec)
            per_metric.append((sets.index(spec), kind))
        all_keys = list(keys.values())
        inner = ", ".join(f"{expr} AS {alias}" for expr, alias in keys.items())
        grouping_sets = ", ".join("(" + ", ".join([*cols, *([w] if w else [])]) + ")" for cols, w, _ in sets)
        grouped = (
            f"SELECT GROUPING({', '.join(all_keys)}) AS gid, {', '.join(all_keys)}, count(*) AS n "
            f'FROM (SELECT {inner} FROM "primary") GROUP BY GROUPING SETS ({grouping_sets})'
        )
        outputs = []
        for set_index, kind in per_metric:
            cols, where_key, keep_nulls = sets[set_index]
            used = {*cols, *([where_key] if where_key else [])}
            gid = sum(1 << (len(all_keys) - 1 - i) for i, k in enumerate(all_keys) if k not in used)
            base = f"gid = {gid}" + (f" AND {where_key}" if where_key else "")
            valued = base if keep_nulls else base + " AND NOT (" + " AND ".join(f"{c} IS NULL" for c in cols) + ")"
            rows = f"sum(n) FILTER (WHERE {base})"
            if kind == "uniqueness":
                out = f"coalesce(count(*) FILTER (WHERE {valued} AND n = 1) / nullif({rows}, 0), 1.0)"
            elif kind == "unique_ratio":
                out = f"count(*) FILTER (WHERE {valued} AND n = 1) / nullif(count(*) FILTER (WHERE {valued}), 0)"
            elif kind == "distinct":
                out = f"count(*) FILTER (WHERE {valued})"
            elif kind == "entropy":
                total = f"sum(n) FILTER (WHERE {valued})"
                out = f"ln({total}) - sum(n * ln(n)) FILTER (WHERE {valued}) / {total}"
            else:  # duplicates: rows beyond the first of each group of identical rows
                out = f"coalesce(sum(n - 1) FILTER (WHERE {valued} AND n > 1), 0)"
            outputs.append(out)
        items = ", ".join(f"{o} AS m{i}" for i, o in enumerate(outputs))
        return f"{self.cte}, __dq_groups AS ({grouped}) SELECT {items} FROM __dq_groups"


def _free_name(name: str, key: str, taken: dict[str, str]) -> str:
    candidate, n = name, 1
    while taken.get(candidate, key) != key:
        n += 1
        candidate = f"{name}#{n}"
    return candidate


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        result = float(value)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"metric is not a number: {value!r}") from exc
    return None if result != result else result  # NaN -> None
