"""The DQDL parser: every rule type, every operator, document sections, canonical round trip, errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wharf.errors import DataQualityRuleError
from wharf.quality import Composite, Rule, parse, parse_rule
from wharf.quality.catalogue import RULE_TYPES
from wharf.quality.model import (
    NULL,
    WHITESPACES_ONLY,
    BinaryOp,
    Call,
    Condition,
    DateLiteral,
    Duration,
    Now,
    Number,
    Size,
    String,
)

# One example (or more) per rule type of the catalogue, written as AWS Glue documents them.
EXAMPLES = [
    "RowCount > 100",
    "RowCount between 10 and 20 where \"region = 'eu'\"",
    'RowCountMatch "reference" >= 0.9',
    "ColumnCount = 5",
    'ColumnExists "order_id"',
    'ColumnNamesMatchPattern "[a-z_]+"',
    'ColumnDataType "qty" = "INTEGER"',
    'ColumnDataType "qty" in ["INTEGER", "LONG"] with threshold > 0.9',
    'IsComplete "id"',
    'Completeness "email" > 0.95 where "active"',
    'IsUnique "id"',
    'IsUnique "first" "last"',
    'Uniqueness "id" > 0.99',
    'IsPrimaryKey "a" "b"',
    'UniqueValueRatio "tag" < 0.5',
    'DistinctValuesCount "state" between 40 and 60',
    'Entropy "state" > 1',
    'Mean "price" between 10 and 100',
    'Sum "amount" >= 0',
    'StandardDeviation "price" < 15.5',
    'Variance "price" < 200',
    'ColumnCorrelation "height" "weight" > 0.8',
    'ColumnLength "zip" = 5',
    'ColumnValues "status" in ["open", "closed"]',
    'ColumnValues "price" > 0 with threshold >= 0.99',
    'CustomSql "select count(*) from primary" > 0',
    'CustomSql "select id from primary where price > 0" with threshold > 0.9',
    'DataFreshness "updated_at" <= 24 hours',
    'ReferentialIntegrity "customer_id" "reference.id" = 1',
    'ReferentialIntegrity "{a,b}" "reference.{x,y}" > 0.9',
    'DatasetMatch "reference" "id->ref_id" >= 0.9',
    'DatasetMatch "reference" "id" "price,qty->quantity" = 1',
    'SchemaMatch "reference" = 1',
    'AggregateMatch "sum(amount)" "sum(reference.amount)" >= 0.95',
    'DetectAnomalies "RowCount"',
    'DetectAnomalies "Completeness" "email"',
    "DuplicateRowCount = 0",
    'FileFreshness "s3://b/p/" > (now() - 3 days)',
    'FileMatch "s3://a/" "s3://b/"',
    'FileSize "s3://b/f.csv" < 10 MB',
    'FileUniqueness "s3://b/" > 0.9',
]


@pytest.mark.parametrize("text", EXAMPLES)
def test_every_rule_type_parses_and_round_trips(text: str) -> None:
    rule = parse_rule(text)
    assert str(rule) == text
    assert parse_rule(str(rule)) == rule
    ruleset = parse(f"Rules = [ {text} ]")
    assert ruleset.rules == (rule,)
    assert parse(str(ruleset)) == ruleset


def test_the_examples_cover_the_catalogue() -> None:
    covered = {parse_rule(t).rule_type for t in EXAMPLES}  # type: ignore[union-attr]
    assert covered == {name for name, rt in RULE_TYPES.items() if not rt.analyzer_only}


@pytest.mark.parametrize(
    ("text", "op", "operands"),
    [
        ("RowCount = 3", "=", (Number(Decimal(3)),)),
        ("RowCount != 3", "!=", (Number(Decimal(3)),)),
        ("RowCount ! = 3", "!=", (Number(Decimal(3)),)),
        ("RowCount > -2.5", ">", (Number(Decimal("-2.5")),)),
        ("RowCount >= 3", ">=", (Number(Decimal(3)),)),
        ("RowCount < 3", "<", (Number(Decimal(3)),)),
        ("RowCount <= 3", "<=", (Number(Decimal(3)),)),
        ("RowCount between 1 and 9", "between", (Number(Decimal(1)), Number(Decimal(9)))),
        ("RowCount not between 1 and 9", "not between", (Number(Decimal(1)), Number(Decimal(9)))),
        ("RowCount in [1, 2]", "in", (Number(Decimal(1)), Number(Decimal(2)))),
        ("RowCount not in [1, 2]", "not in", (Number(Decimal(1)), Number(Decimal(2)))),
        ('ColumnValues "c" matches "[a-z]+"', "matches", (String("[a-z]+"),)),
        ('ColumnValues "c" not matches "[a-z]+"', "not matches", (String("[a-z]+"),)),
        ('ColumnValues "c" = NULL', "=", (NULL,)),
        ('ColumnValues "c" in ["a", NULL, whitespaces_only]', "in", (String("a"), NULL, WHITESPACES_ONLY)),
        ('ColumnValues "d" > "2024-01-31"', ">", (DateLiteral("2024-01-31"),)),
        ('ColumnValues "d" <= now()', "<=", (Now(),)),
        ('ColumnValues "d" > (now() - 3 days)', ">", (Now("-", Duration(3, "days")),)),
        ('DataFreshness "d" between 2 hours and 30 minutes', "between", (Duration(2, "hours"), Duration(30, "minutes"))),
        ("FileSize < 5 GB", "<", (Size(5, "GB"),)),
    ],
)
def test_every_operator(text: str, op: str, operands: tuple[object, ...]) -> None:
    rule = parse_rule(text)
    assert isinstance(rule, Rule) and rule.condition is not None
    assert (rule.condition.op, rule.condition.operands) == (op, operands)
    assert parse_rule(str(rule)) == rule


def test_condition_kinds() -> None:
    def kind(text: str) -> str:
        rule = parse_rule(text)
        assert isinstance(rule, Rule) and rule.condition is not None
        return rule.condition.kind

    assert kind('ColumnValues "c" = "2024-01-31"') == "string"  # equality with a date-shaped string compares text
    assert kind('ColumnValues "c" > "2024-01-31"') == "date"
    assert kind('ColumnValues "c" in [1, 2, NULL]') == "number"
    assert kind('ColumnValues "c" != EMPTY') == "string"
    assert kind('DataFreshness "c" > 3 days') == "duration"


def test_dynamic_expressions() -> None:
    rule = parse_rule("RowCount > avg(last(10)) * 0.8")
    assert isinstance(rule, Rule) and rule.condition is not None
    expr = rule.condition.operands[0]
    assert expr == BinaryOp("*", Call("avg", (Call("last", (Number(Decimal(10)),)),)), Number(Decimal("0.8")))
    for text in [
        "RowCount > min(last(3))",
        "RowCount < max(last(3)) + std(last(3)) * 2",
        "RowCount = index(last(5), 0)",
        "RowCount >= last()",
        'Mean "p" between avg(last(5)) - 1 and (avg(last(5)) + 1) / 2',
        "RowCount > -avg(last(2))",
    ]:
        parsed = parse_rule(text)
        assert parse_rule(str(parsed)) == parsed, text


def test_document_sections_variables_labels_and_comments() -> None:
    text = """
