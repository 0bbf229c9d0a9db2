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

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlglot import exp

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


# A small scanner instead of sqlglot's tokenizer (which costs ~0.2-0.4 ms per new text, as much as
# the compiled form saves on a short query): the text is cut into words, numbers, '…' strings,
# "…" identifiers and operators. Anything it is unsure of ($, backslashes, comments, a number run
# into letters such as 0x1F) makes it leave the text alone; what it rewrites is parsed by sqlglot
# afterwards, and a text that then fails to parse runs as written.
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*")
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.$])
  | (?P<word>[A-Za-z_][\w]*)
  | (?P<op><=>|<>|<=|>=|==|!=|=>|->>|->|<<|>>|::|\|\||[-+*/%^~!&|=<>(),.\[\]{}:@#])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_COMPARISONS = frozenset({"=", "==", "<>", "!=", "<", "<=", ">", ">="})
_FILTERS = frozenset({"WHERE", "ON", "HAVING"})
# Clause keywords after which literals are left alone (until the next WHERE/ON/HAVING at that depth).
_OTHER_CLAUSES = frozenset(
    {
        "FROM",
        "JOIN",
        "GROUP",
        "ORDER",
        "LIMIT",
        "OFFSET",
        "FETCH",
        "QUALIFY",
        "WINDOW",
        "UNION",
        "EXCEPT",
        "INTERSECT",
        "USING",
        "RETURNING",
        "DISTRIBUTE",
        "CLUSTER",
        "SORT",
        "PIVOT",
        "UNPIVOT",
        "SAMPLE",
        "TABLESAMPLE",
    }
)
# What may stand before a literal that is the left operand of a comparison (``1000 > x``).
_LEFT_OPERAND_AFTER = frozenset({"WHERE", "ON", "HAVING", "AND", "OR", "NOT", "("})

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


def _scan(script: str) -> list[tuple[str, str, int, int]] | None:
    """(kind, text, start, end) of each token but white space; None when the text holds what the scanner does not know."""
    tokens: list[tuple[str, str, int, int]] = []
    for match in _TOKEN.finditer(script):
        kind = match.lastgroup or "other"
        if kind == "ws":
            continue
        if kind == "other":
            return None  # ? $ \ ; and the like: parameters, dollar quotes, scripts — run as written
        value = match.group()
        tokens.append((kind, value.upper() if kind == "word" else value, match.start(), match.end()))
    return tokens


def _parametrize(text: str) -> tuple[str, tuple[SqlLiteral, ...]] | None:
    script = text.strip()
    if not script or "--" in script or "/*" in script:
        return None  # comments stay with the text as written
    tokens = _scan(script)
    if not tokens or tokens[0][1] not in ("SELECT", "WITH") or any(t[1].startswith("SYSTEM_") for t in tokens):
        return None
    # Per bracket depth: the clause this depth is in ("filter": WHERE/ON/HAVING, "select": a select
    # list, "other"), whether a select list encloses it (an unnamed projection is named after its
    # text: nothing inside one is taken), and whether a BETWEEN there still waits for its AND.
    clause: list[str] = ["other"]
    under_select = [False]
    between = [False]
    taken: list[int] = []
    after_between_and = False
    for i, (kind, value, _start, _end) in enumerate(tokens):
        if kind == "op" and value in ("(", "[", "{"):
            under_select.append(under_select[-1] or clause[-1] == "select")
            clause.append(clause[-1] if value == "(" else "other")
            between.append(False)
        elif kind == "op" and value in (")", "]", "}"):
            if len(clause) > 1:
                clause.pop()
                under_select.pop()
                between.pop()
        elif kind == "word" and value in _FILTERS:
            clause[-1] = "filter"
        elif kind == "word" and value == "SELECT":
            clause[-1] = "select"
        elif kind == "word" and value in _OTHER_CLAUSES:
            clause[-1] = "other"
        elif kind == "word" and value == "BETWEEN":
            between[-1] = True
        elif kind == "word" and value == "AND" and between[-1]:
            between[-1] = False
            after_between_and = True
            continue
        elif kind in ("number", "string") and clause[-1] == "filter" and not under_select[-1]:
            before = tokens[i - 1] if i else ("", "", 0, 0)
            after = tokens[i + 1] if i + 1 < len(tokens) else ("", "", 0, 0)
            if after[0] in ("number", "string"):
                pass  # 'a' 'b' (adjacent strings concatenate): leave it
            elif (
                (before[0] == "op" and before[1] in _COMPARISONS)
                or (before[0] == "word" and before[1] == "BETWEEN")
                or after_between_and
                or (after[0] == "op" and after[1] in _COMPARISONS and before[1] in _LEFT_OPERAND_AFTER)
            ):
                taken.append(i)
        after_between_and = False
    if not taken:
        return None
    pieces: list[str] = []
    literals: list[SqlLiteral] = []
    at = 0
    for i in taken:
        kind, raw, start, end = tokens[i]
        pieces.append(script[at:start])
        pieces.append("?")
        value = raw[1:-1].replace("''", "'") if kind == "string" else raw
        literals.append(SqlLiteral(raw, value, kind == "string"))
        at = end
    pieces.append(script[at:])
    return "".join(pieces), tuple(literals)
