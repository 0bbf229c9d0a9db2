"""Fuzz: mutated statements from docs/sql.md never raise anything but a ``wharf.errors`` error.

Each example takes a real statement from the SQL reference, breaks it (drops, repeats, swaps or
inserts tokens, truncates it, nests it deeply) and runs it against a lake built by the reference's
own statements. Any exception that is not a ``WharfError`` fails, and so does ``InternalError``
(an unexpected exception the statement boundary had to wrap: a bug). ``make test`` runs a bounded
budget; ``make fuzz`` (``WHARF_FUZZ_EXAMPLES``) runs as many as you like.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import Tokenizer
from sqlglot.errors import TokenError

import wharf
from tests.test_docs import DOCS, sql_examples
from wharf.errors import InternalError, WharfError

EXAMPLES = int(os.environ.get("WHARF_FUZZ_EXAMPLES", "150"))
# make test replays the same examples every run (no flaky CI); make fuzz explores new ones.
RANDOM = bool(os.environ.get("WHARF_FUZZ_RANDOM"))
STATEMENTS = [e.sql for e in sql_examples(DOCS / "sql.md") if "<" not in e.sql]
NOISE = [
    "(",
    ")",
    ",",
    ";",
    "'",
    '"',
    "`",
    "NULL",
    "SELECT",
    "FROM",
    "WHERE",
    "AS",
    "JOIN",
    "ON",
    "GROUP BY",
    "ORDER BY",
    "1",
    "-1",
    "1e309",
    "'x'",
    "DATE '2024-13-45'",
    "TIMESTAMP 'nope'",
    "CAST(",
    "::",
    "*",
    "/",
    "CASE WHEN",
    "END",
    "[",
    "]",
    "{",
    "}",
    "FOR VERSION AS OF",
    "branch_",
    ".",
    "..",
    "x.y.z.w",
    "$1",
    "?",
    "INTERVAL",
    "OVER (",
    "UNION",
    "VALUES",
    "TABLE",
    "=>",
    "->",
    "\x00",
    "\n",
    "9223372036854775808",
    "read_parquet('/etc/hostname')",
    "DEFAULT",
    "PARTITIONED BY (",
    "TBLPROPERTIES (",
    "RETAIN",
    "DAYS",
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[wharf.Lakehouse]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "lake"
    with wharf.connect(path, user="fuzzer") as lh:
        for statement in STATEMENTS:  # the reference's own state: its tables, branches, tags
            try:
                lh.sql(statement)
            except WharfError:
                pass
        yield lh


def _tokens(sql: str) -> list[str]:
    try:
        return [sql[t.start : t.end + 1] for t in Tokenizer().tokenize(sql)]
    except TokenError:
        return sql.split()


@st.composite
def mutated(draw: st.DrawFn) -> str:
    tokens = _tokens(draw(st.sampled_from(STATEMENTS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["drop", "repeat", "swap", "insert", "truncate", "nest", "chain"]))
        i = draw(st.integers(0, max(len(tokens) - 1, 0))) if tokens else 0
        if kind == "drop" and tokens:
            del tokens[i]
        elif kind == "repeat" and tokens:
            tokens.insert(i, tokens[i])
        elif kind == "swap" and len(tokens) > 1:
            j = min(i + 1, len(tokens) - 1)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif kind == "insert":
            tokens.insert(i, draw(st.sampled_from(NOISE)))
        elif kind == "truncate":
            tokens = tokens[:i]
        elif kind == "nest":
            depth = draw(st.sampled_from([3, 40, 300, 3000]))
            tokens.insert(i, "(" * depth + "1" + ")" * depth)
        else:
            tokens.insert(i, " + ".join(["1"] * draw(st.sampled_from([10, 2000]))))
    return " ".join(tokens)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, suppress_health_check=list(HealthCheck))
@given(statement=mutated())
def test_mutated_statements_raise_only_wharf_errors(lake: wharf.Lakehouse, statement: str) -> None:
    try:
        result = lake.sql(statement)
        result.to_arrow()  # errors raised while the result streams count too
    except InternalError as exc:
        pytest.fail(f"internal error for {statement!r}: {exc.__cause__!r}")
    except WharfError:
        pass


@pytest.mark.parametrize("depth", [50, 256])
def test_deep_nesting_up_to_the_limit_runs(lake: wharf.Lakehouse, depth: int) -> None:
    assert lake.sql("SELECT " + "(" * depth + "1" + ")" * depth).scalar() == 1
    nested = "SELECT 1 AS x"
    for _ in range(depth // 4):
        nested = f"SELECT x FROM ({nested})"
    assert lake.sql(nested).scalar() == 1


def test_deeper_nesting_is_refused_clearly(lake: wharf.Lakehouse) -> None:
    with pytest.raises(wharf.errors.SqlParseError, match="more than 256 levels") as info:
        lake.sql("SELECT " + "(" * 5000 + "1" + ")" * 5000)
    assert info.value.line == 1 and info.value.column is not None


def test_long_expression_chains_run_or_are_refused_clearly(lake: wharf.Lakehouse) -> None:
    assert lake.sql("SELECT " + " + ".join(["1"] * 900)).scalar() == 900
    with pytest.raises(wharf.errors.SqlError, match="expression depth"):  # DuckDB's own limit: 1,000
        lake.sql("SELECT " + " + ".join(["1"] * 1500))
