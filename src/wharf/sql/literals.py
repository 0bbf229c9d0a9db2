"""The literals a query compares with, as parameters: queries that differ only in them share one compiled form.

Dashboards and the HTTP API send the same query again and again with other values
(``WHERE id = 5``, then ``WHERE id = 6``). Compiling a query (parse, resolve, qualify, authorize,
generate) costs milliseconds; a prepared statement (``lake.sql(text, params)``) reuses its compiled
form for any values and re-plans only the table references whose pushed-down predicates hold a
parameter (``wharf.sql.statement_cache``). ``parametrize`` turns a query's comparison literals
into such parameters, so a literal-only change is a statement-cache hit.

Correctness comes first, so only literals whose value cannot change what compilation decides are
taken, and the text DuckDB runs is the user's own: a parameter slot is filled with the literal
*exactly as written* (``SqlLiteral.sql``), and planning binds the literal's parsed value, so
partition and file pruning still use it. Taken: a number or a plain ``'…'`` string that is an
operand of ``=``, ``<>``/``!=``, ``<``, ``<=``, ``>``, ``>=`` or ``BETWEEN … AND …``, directly in a
``WHERE``, ``ON`` or ``HAVING`` clause (or parentheses inside one). Never taken: literals in the
select list (an unnamed projection is named after its text), ``LIMIT``/``OFFSET``, ``GROUP BY``/
``ORDER BY`` positions, types (``DECIMAL(10, 2)``), typed literals (``DATE '…'``, ``INTERVAL``),
negative numbers, function arguments, identifiers, and anything in a table reference (time
travel ``AS OF``, table functions). Only DuckDB-dialect single queries without comments or
parameters of their own are rewritten; anything else runs as written.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlglot import TokenType, exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import TokenError

__all__ = ["SqlLiteral", "parametrize"]


@dataclass(frozen=True)
class SqlLiteral:
    """A literal taken out of a query: its text as written, and its value as the parser reads it."""

    sql: str  # as written: what DuckDB is given back in its place
    value: str  # a string's content (quotes removed, '' unescaped) or a number's digits
    is_string: bool

    def node(self) -> exp.Literal:
        """The literal as parsing the original text gives it (what planning binds into predicates)."""
        return exp.Literal(this=self.value, is_string=self.is_string)


_COMPARISONS = frozenset({TokenType.EQ, TokenType.NEQ, TokenType.LT, TokenType.LTE, TokenType.GT, TokenType.GTE})
_FILTERS = frozenset({TokenType.WHERE, TokenType.ON, TokenType.HAVING})
# Clause keywords after which literals are left alone (until the next WHERE/ON/HAVING at that depth).
_OTHER_CLAUSES = frozenset(
    {
        TokenType.SELECT,
        TokenType.FROM,
        TokenType.JOIN,
        TokenType.GROUP_BY,
        TokenType.ORDER_BY,
        TokenType.LIMIT,
        TokenType.OFFSET,
        TokenType.FETCH,
        TokenType.QUALIFY,
        TokenType.WINDOW,
        TokenType.UNION,
        TokenType.EXCEPT,
        TokenType.INTERSECT,
        TokenType.USING,
        TokenType.RETURNING,
        TokenType.DISTRIBUTE_BY,
        TokenType.CLUSTER_BY,
        TokenType.SORT_BY,
    }
)
# What may stand before a literal that is the left operand of a comparison (``1000 > x``).
_LEFT_OPERAND_AFTER = frozenset(
    {TokenType.WHERE, TokenType.ON, TokenType.HAVING, TokenType.AND, TokenType.OR, TokenType.NOT, TokenType.L_PAREN}
)
# Statements whose text names these take other paths (Spark time travel) or bind values themselves.
_SKIP_TOKENS = frozenset({TokenType.PLACEHOLDER, TokenType.PARAMETER, TokenType.SEMICOLON})

_DUCKDB = DuckDB()
_lock = threading.Lock()
_memo: OrderedDict[str, tuple[str, tuple[SqlLiteral, ...]] | None] = OrderedDict()
_MEMO_MAX = 1024


def parametrize(text: str) -> tuple[str, list[SqlLiteral]] | None:
    """``text`` (a DuckDB-dialect query) with its comparison literals replaced by ``?``, and those literals.

    None when nothing is replaced or the text is not a candidate (see the module docstring). The
    result is memoised per text: a repeated statement pays one dictionary lookup.

    ``parametrize("SELECT * FROM t WHERE id = 5 LIMIT 3")`` gives
    ``("SELECT * FROM t WHERE id = ? LIMIT 3", [SqlLiteral("5", "5", False)])``.
    """
    with _lock:
        if text in _memo:
            _memo.move_to_end(text)
            found = _memo[text]
            return None if found is None else (found[0], list(found[1]))
    made = _parametrize(text)
    with _lock:
        _memo[text] = made
        while len(_memo) > _MEMO_MAX:
            _memo.popitem(last=False)
    return None if made is None else (made[0], list(made[1]))


def _parametrize(text: str) -> tuple[str, tuple[SqlLiteral, ...]] | None:
    script = text.strip()
    if not script or ";" in script or "--" in script or "/*" in script:
        return None  # what the parser splits or keeps comments of: run as written
    lowered = script[:6].lower()
    if not lowered.startswith(("select", "with")) or "system_" in script.lower():
        return None
    try:
        tokens = _DUCKDB.tokenize(script)  # a new tokenizer per call: tokenizers keep state
    except TokenError:
        return None  # the parser reports it, on the text as written
    if any(t.token_type in _SKIP_TOKENS for t in tokens):
        return None
    # Per parenthesis depth: whether this depth is directly inside a WHERE/ON/HAVING clause, and
    # whether a BETWEEN at this depth still waits for its AND.
    filtering = [False]
    between = [False]
    taken: list[int] = []
    after_between_and = False
    for i, token in enumerate(tokens):
        kind = token.token_type
        if kind == TokenType.L_PAREN:
            filtering.append(filtering[-1])
            between.append(False)
        elif kind == TokenType.R_PAREN:
            if len(filtering) > 1:
                filtering.pop()
                between.pop()
        elif kind in _FILTERS:
            filtering[-1] = True
        elif kind in _OTHER_CLAUSES:
            filtering[-1] = False
        elif kind == TokenType.BETWEEN:
            between[-1] = True
        elif kind == TokenType.AND and between[-1]:
            between[-1] = False
            after_between_and = True
            continue
        elif kind in (TokenType.NUMBER, TokenType.STRING) and filtering[-1]:
            previous = tokens[i - 1].token_type if i else None
            following = tokens[i + 1].token_type if i + 1 < len(tokens) else None
            if (
                previous in _COMPARISONS
                or previous == TokenType.BETWEEN
                or after_between_and
                or (following in _COMPARISONS and previous in _LEFT_OPERAND_AFTER)
            ) and _plain(token.token_type, script[token.start : token.end + 1]):
                taken.append(i)
        after_between_and = False
    if not taken:
        return None
    pieces: list[str] = []
    literals: list[SqlLiteral] = []
    at = 0
    for i in taken:
        token = tokens[i]
        raw = script[token.start : token.end + 1]
        pieces.append(script[at : token.start])
        pieces.append("?")
        literals.append(SqlLiteral(raw, token.text, token.token_type == TokenType.STRING))
        at = token.end + 1
    pieces.append(script[at:])
    return "".join(pieces), tuple(literals)


def _plain(kind: TokenType, raw: str) -> bool:
    """A literal whose written form DuckDB reads as the parser's value: ``'…'`` strings and plain numbers."""
    if kind == TokenType.STRING:
        return len(raw) >= 2 and raw[0] == "'" and raw[-1] == "'"
    return raw[:1].isdigit() or raw[:1] == "."
