"""The DQDL syntax tree: frozen dataclasses whose ``str()`` is canonical DQDL.

``parse(str(x)) == x`` for every node the parser produces (property-tested). Variables are resolved
at parse time, so a rule's text spells out the values a ``$name`` stood for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeAlias


def quote(text: str) -> str:
    """A DQDL quoted string: double quotes, with ``"`` and ``\\`` escaped by a backslash."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_number(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".") or "0"
    return "0" if text in ("-0", "") else text


# --- operands ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A numeric literal (kept exact: ``0.1`` stays ``0.1``)."""

    value: Decimal

    def __str__(self) -> str:
        return format_number(self.value)


@dataclass(frozen=True)
class Call:
    """A dynamic-rule function: ``last(3)``, ``avg(last(10))``, ``index(last(5), 1)``, ``min``, ``max``, ``std``."""

    name: str
    args: tuple[NumberExpr, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(a) for a in self.args)})"


@dataclass(frozen=True)
class BinaryOp:
    """Arithmetic on numbers: ``avg(last(10)) * 0.8``. Printed fully parenthesised when nested."""

    op: str  # + - * /
    left: NumberExpr
    right: NumberExpr

    def __str__(self) -> str:
        def side(node: NumberExpr) -> str:
            return f"({node})" if isinstance(node, BinaryOp) else str(node)

        return f"{side(self.left)} {self.op} {side(self.right)}"


@dataclass(frozen=True)
class Keyword:
    """``NULL``, ``EMPTY`` or ``WHITESPACES_ONLY``."""

    name: str

    def __str__(self) -> str:
        return self.name


NULL = Keyword("NULL")
EMPTY = Keyword("EMPTY")
WHITESPACES_ONLY = Keyword("WHITESPACES_ONLY")

NumberExpr: TypeAlias = "Number | Call | BinaryOp | Keyword"


@dataclass(frozen=True)
class String:
    """A quoted string operand."""

    value: str

    def __str__(self) -> str:
        return quote(self.value)


@dataclass(frozen=True)
class DateLiteral:
    """``"2024-01-31"`` in a date condition."""

    value: str  # YYYY-MM-DD

    def __str__(self) -> str:
        return quote(self.value)


@dataclass(frozen=True)
class TimeLiteral:
    """``"9:30 AM"`` / ``"21:30"``: a time of day (today, in the rule's time zone)."""

    value: str

    def __str__(self) -> str:
        return quote(self.value)


@dataclass(frozen=True)
class Duration:
    """``24 hours``, ``3 days``, ``30 minutes``."""

    amount: int
    unit: str  # days | hours | minutes

    def seconds(self) -> float:
        return self.amount * {"days": 86400, "hours": 3600, "minutes": 60}[self.unit]

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


@dataclass(frozen=True)
class Now:
    """``now()`` or ``(now() - 3 days)``."""

    sign: str | None = None  # + | - | None
    offset: Duration | None = None

    def __str__(self) -> str:
        if self.offset is None:
            return "now()"
        return f"(now() {self.sign} {self.offset})"


@dataclass(frozen=True)
class Size:
    """``10 MB`` (file rules only)."""

    amount: int
    unit: str  # B KB MB GB TB

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


Operand: TypeAlias = "Number | Call | BinaryOp | Keyword | String | DateLiteral | TimeLiteral | Duration | Now | Size"

COMPARISONS = ("=", "!=", ">", ">=", "<", "<=")
OPERATORS = (*COMPARISONS, "between", "not between", "in", "not in", "matches", "not matches")


@dataclass(frozen=True)
class Condition:
    """``<op> operands``: ``> 5``, ``between 1 and 9`` (exclusive), ``in [..]``, ``matches "re"``.

    ``kind`` says how the operands read: "number", "string", "date", "duration" or "size".
    """

    kind: str
    op: str
    operands: tuple[Operand, ...]

    def __str__(self) -> str:
        if self.op in ("between", "not between"):
            return f"{self.op} {self.operands[0]} and {self.operands[1]}"
        if self.op in ("in", "not in"):
            return f"{self.op} [{', '.join(str(o) for o in self.operands)}]"
        return f"{self.op} {self.operands[0]}"


# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rule: ``ColumnValues "price" > 0 where "region = 'eu'" with threshold > 0.9 labels=["team"="x"]``.

    ``parameters`` are the quoted/bare parameters in order (``of``/``and`` connector words dropped);
    ``tags`` are the ``with name = value`` tags other than ``threshold`` (e.g. ``timeZone``).
    """

    rule_type: str
    parameters: tuple[str, ...] = ()
    condition: Condition | None = None
    where: str | None = None
    threshold: Condition | None = None
    tags: tuple[tuple[str, Condition], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        parts = [self.rule_type, *(quote(p) for p in self.parameters)]
        if self.condition is not None:
            parts.append(str(self.condition))
        if self.where is not None:
            parts.append(f"where {quote(self.where)}")
        if self.threshold is not None:
            parts.append(f"with threshold {self.threshold}")
        parts.extend(f"with {name} {cond}" for name, cond in self.tags)
        if self.labels:
            parts.append("labels=[" + ", ".join(f"{quote(k)}={quote(v)}" for k, v in self.labels) + "]")
        return " ".join(parts)

    def tag(self, name: str) -> str | None:
        """The value of tag ``name`` (case-insensitive), e.g. ``rule.tag("timeZone")``."""
        for key, cond in self.tags:
            if key.lower() == name.lower() and cond.operands:
                operand = cond.operands[0]
                return operand.value if isinstance(operand, String) else str(operand)
        return None


@dataclass(frozen=True)
class Composite:
    """``(A) and (B) and …`` or ``(A) or (B)``; nested composites keep their parentheses."""

    op: str  # and | or
    rules: tuple[RuleNode, ...]

    def __str__(self) -> str:
        return f" {self.op} ".join(f"({r})" for r in self.rules)


RuleNode: TypeAlias = "Rule | Composite"


@dataclass(frozen=True)
class Analyzer:
    """An entry of ``Analyzers = [...]``: computes metrics, never passes or fails."""

    analyzer_type: str
    parameters: tuple[str, ...] = ()

    def __str__(self) -> str:
        return " ".join([self.analyzer_type, *(quote(p) for p in self.parameters)])


def _dictionary(values: dict[str, str | tuple[str, ...]]) -> str:
    items = []
    for key, value in values.items():
        shown = quote(value) if isinstance(value, str) else "[" + ", ".join(quote(v) for v in value) + "]"
        items.append(f"    {quote(key)}: {shown}")
    return "{\n" + ",\n".join(items) + "\n}"


@dataclass(frozen=True)
class Ruleset:
    """A parsed DQDL document. ``str()`` is canonical DQDL that parses back to an equal ruleset."""

    rules: tuple[RuleNode, ...] = ()
    analyzers: tuple[Analyzer, ...] = ()
    metadata: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    data_sources: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    default_labels: tuple[tuple[str, str], ...] = ()
    variables: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    has_rules_section: bool = True

    def __str__(self) -> str:
        out = []
        if self.metadata:
            out.append("Metadata = " + _dictionary(self.metadata))
        if self.data_sources:
            out.append("DataSources = " + _dictionary(self.data_sources))
        for name, value in self.variables.items():
            shown = quote(value) if isinstance(value, str) else "[" + ", ".join(quote(v) for v in value) + "]"
            out.append(f"{name} = {shown}")
        if self.default_labels:
            out.append("DefaultLabels = [" + ", ".join(f"{quote(k)}={quote(v)}" for k, v in self.default_labels) + "]")
        if self.has_rules_section or not self.analyzers:
            out.append(_list("Rules", [str(r) for r in self.rules]))
        if self.analyzers:
            out.append(_list("Analyzers", [str(a) for a in self.analyzers]))
        return "\n".join(out) + "\n"

    def option(self, name: str) -> str | None:
        """A Metadata entry (case-insensitive key), e.g. ``compositeRuleEvaluation.method``."""
        for key, value in self.metadata.items():
            if key.lower() == name.lower() and isinstance(value, str):
                return value
        return None

    def to_json(self) -> str:
        """The rules' canonical texts as a JSON list (handy for storage and logs)."""
        return json.dumps([str(r) for r in self.rules])


def _list(name: str, items: list[str]) -> str:
    if not items:
        return f"{name} = []"
    return f"{name} = [\n" + ",\n".join(f"    {i}" for i in items) + "\n]"
