"""The DQDL tokenizer: turns text into tokens that know their line and column (1-based)."""

from __future__ import annotations

from dataclasses import dataclass

from wharf.errors import DataQualityRuleError

PUNCTUATION = ("!=", ">=", "<=", "=", ">", "<", "(", ")", "[", "]", "{", "}", ",", ":", "$", "+", "-", "*", "/", "!")


@dataclass(frozen=True)
class Token:
    kind: str  # string | number | ident | punct | eof
    text: str  # the value: unescaped for strings, as written otherwise
    line: int
    column: int

    def describe(self) -> str:
        if self.kind == "eof":
            return "the end of the ruleset"
        if self.kind == "string":
            return f'the string "{self.text}"'
        return f"'{self.text}'"


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text``, ending with an ``eof`` token; ``#`` comments and whitespace are skipped."""
    tokens: list[Token] = []
    i, line, line_start, n = 0, 1, 0, len(text)
    while i < n:
        ch = text[i]
        col = i - line_start + 1
        if ch == "\n":
            i += 1
            line, line_start = line + 1, i
        elif ch in " \t\r":
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch == '"':
            start_line, start_col = line, col
            i += 1
            out = []
            while True:
                if i >= n:
                    raise DataQualityRuleError(
                        "Unterminated string", line=start_line, column=start_col, text=text, hint='close it with "'
                    )
                c = text[i]
                if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
                    out.append(text[i + 1])
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                if c == "\n":
                    line, line_start = line + 1, i + 1
                out.append(c)
                i += 1
            tokens.append(Token("string", "".join(out), start_line, start_col))
        elif ch.isdigit():
            j = i
            while j < n and text[j].isdigit():
                j += 1
            if j + 1 < n and text[j] == "." and text[j + 1].isdigit():
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            if j < n and (text[j].isalpha() or text[j] == "_"):
                # An identifier that starts with a digit (DQDL allows [a-zA-Z0-9_.]+ names).
                while j < n and (text[j].isalnum() or text[j] in "_."):
                    j += 1
                tokens.append(Token("ident", text[i:j], line, col))
            else:
                tokens.append(Token("number", text[i:j], line, col))
            i = j
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] in "_."):
                j += 1
            tokens.append(Token("ident", text[i:j], line, col))
            i = j
        else:
            for p in PUNCTUATION:
                if text.startswith(p, i):
                    tokens.append(Token("punct", p, line, col))
                    i += len(p)
                    break
            else:
                raise DataQualityRuleError(f"Unexpected character {ch!r}", line=line, column=col, text=text)
    tokens.append(Token("eof", "", line, i - line_start + 1))
    return tokens
