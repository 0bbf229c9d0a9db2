"""A hand-written recursive-descent parser for DQDL (AWS Glue Data Quality's rule language).

Grammar (after awslabs/dqdl, written here from its documentation)::

    document   := section*                       Metadata, DataSources, variables, DefaultLabels,
                                                 Rules, Analyzers (each at most once)
    rules      := "Rules" "=" "[" [top ("," top)*] "]"
    top        := conj ("or" conj)*              "and" binds tighter than "or"
    conj       := unit ("and" unit)*
    unit       := "(" top ")" | rule             composite operands must be parenthesised
    rule       := RuleType param* [condition] {where | with-tag | labels}
    param      := ["of" | "and"] (STRING | IDENT | "$" IDENT)
    condition  := op operand | ["not"] "between" operand "and" operand | ["not"] "in" "[" operand,* "]"
                | ["not"] "matches" STRING
    operand    := number-expr | STRING | NULL | EMPTY | WHITESPACES_ONLY | INT unit | now() | "(" now() ± INT unit ")"

Errors are ``DataQualityRuleError`` with the line and column of the offending token.
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal

from wharf.errors import DataQualityRuleError
from wharf.quality.catalogue import RULE_TYPES, RuleType
from wharf.quality.model import (
    EMPTY,
    NULL,
    WHITESPACES_ONLY,
    Analyzer,
    BinaryOp,
    Call,
    Composite,
    Condition,
    DateLiteral,
    Duration,
    Keyword,
    Now,
    Number,
    NumberExpr,
    Operand,
    Rule,
    RuleNode,
    Ruleset,
    Size,
    String,
    TimeLiteral,
)
from wharf.quality.tokens import Token, tokenize

KEYWORDS = {"null": NULL, "empty": EMPTY, "whitespaces_only": WHITESPACES_ONLY}
DURATION_UNITS = {"days", "hours", "minutes"}
SIZE_UNITS = {"B", "KB", "MB", "GB", "TB"}
FUNCTIONS = {"last", "avg", "min", "max", "std", "index"}
SECTIONS = ("Metadata", "DataSources", "DefaultLabels", "Rules", "Analyzers")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_RE = re.compile(r"^(\d{1,2}:\d{2} (AM|PM)|\d{2}:\d{2})$")
# Words that end a rule's parameter list.
RESERVED = {"between", "in", "not", "matches", "where", "with", "labels", "and", "or", "of"}


def parse(text: str) -> Ruleset:
    """Parse a DQDL document into a ``Ruleset``; raises ``DataQualityRuleError`` (line, column) if invalid.

    >>> str(parse('Rules = [ RowCount > 0 ]'))
    'Rules = [\\n    RowCount > 0\\n]\\n'
    """
    return _Parser(text).document()


def parse_rule(text: str) -> RuleNode:
    """Parse one rule (or composite) on its own, e.g. ``parse_rule('IsComplete "id"')``."""
    parser = _Parser(text)
    node = parser.top()
    parser.expect_eof()
    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.variables: dict[str, str | tuple[str, ...]] = {}

    # --- token helpers ---------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "eof":
            self.pos += 1
        return token

    def error(self, message: str, token: Token | None = None, hint: str | None = None) -> DataQualityRuleError:
        token = token or self.tok
        return DataQualityRuleError(message, line=token.line, column=token.column, text=self.text, hint=hint)

    def expected(self, what: str, hint: str | None = None) -> DataQualityRuleError:
        return self.error(f"Expected {what}, found {self.tok.describe()}", hint=hint)

    def is_punct(self, text: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == text

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.text.lower() in words

    def expect_punct(self, text: str, what: str | None = None) -> Token:
        if not self.is_punct(text):
            raise self.expected(what or f"'{text}'")
        return self.advance()

    def expect_string(self, what: str) -> str:
        if self.tok.kind != "string":
            raise self.expected(what)
        return self.advance().text

    def expect_eof(self) -> None:
        if self.tok.kind != "eof":
            raise self.expected("the end of the ruleset", hint="separate rules with ',' inside Rules = [ … ]")

    # --- document ---------------------------------------------------------------------------

    def document(self) -> Ruleset:
        seen: set[str] = set()
        metadata: dict[str, str | tuple[str, ...]] = {}
        sources: dict[str, str | tuple[str, ...]] = {}
        labels: tuple[tuple[str, str], ...] = ()
        rules: tuple[RuleNode, ...] = ()
        analyzers: tuple[Analyzer, ...] = ()
        while self.tok.kind != "eof":
            head = self.tok
            if head.kind != "ident":
                raise self.expected("a section (Rules = [ … ], Analyzers, Metadata, DataSources) or a variable")
            name = head.text
            if name in seen:
                raise self.error(f"Section {name} appears twice", head)
            self.advance()
            self.expect_punct("=", f"'=' after {name}")
            if name in SECTIONS:
                seen.add(name)
            if name == "Metadata":
                metadata = self.dictionary()
            elif name == "DataSources":
                sources = self.dictionary()
            elif name == "DefaultLabels":
                labels = self.label_list()
            elif name == "Rules":
                rules = self.rule_list()
            elif name == "Analyzers":
                analyzers = self.analyzer_list()
            else:
                if head.text in self.variables:
                    raise self.error(f"Variable {name} is defined twice", head)
                self.variables[name] = self.variable_value()
        if "Rules" not in seen and "Analyzers" not in seen:
            raise self.error(
                "A ruleset needs a Rules = [ … ] or Analyzers = [ … ] section",
                hint='for example: Rules = [ IsComplete "id" ]',
            )
        return Ruleset(
            rules=rules,
            analyzers=analyzers,
            metadata=metadata,
            data_sources=sources,
            default_labels=labels,
            variables=dict(self.variables),
            has_rules_section="Rules" in seen,
        )

    def dictionary(self) -> dict[str, str | tuple[str, ...]]:
        self.expect_punct("{", '\'{\' (a dictionary of "key": "value" pairs)')
        out: dict[str, str | tuple[str, ...]] = {}
        while True:
            key = self.expect_string('a quoted key ("Version")')
            self.expect_punct(":")
            if self.is_punct("["):
                out[key] = self.string_array()
            else:
                out[key] = self.expect_string("a quoted value or an array of quoted values")
            if self.is_punct(","):
                self.advance()
                continue
            self.expect_punct("}", "',' or '}'")
            return out

    def string_array(self) -> tuple[str, ...]:
        self.expect_punct("[")
        items = [self.expect_string("a quoted string")]
        while self.is_punct(","):
            self.advance()
            items.append(self.expect_string("a quoted string"))
        self.expect_punct("]", "',' or ']'")
        return tuple(items)

    def variable_value(self) -> str | tuple[str, ...]:
        if self.is_punct("["):
            return self.string_array()
        return self.expect_string('a quoted string or an array of quoted strings (x = "a" or x = ["a", "b"])')

    def label_list(self) -> tuple[tuple[str, str], ...]:
        self.expect_punct("[")
        out: list[tuple[str, str]] = []
        if self.is_punct("]"):
            self.advance()
            return ()
        while True:
            key = self.expect_string('a label "key"="value"')
            self.expect_punct("=", "'=' in a label")
            out.append((key, self.expect_string("a quoted label value")))
            if self.is_punct(","):
                self.advance()
                continue
            self.expect_punct("]", "',' or ']'")
            return tuple(out)

    def rule_list(self) -> tuple[RuleNode, ...]:
        self.expect_punct("[", "'[' to open the list of rules")
        out: list[RuleNode] = []
        if self.is_punct("]"):
            self.advance()
            return ()
        while True:
            out.append(self.top())
            if self.is_punct(","):
                self.advance()
                continue
            if self.is_punct("]"):
                self.advance()
                return tuple(out)
            raise self.expected("',' or ']' after a rule")

    def analyzer_list(self) -> tuple[Analyzer, ...]:
        self.expect_punct("[", "'[' to open the list of analyzers")
        out: list[Analyzer] = []
        if self.is_punct("]"):
            self.advance()
            return ()
        while True:
            head = self.tok
            rule_type = self.rule_type()
            if not rule_type.analyzer:
                raise self.error(f"{rule_type.name} is not an analyzer", head, hint="move it to Rules = [ … ]")
            params = self.parameters(rule_type, head)
            out.append(Analyzer(rule_type.name, params))
            if self.is_punct(","):
                self.advance()
                continue
            self.expect_punct("]", "',' or ']' after an analyzer")
            return tuple(out)

    # --- rules ------------------------------------------------------------------------------

    def top(self) -> RuleNode:
        first = self.conjunction()
        if not self.is_word("or"):
            return first
        parts = [first]
        while self.is_word("or"):
            self.advance()
            parts.append(self.conjunction())
        return Composite("or", tuple(parts))

    def conjunction(self) -> RuleNode:
        first = self.unit()
        if not self.is_word("and"):
            return first
        parts = [first]
        while self.is_word("and"):
            self.advance()
            parts.append(self.unit())
        return Composite("and", tuple(parts))

    def unit(self) -> RuleNode:
        if self.is_punct("("):
            self.advance()
            inner = self.top()
            self.expect_punct(")", "')' to close the composite rule")
            return inner
        rule = self.rule()
        if self.is_word("and", "or"):
            raise self.error(
                f"Rules joined by '{self.tok.text}' must each be in parentheses",
                hint=f"write ({rule}) {self.tok.text.lower()} (…)",
            )
        return rule

    def rule_type(self) -> RuleType:
        head = self.tok
        if head.kind != "ident":
            raise self.expected("a rule type (RowCount, IsComplete, ColumnValues, …)")
        rule_type = RULE_TYPES.get(head.text)
        if rule_type is None:
            close = difflib.get_close_matches(head.text, list(RULE_TYPES), n=1)
            raise self.error(
                f"Unknown rule type {head.text}",
                head,
                hint=f"did you mean {close[0]}?" if close else "see docs/quality.md for the rule types",
            )
        self.advance()
        return rule_type

    def parameters(self, rule_type: RuleType, head: Token) -> tuple[str, ...]:
        params: list[str] = []
        while True:
            if (
                self.is_word("of", "and")
                and self.peek().kind in ("string",)
                or (self.is_word("of", "and") and self.peek().kind == "punct" and self.peek().text == "$")
            ):
                self.advance()
            if self.tok.kind == "string":
                params.append(self.advance().text)
            elif self.is_punct("$"):
                value = self.variable_reference()
                if not isinstance(value, str):
                    raise self.error("A rule parameter variable must hold one string, not a list", self.tokens[self.pos - 1])
                params.append(value)
            elif self.tok.kind == "ident" and self.tok.text.lower() not in RESERVED and self.tok.text.lower() not in KEYWORDS:
                if rule_type.name == "DetectAnomalies" or not params and rule_type.min_params:
                    params.append(self.advance().text)
                else:
                    break
            else:
                break
        if len(params) < rule_type.min_params or (rule_type.max_params is not None and len(params) > rule_type.max_params):
            want = (
                f"{rule_type.min_params}"
                if rule_type.min_params == rule_type.max_params
                else f"{rule_type.min_params} or more"
                if rule_type.max_params is None
                else f"{rule_type.min_params} to {rule_type.max_params}"
            )
            raise self.error(
                f"{rule_type.name} takes {want} parameter(s), got {len(params)}",
                head if len(params) < rule_type.min_params else self.tok,
            )
        if rule_type.name == "DetectAnomalies" and params[0] not in RULE_TYPES:
            raise self.error(f"DetectAnomalies: unknown metric rule type {params[0]}", head)
        return tuple(params)

    def variable_reference(self) -> str | tuple[str, ...]:
        self.expect_punct("$")
        name = self.tok
        if name.kind != "ident":
            raise self.expected("a variable name after '$'")
        self.advance()
        if name.text not in self.variables:
            raise self.error(f"Undefined variable ${name.text}", name, hint=f'define it before Rules: {name.text} = "…"')
        return self.variables[name.text]

    def rule(self) -> Rule:
        head = self.tok
        rule_type = self.rule_type()
        if rule_type.analyzer_only:
            raise self.error(f"{rule_type.name} is an analyzer, not a rule", head, hint="move it to Analyzers = [ … ]")
        params = self.parameters(rule_type, head)
        condition: Condition | None = None
        if rule_type.conditions and self.at_condition():
            condition = self.condition(rule_type.conditions, rule_type.name)
        elif rule_type.conditions and not rule_type.condition_optional:
            raise self.expected(f"a condition for {rule_type.name} (for example > 0, between 1 and 10)")
        elif not rule_type.conditions and self.at_condition():
            raise self.error(f"{rule_type.name} takes no condition", hint=f'write it as {rule_type.name} "column"')
        where: str | None = None
        threshold: Condition | None = None
        tags: list[tuple[str, Condition]] = []
        labels: tuple[tuple[str, str], ...] = ()
        while True:
            if self.is_word("where"):
                word = self.advance()
                if not rule_type.where:
                    raise self.error(f"Where clause is not supported for rule type {rule_type.name}", word)
                if where is not None:
                    raise self.error("A rule takes one where clause", word)
                token = self.tok
                where = self.expect_string('a quoted SQL predicate after where ("price > 0")')
                if not where.strip():
                    raise self.error(f"Empty where condition for rule type {rule_type.name}", token)
            elif self.is_word("with"):
                word = self.advance()
                name = self.tok
                if name.kind != "ident":
                    raise self.expected("a tag name after 'with' (threshold, timeZone, …)")
                self.advance()
                if name.text.lower() == "threshold":
                    if not rule_type.threshold:
                        raise self.error(f"Threshold condition is not supported for rule type {rule_type.name}", word)
                    if threshold is not None:
                        raise self.error("Only one threshold condition at a time is supported", word)
                    threshold = self.condition(("number",), "threshold")
                else:
                    tags.append((name.text, self.condition(("string", "number"), f"tag {name.text}")))
            elif self.is_word("labels"):
                self.advance()
                self.expect_punct("=", "'=' after labels")
                labels = self.label_list()
            else:
                break
        return Rule(rule_type.name, params, condition, where, threshold, tuple(tags), labels)

    # --- conditions -------------------------------------------------------------------------

    def at_condition(self) -> bool:
        if self.tok.kind == "punct":
            return self.tok.text in ("=", "!=", ">", ">=", "<", "<=", "!")
        return self.is_word("between", "in", "not", "matches")

    def condition(self, kinds: tuple[str, ...], what: str) -> Condition:
        start = self.tok
        op = self.operator()
        operands: list[Operand]
        if op in ("between", "not between"):
            low = self.operand()
            if not self.is_word("and"):
                raise self.expected("'and' between the two bounds")
            self.advance()
            operands = [low, self.operand()]
        elif op in ("in", "not in"):
            if self.is_punct("$"):
                value = self.variable_reference()
                operands = [String(v) for v in ((value,) if isinstance(value, str) else value)]
            else:
                self.expect_punct("[", "'[' to open the list of values")
                operands = [self.operand()]
                while self.is_punct(","):
                    self.advance()
                    operands.append(self.operand())
                self.expect_punct("]", "',' or ']'")
        elif op in ("matches", "not matches"):
            token = self.tok
            pattern = self.expect_string('a quoted regular expression after matches ("[a-z]+")')
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.error(f"Invalid regular expression: {exc}", token) from exc
            operands = [String(pattern)]
        else:
            operands = [self.operand()]
        kind = self.classify(op, operands, kinds, what, start)
        if kind == "date":
            operands = [self.as_date(o, start) for o in operands]
        return Condition(kind, op, tuple(operands))

    def operator(self) -> str:
        token = self.tok
        if token.kind == "punct":
            if token.text == "!":
                self.advance()
                self.expect_punct("=", "'=' after '!'")
                return "!="
            self.advance()
            return token.text
        word = token.text.lower()
        if word == "not":
            self.advance()
            if not self.is_word("between", "in", "matches"):
                raise self.expected("between, in or matches after not")
            return "not " + self.advance().text.lower()
        return self.advance().text.lower()

    def classify(self, op: str, operands: list[Operand], kinds: tuple[str, ...], what: str, at: Token) -> str:
        types = {type(o) for o in operands}
        if Duration in types:
            kind = "duration"
        elif Size in types:
            kind = "size"
        elif Now in types:
            kind = "date"
        elif String in types:
            if op in ("=", "!=", "in", "not in", "matches", "not matches") and "string" in kinds:
                kind = "string"
            elif all(
                isinstance(o, Keyword) or (isinstance(o, String) and (DATE_RE.match(o.value) or TIME_RE.match(o.value)))
                for o in operands
            ):
                kind = "date"
            elif op in ("=", "!=", "in", "not in", "matches", "not matches"):
                kind = "string"
            else:
                raise self.error(f"'{op}' compares numbers or dates, not strings", at)
        elif types <= {Keyword}:
            kind = "string" if "string" in kinds or any(o != NULL for o in operands) else "number"
        else:
            kind = "number"
            if any(isinstance(o, Keyword) and o != NULL for o in operands):
                raise self.error("EMPTY and WHITESPACES_ONLY compare strings, not numbers", at)
        if kind == "string" and op in ("between", "not between", ">", ">=", "<", "<="):
            raise self.error(f"'{op}' compares numbers or dates, not strings", at)
        if kind not in kinds:
            raise self.error(
                f"{what} takes a {' or '.join(kinds)} condition, not a {kind} condition",
                at,
                hint=_condition_hint(kinds),
            )
        return kind

    def as_date(self, operand: Operand, at: Token) -> Operand:
        if isinstance(operand, String):
            if DATE_RE.match(operand.value):
                return DateLiteral(operand.value)
            if TIME_RE.match(operand.value):
                return TimeLiteral(operand.value)
            raise self.error(f'"{operand.value}" is not a date (YYYY-MM-DD) or a time (9:30 AM, 21:30)', at)
        return operand

    def operand(self) -> Operand:
        token = self.tok
        if token.kind == "string":
            self.advance()
            return String(token.text)
        if self.is_punct("$"):
            value = self.variable_reference()
            if not isinstance(value, str):
                raise self.error("Use 'in $list' for a list variable", token)
            return String(value)
        if token.kind == "ident" and token.text.lower() in KEYWORDS:
            self.advance()
            return KEYWORDS[token.text.lower()]
        if token.kind == "ident" and token.text == "now" and self.peek().text == "(":
            return self.now()
        if self.is_punct("(") and self.peek().text == "now":
            self.advance()
            self.now()
            sign = self.tok
            if not (self.is_punct("-") or self.is_punct("+")):
                raise self.expected("'-' or '+' after now()")
            self.advance()
            offset = self.duration_after_amount()
            self.expect_punct(")", "')' after the duration")
            return Now(sign.text, offset)
        if token.kind == "number" and "." not in token.text:
            unit = self.peek()
            if unit.kind == "ident" and unit.text in DURATION_UNITS:
                return self.duration_after_amount()
            if unit.kind == "ident" and unit.text.lower().rstrip("s") in {
                "second",
                "minute",
                "hour",
                "day",
                "week",
                "month",
                "year",
            }:
                raise self.error(f"Unknown duration unit {unit.text}", unit, hint="use days, hours or minutes")
            if unit.kind == "ident" and unit.text in SIZE_UNITS:
                self.advance()
                self.advance()
                return Size(int(token.text), unit.text)
        return self.number_expr()

    def now(self) -> Now:
        self.advance()
        self.expect_punct("(", "'(' after now")
        self.expect_punct(")", "')' after now(")
        return Now()

    def duration_after_amount(self) -> Duration:
        amount = self.tok
        if amount.kind != "number" or "." in amount.text:
            raise self.expected("a whole number of days, hours or minutes")
        self.advance()
        unit = self.tok
        if unit.kind != "ident" or unit.text not in DURATION_UNITS:
            raise self.expected("days, hours or minutes")
        self.advance()
        return Duration(int(amount.text), unit.text)

    # number-expr := term (("+"|"-") term)* ; term := factor (("*"|"/") factor)* ; factor := ["-"] atom
    def number_expr(self) -> NumberExpr:
        node = self.term()
        while self.is_punct("+") or self.is_punct("-"):
            op = self.advance().text
            node = BinaryOp(op, node, self.term())
        return node

    def term(self) -> NumberExpr:
        node = self.factor()
        while self.is_punct("*") or self.is_punct("/"):
            op = self.advance().text
            node = BinaryOp(op, node, self.factor())
        return node

    def factor(self) -> NumberExpr:
        token = self.tok
        if self.is_punct("-"):
            self.advance()
            inner = self.factor()
            if isinstance(inner, Number):
                return Number(-inner.value)
            return BinaryOp("*", Number(Decimal(-1)), inner)
        if token.kind == "number":
            self.advance()
            return Number(Decimal(token.text))
        if self.is_punct("("):
            self.advance()
            inner = self.number_expr()
            self.expect_punct(")")
            return inner
        if token.kind == "ident" and token.text.lower() == "null":
            self.advance()
            return NULL
        if token.kind == "ident" and self.peek().text == "(":
            if token.text not in FUNCTIONS:
                raise self.error(
                    f"Unknown function {token.text}", token, hint="dynamic rules use last, avg, min, max, std, index"
                )
            self.advance()
            self.advance()
            args: list[NumberExpr] = []
            if not self.is_punct(")"):
                args.append(self.number_expr())
                while self.is_punct(","):
                    self.advance()
                    args.append(self.number_expr())
            self.expect_punct(")", "',' or ')'")
            _check_call(self, token, args)
            return Call(token.text, tuple(args))
        raise self.expected("a value (a number, a quoted string, NULL, a date, a duration)")


def _check_call(parser: _Parser, token: Token, args: list[NumberExpr]) -> None:
    name = token.text
    if name == "last":
        if len(args) > 1 or (args and not (isinstance(args[0], Number) and args[0].value == int(args[0].value) > 0)):
            raise parser.error("last() takes one positive whole number: last(3)", token)
    elif name == "index":
        if len(args) != 2 or not (isinstance(args[1], Number) and args[1].value == int(args[1].value) >= 0):
            raise parser.error("index() takes a list and a position: index(last(5), 0)", token)
    elif len(args) != 1:
        raise parser.error(f"{name}() takes one argument: {name}(last(10))", token)


def _condition_hint(kinds: tuple[str, ...]) -> str:
    examples = {
        "number": "> 0.9, between 1 and 10, in [1, 2]",
        "string": '= "a", in ["a", "b"], matches "[A-Z]+"',
        "date": '> "2024-01-01", > (now() - 3 days)',
        "duration": "<= 24 hours",
        "size": "< 10 MB",
    }
    return "for example: " + "; ".join(examples[k] for k in kinds)
