"""Named rulesets, kept in the lake's metadata database (``wharf_quality_rulesets``).

A stored ruleset is a DQDL document attached to one table (``CREATE DATA QUALITY RULESET name ON
db.t AS '…'``), optionally with a webhook called when one of its runs fails. The text is parsed
before it is stored, so a stored ruleset always parses; it is kept as the user wrote it
(comments included). Names are unique in the lake and compared case-insensitively.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import urlparse

from sqlalchemy import column, delete, func, insert, select, table, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from wharf.errors import AlreadyExists, InvalidArgument, NotFound

_RULESETS = table(
    "wharf_quality_rulesets",
    column("name"),
    column("table_name"),
    column("ruleset"),
    column("webhook"),
    column("created_by"),
    column("created_at_ms"),
    column("updated_at_ms"),
)


@dataclass(frozen=True)
class StoredRuleset:
    """A ruleset as stored: its name, the table it is for, its DQDL text and optional webhook."""

    name: str
    table: str
    text: str
    webhook: str | None = None
    created_by: str = ""
    created_at_ms: int = 0
    updated_at_ms: int = 0


def check_webhook(url: str | None) -> str | None:
    """A webhook must be an absolute http(s) URL."""
    if url is None or url == "":
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidArgument(f"Webhook '{url}' is not an http(s) URL", hint="give a URL such as https://alerts.example.com/hook")
    return url


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,254}")


def check_name(name: str) -> str:
    """Ruleset names are one word: letters, digits, ``_`` and ``-``, not starting with a digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"{name!r} is not a valid ruleset name",
            hint="a ruleset name is one word of letters, digits, '_' and '-' such as sensor_rules",
        )
    return name


class RulesetStore:
    """Reads and writes the ``wharf_quality_rulesets`` table of one lake."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, name: str) -> StoredRuleset | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_RULESETS).where(func.lower(_RULESETS.c.name) == name.lower())).first()
        return _from_row(row) if row is not None else None

    def get(self, name: str) -> StoredRuleset:
        found = self.find(name)
        if found is None:
            known = ", ".join(r.name for r in self.list()) or "none"
            raise NotFound(
                f"Data quality ruleset '{name}' does not exist",
                hint=f"create it with CREATE DATA QUALITY RULESET {name} ON db.t AS 'Rules = [...]' (existing: {known})",
            )
        return found

    def list(self, table_name: str | None = None) -> list[StoredRuleset]:
        query = select(_RULESETS).order_by(_RULESETS.c.table_name, _RULESETS.c.name)
        if table_name is not None:
            query = query.where(func.lower(_RULESETS.c.table_name) == table_name.lower())
        with self.engine.connect() as conn:
            return [_from_row(r) for r in conn.execute(query)]

    def save(self, ruleset: StoredRuleset, *, replace: bool = False) -> StoredRuleset:
        """Store ``ruleset``; with ``replace`` an existing one of that name is overwritten (keeping its creation)."""
        now = int(time.time() * 1000)
        with self.engine.begin() as conn:
            existing = conn.execute(select(_RULESETS).where(func.lower(_RULESETS.c.name) == ruleset.name.lower())).first()
            if existing is not None and not replace:
                raise AlreadyExists(
                    f"Data quality ruleset '{existing.name}' already exists (on {existing.table_name})",
                    hint="use CREATE OR REPLACE DATA QUALITY RULESET, or replace=True",
                )
            values = {
                "table_name": ruleset.table,
                "ruleset": ruleset.text,
                "webhook": ruleset.webhook,
                "updated_at_ms": now,
            }
            if existing is not None:
                conn.execute(update(_RULESETS).where(_RULESETS.c.name == existing.name).values(**values))
            else:
                try:
                    conn.execute(
                        insert(_RULESETS).values(name=ruleset.name, created_by=ruleset.created_by, created_at_ms=now, **values)
                    )
                except IntegrityError as exc:  # created by another process since we looked
                    raise AlreadyExists(f"Data quality ruleset '{ruleset.name}' already exists") from exc
        return self.get(ruleset.name)

    def drop(self, name: str, *, if_exists: bool = False) -> bool:
        with self.engine.begin() as conn:
            removed = conn.execute(delete(_RULESETS).where(func.lower(_RULESETS.c.name) == name.lower())).rowcount
        if not removed and not if_exists:
            self.get(name)  # raises NotFound with the known names
        return bool(removed)


def _from_row(row: object) -> StoredRuleset:
    return StoredRuleset(
        name=row.name,  # type: ignore[attr-defined]  # a SQLAlchemy Row of _RULESETS
        table=row.table_name,  # type: ignore[attr-defined]
        text=row.ruleset,  # type: ignore[attr-defined]
        webhook=row.webhook,  # type: ignore[attr-defined]
        created_by=row.created_by,  # type: ignore[attr-defined]
        created_at_ms=int(row.created_at_ms),  # type: ignore[attr-defined]
        updated_at_ms=int(row.updated_at_ms),  # type: ignore[attr-defined]
    )


__all__ = ["RulesetStore", "StoredRuleset", "check_name", "check_webhook"]
