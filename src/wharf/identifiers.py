"""Namespace, table and view names: the one validator every way of naming an object goes through.

Names become directory names under the warehouse (``warehouse/<namespace>/<table>/``), so a name
must never be able to point somewhere else. The rules, each with its own message:

- not empty, and not only spaces;
- not ``.`` or ``..``;
- no ``/`` or ``\\`` (a path separator);
- no NUL or other control character (U+0000–U+001F, U+007F);
- at most ``MAX_NAME_BYTES`` bytes in UTF-8 (a file-system name limit).

Quotes, spaces, dots inside a name and any other Unicode are allowed (``"sales 2025"``).
"""

from __future__ import annotations

import unicodedata

from wharf.errors import InvalidArgument

MAX_NAME_BYTES = 255
_KINDS = ("namespace", "table", "view", "branch", "tag")


def check_name(name: str, kind: str = "table") -> str:
    """Return ``name`` if it is a valid name for a ``kind``; raise ``InvalidArgument`` naming the rule otherwise."""
    assert kind in _KINDS, kind
    shown = repr(name) if len(name) <= 80 else repr(name[:77] + "...")
    rule: str | None = None
    if not isinstance(name, str) or not name.strip():
        rule = "it is empty"
    elif name in (".", ".."):
        rule = f"'{name}' names a directory, not a {kind}"
    elif "/" in name or "\\" in name:
        rule = "it contains a path separator ('/' or '\\')"
    elif any(unicodedata.category(ch) == "Cc" for ch in name):
        rule = "it contains a control character (NUL, newline, tab …)"
    elif len(name.encode("utf-8")) > MAX_NAME_BYTES:
        rule = f"it is longer than {MAX_NAME_BYTES} bytes"
    if rule is not None:
        raise InvalidArgument(
            f"{shown} is not a valid {kind} name: {rule}",
            hint=f"{kind} names may hold letters, digits, spaces, dots and punctuation, but no '/', '\\\\' or control characters",
        )
    return name


def check_identifier(parts: tuple[str, ...] | list[str], kind: str = "table") -> tuple[str, ...]:
    """Validate a namespace path (``kind='namespace'``) or a ``(*namespace, name)`` identifier."""
    parts = tuple(parts)
    if not parts:
        raise InvalidArgument(f"A {kind} name is required")
    if kind == "namespace":
        for part in parts:
            check_name(part, "namespace")
        return parts
    for part in parts[:-1]:
        check_name(part, "namespace")
    check_name(parts[-1], kind)
    return parts