# a comment on its own line
Metadata = { "Version": "1.0", "compositeRuleEvaluation.method": "ROW" }
DataSources = { "Primary": "orders", "AdditionalDataSources": ["reference"], "reference": "db.customers" }
statuses = ["open", "closed"]   # a variable
col = "status"
DefaultLabels = ["team"="core", "tier"="1"]
Rules = [
    ColumnValues $col in $statuses labels=["owner"="ana"],   # trailing comment
    (IsComplete "id") and ((RowCount > 0) or (Mean "p" > 1)),
    ColumnValues "ts" > (now() - 2 hours) with timeZone = "Europe/Paris"
]
Analyzers = [ RowCount, Completeness "id", AllStatistics "price" ]
"""
    rs = parse(text)
    assert rs.metadata == {"Version": "1.0", "compositeRuleEvaluation.method": "ROW"}
    assert rs.option("compositeruleevaluation.METHOD") == "ROW"
    assert rs.data_sources["AdditionalDataSources"] == ("reference",)
    assert rs.variables == {"statuses": ("open", "closed"), "col": "status"}
    assert rs.default_labels == (("team", "core"), ("tier", "1"))
    first = rs.rules[0]
    assert isinstance(first, Rule)
    assert first.parameters == ("status",)
    assert first.condition == Condition("string", "in", (String("open"), String("closed")))
    assert first.labels == (("owner", "ana"),)
    composite = rs.rules[1]
    assert isinstance(composite, Composite) and composite.op == "and"
    assert isinstance(composite.rules[1], Composite) and composite.rules[1].op == "or"
    assert str(composite) == '(IsComplete "id") and ((RowCount > 0) or (Mean "p" > 1))'
    tagged = rs.rules[2]
    assert isinstance(tagged, Rule) and tagged.tag("timezone") == "Europe/Paris"
    assert [a.analyzer_type for a in rs.analyzers] == ["RowCount", "Completeness", "AllStatistics"]
    assert parse(str(rs)) == rs


def test_flattened_composites_and_precedence() -> None:
    three = parse_rule('(IsComplete "a") and (IsComplete "b") and (IsComplete "c")')
    assert isinstance(three, Composite) and len(three.rules) == 3
    mixed = parse_rule('(IsComplete "a") or (IsComplete "b") and (IsComplete "c")')
    assert isinstance(mixed, Composite) and mixed.op == "or"  # and binds tighter
    assert parse_rule("(RowCount > 1)") == parse_rule("RowCount > 1")
    assert parse(str(parse("Rules = [ ]"))).rules == ()


def _error(text: str) -> DataQualityRuleError:
    with pytest.raises(DataQualityRuleError) as info:
        parse(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("Rules = [ Foo > 1 ]", 1, 11, "Unknown rule type Foo"),
        ('Rules = [\n  IsComplet "a" ]', 2, 3, "did you mean IsComplete"),
        ('Rules = [ ColumnExists "a" where "x > 1" ]', 1, 28, "Where clause is not supported"),
        ('Rules = [ CustomSql "select 1" = 1 where "x" ]', 1, 36, "Where clause is not supported"),
        ('Rules = [ Mean "a" > 1 with threshold > 0.5 ]', 1, 24, "Threshold condition is not supported"),
        ('Rules = [ ColumnValues "a" > 1 with threshold > 0.5 with threshold > 0.6 ]', 1, 53, "Only one threshold"),
        ('Rules = [ Mean "a" ]', 1, 20, "Expected a condition"),
        ('Rules = [ IsComplete "a" > 1 ]', 1, 26, "takes no condition"),
        ('Rules = [ IsComplete "a" and IsComplete "b" ]', 1, 26, "must each be in parentheses"),
        ('Rules = [ ColumnValues "a" matches "[" ]', 1, 36, "Invalid regular expression"),
        ('Rules = [ IsComplete "a ]', 1, 22, "Unterminated string"),
        ("Rules = [ IsComplete $nope ]", 1, 23, "Undefined variable $nope"),
        ('Rules = [ ColumnCorrelation "a" > 1 ]', 1, 11, "takes 2 parameter(s), got 1"),
        ('Rules = [ Mean "a" = "x" ]', 1, 20, "takes a number condition"),
        ('Rules = [ ColumnValues "a" between "x" and "y" ]', 1, 28, "compares numbers or dates"),
        ('Rules = [ ColumnValues "a" > 1 where "" ]', 1, 38, "Empty where"),
        ("Rules = [ RowCount > 1,, RowCount > 2 ]", 1, 24, "Expected a rule type"),
        ("Rules = [ RowCount > 1 RowCount > 2 ]", 1, 24, "Expected ',' or ']'"),
        ("Rules = [ RowCount between 1 9 ]", 1, 30, "Expected 'and'"),
        ("Rules = [ RowCount > foo(3) ]", 1, 22, "Unknown function foo"),
        ("Rules = [ RowCount > last(0) ]", 1, 22, "last() takes one positive"),
        ('Rules = [ AllStatistics "a" ]', 1, 11, "is an analyzer, not a rule"),
        ('Analyzers = [ IsComplete "a" ]', 1, 15, "is not an analyzer"),
        ('Metadata = { "v": "1" }', 1, 24, "needs a Rules"),
        ("Rules = [ ]\nRules = [ ]", 2, 1, "appears twice"),
        ('Rules = [ ColumnValues "a" in ["x", ] ]', 1, 37, "Expected a value"),
        ('Rules = [ DataFreshness "a" > 3 weeks ]', 1, 33, "Unknown duration unit weeks"),
        ('Rules = [ DataFreshness "a" > 3 ]', 1, 29, "takes a duration condition"),
        ("Rules = [ RowCount > 1 ] @", 1, 26, "Unexpected character"),
        ('Rules = [ DetectAnomalies "Nope" ]', 1, 11, "unknown metric rule type Nope"),
    ],
)
def test_invalid_forms_name_line_and_column(text: str, line: int, column: int, words: str) -> None:
    error = _error(text)
    assert words in str(error)
    assert (error.line, error.column) == (line, column), str(error)
    assert "^" in str(error)  # the offending line is shown with a caret


# --- property: canonical text re-parses to an equal tree -------------------------------------------

names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8)
numbers = st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False, allow_infinity=False).map(
    lambda d: Number(d.normalize() if d != 0 else Decimal(0))
)
dynamic = st.sampled_from(["avg", "min", "max", "std"]).flatmap(
    lambda f: st.integers(1, 20).map(lambda k: Call(f, (Call("last", (Number(Decimal(k)),)),)))
)
number_expr = st.recursive(
    st.one_of(numbers, dynamic), lambda inner: st.builds(BinaryOp, st.sampled_from("+-*/"), inner, inner), max_leaves=4
)


def number_condition() -> st.SearchStrategy[Condition]:
    single = st.builds(
        lambda op, x: Condition("number", op, (x,)), st.sampled_from(["=", "!=", ">", ">=", "<", "<="]), number_expr
    )
    pair = st.builds(
        lambda op, a, b: Condition("number", op, (a, b)), st.sampled_from(["between", "not between"]), number_expr, number_expr
    )
    listed = st.builds(
        lambda op, xs: Condition("number", op, tuple(xs)),
        st.sampled_from(["in", "not in"]),
        st.lists(numbers, min_size=1, max_size=3),
    )
    return st.one_of(single, pair, listed)


string_condition = st.one_of(
    st.builds(lambda op, s: Condition("string", op, (String(s),)), st.sampled_from(["=", "!="]), names),
    st.builds(
        lambda op, xs: Condition("string", op, tuple(xs)),
        st.sampled_from(["in", "not in"]),
        st.lists(st.one_of(names.map(String), st.just(NULL)), min_size=1, max_size=3),
    ),
    st.builds(lambda s: Condition("string", "matches", (String(s),)), st.sampled_from(["[a-z]+", "\\d{3}", 'a"b'])),
)
labels = st.lists(st.tuples(names, names), max_size=2, unique_by=lambda kv: kv[0]).map(tuple)
wheres = st.one_of(st.none(), st.sampled_from(["x > 1", "name = 'a\"b'", "c IS NOT NULL"]))

metric_rule = st.builds(
    lambda t, col, cond, where, lab: Rule(t, (col,), cond, where, None, (), lab),
    st.sampled_from(["Mean", "Sum", "Completeness", "Uniqueness", "Entropy", "StandardDeviation"]),
    names,
    number_condition(),
    wheres,
    labels,
)
values_rule = st.builds(
    lambda col, cond, where, threshold: Rule("ColumnValues", (col,), cond, where, threshold),
    names,
    st.one_of(
        string_condition, number_condition().filter(lambda c: not any(isinstance(o, (Call, BinaryOp)) for o in c.operands))
    ),
    wheres,
    st.one_of(st.none(), st.builds(lambda x: Condition("number", ">", (x,)), numbers)),
)
plain_rule = st.one_of(metric_rule, values_rule, st.builds(lambda c: Rule("IsComplete", (c,)), names))
rule_tree = st.recursive(
    plain_rule,
    lambda inner: st.builds(
        lambda op, rules: Composite(op, tuple(rules)), st.sampled_from(["and", "or"]), st.lists(inner, min_size=2, max_size=3)
    ),
    max_leaves=5,
)


def _normal(node: object) -> object:
    """Composites of the same operator nested directly flatten when printed; compare flattened."""
    if isinstance(node, Composite):
        parts: list[object] = []
        for child in node.rules:
            flat = _normal(child)
            if isinstance(flat, Composite) and flat.op == node.op:
                parts.extend(flat.rules)
            else:
                parts.append(flat)
        return Composite(node.op, tuple(parts))  # type: ignore[arg-type]
    return node


@settings(max_examples=60, deadline=None)
@given(rule_tree)
def test_canonical_text_round_trips(node: Rule | Composite) -> None:
    text = str(node)
    reparsed = parse_rule(text)
    assert str(reparsed) == text
    assert reparsed == parse_rule(str(reparsed))
    # and-inside-and written with parentheses keeps its nesting; structure equals the original
    assert _normal(reparsed) == _normal(node)
