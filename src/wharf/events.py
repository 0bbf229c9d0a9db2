"""Hooks: the one place where features subscribe to what happens in the lake.

Lineage, audit and the optimizer (later issues) subscribe here rather than being called from
statement code. Subscribers must not raise; an exception in one is logged and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryEvent:
    """A read statement ran: what it read (``tables``) and what SQL DuckDB executed."""

    user: str
    statement: str
    tables: tuple[str, ...]
    files_scanned: int


@dataclass(frozen=True)
class CommitEvent:
    """A snapshot was committed on ``table`` (branch ``branch``; None when only staged)."""

    user: str
    statement: str
    table: str
    branch: str | None
    snapshot_id: int
    operation: str
    summary: dict[str, str] = field(default_factory=dict)


HOOKS = ("on_query", "on_commit")


class Events:
    """A registry of subscribers per hook: ``events.subscribe("on_commit", fn)``."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callable[[Any], None]]] = {h: [] for h in HOOKS}

    def subscribe(self, hook: str, fn: Callable[[Any], None]) -> Callable[[], None]:
        """Register ``fn`` for ``hook``; returns a function that unsubscribes it."""
        if hook not in self._subscribers:
            raise ValueError(f"Unknown hook '{hook}'; hooks are {', '.join(HOOKS)}")
        self._subscribers[hook].append(fn)
        return lambda: self._subscribers[hook].remove(fn)

    def emit(self, hook: str, event: object) -> None:
        for fn in list(self._subscribers[hook]):
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - a subscriber must never break a statement
                log.exception("subscriber %r of %s failed", fn, hook)
