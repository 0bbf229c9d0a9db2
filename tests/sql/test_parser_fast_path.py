"""The parser's shortcuts for plain queries give what the general path gives.

A one-statement script without comments is not tokenized just to be split, and a statement that
starts like a query (SELECT, WITH, FROM, VALUES) goes straight to sqlglot instead of first being
tokenized for the extension grammars. These tests hold the shortcuts to the general path.
"""

from __future__ import annotations

import pytest

import wharf
from wharf.errors import SqlParseError
from wharf.sql import parser

QUERY_STARTS = [
    "SELECT 1",
    "select * from t where a = 1",
    "WITH x AS (SELECT 1) SELECT * FROM x",
    "FROM t SELECT a",
    "VALUES (1), (2)",
    "(SELECT 1) UNION ALL (SELECT 2)",
    "  \n\t SELECT 1",
]


def test_no_extension_grammar_claims_a_query() -> None:
    """The shortcut assumes no extension statement starts like a query: every registered grammar is asked."""
    import wharf.sql.executor  # noqa: F401 - registers every statement module's grammar

    assert len(parser.EXTENSIONS) > 5
    for text in QUERY_STARTS:
        for matches, grammar in parser.EXTENSIONS:
            stream = parser.TokenStream(text)
            assert not matches(stream), f"{grammar.__module__}.{grammar.__name__} claims {text!r}"


@pytest.mark.parametrize(
    "script",
    [
        "SELECT 1",
        "   SELECT 1   ",
        "\n\n  SELECT a,\n b FROM t\n",
        "\r\n\r\nSELECT 1",
        "\r\rSELECT 1",
        "SELECT 'a' || \"b\" FROM t",
        "",
        "  \n ",
    ],
)
def test_splitting_one_statement_without_tokens_agrees_with_the_tokens(script: str) -> None:
    # A trailing semicolon sends the script through the tokenizing path; it ends the same statement.
    assert parser.split(script) == parser.split(script + ";")


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("SELECT a, b FROM t WHERE c IN (1, 2) ORDER BY a", "duckdb"),
        ("WITH x AS (SELECT 1 AS a) SELECT a FROM x", "duckdb"),
        ('SELECT `a` FROM db.t WHERE s = "x"', "spark"),
        ("SELECT CAST(a AS DECIMAL) FROM t", "spark"),
        ("SELECT * FROM t FOR VERSION AS OF 3", "duckdb"),
        ("VALUES (1, 'a')", "duckdb"),
    ],
)
def test_a_plain_query_parses_as_through_the_grammar_tokens(text: str, dialect: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parser._plain_query(text)
    fast = parser.parse_one(text, dialect)
    monkeypatch.setattr(parser, "_plain_query", lambda text: False)
    assert fast == parser.parse_one(text, dialect)
    assert fast.sql(dialect) == parser.parse_one(text, dialect).sql(dialect)


def test_queries_the_shortcut_leaves_to_the_general_path() -> None:
    assert not parser._plain_query("SELECT * FROM t FOR SYSTEM_VERSION AS OF 3")  # Spark's spelling is rewritten
    assert not parser._plain_query("SELECT " + "(" * (parser.MAX_NESTING + 1) + "1" + ")" * (parser.MAX_NESTING + 1))
    assert not parser._plain_query("CALL system.rollback_to_snapshot('t', 1)")
    assert not parser._plain_query("-- a comment\nSELECT 1")


def test_errors_in_a_plain_query_are_sql_errors(lake: wharf.Lakehouse) -> None:
    with pytest.raises(SqlParseError):
        lake.sql("SELECT 'unterminated")
    for script in ("\n\nSELECT 1 FROM", "\n\nSELECT 1 FROM;"):  # the line is the script's, either way
        with pytest.raises(SqlParseError) as info:
            lake.sql(script)
        assert info.value.line == 3
    deep = "SELECT " + "(" * (parser.MAX_NESTING + 1) + "1" + ")" * (parser.MAX_NESTING + 1)
    with pytest.raises(SqlParseError, match="nests parentheses"):
        lake.sql(deep)
    assert lake.sql("  \n  SELECT 41 + 1").scalar() == 42
