"""Hooks: the one place where features attach to what happens in the lake.

Three hooks, declared here and nowhere else:

============== ================================ =====================================================
hook           called with                      may it stop the change?
============== ================================ =====================================================
before_commit  ``TableChange`` (a *gate*)       yes: raise (a ``WharfError`` says why); nothing is
                                                committed and the files written for it are removed
on_commit      ``CommitEvent``                  no: runs after the commit landed; a failure is logged
on_statement   ``StatementEvent``               no: runs after every statement, failed ones too
============== ================================ =====================================================

Quality gates and governance checks are gates; lineage, audit and the optimizer subscribe to
``on_commit`` / ``on_statement`` like any third-party code would. Subscribe per lake with
``lake.events.subscribe(hook, fn)``; features that must apply to *every* catalog instance (also
ones other processes open) register once with ``register_builtin``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wharf.statement import TableRead, TableWrite

if TYPE_CHECKING:
    from wharf.catalog.changes import TableChange

log = logging.getLogger(__name__)

HOOKS = ("before_commit", "on_commit", "on_statement")


@dataclass(frozen=True)
class SnapshotAdded:
    """A snapshot a commit added: its id, operation (append, overwrite, …) and summary."""

    snapshot_id: int
    operation: str
    summary: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CommitEvent:
    """A change to a table landed: one event per catalog commit.

    ``refs`` maps each branch or tag the commit moved to its new snapshot id (None: removed).
    ``statement_id`` is None for a commit made outside a Wharf statement (a PyIceberg client).
    """

    principal: str
    statement_id: str | None
    statement: str
    table: str
    kind: str  # create | update | drop | rename | register
    snapshots: tuple[SnapshotAdded, ...] = ()
    refs: Mapping[str, int | None] = field(default_factory=dict)
    metadata_location: str | None = None
    previous_metadata_location: str | None = None


@dataclass(frozen=True)
class StatementEvent:
    """A statement ended (``outcome`` is ``ok`` or ``error``): who ran what, what it read and wrote.

    ``rows`` is the number of rows written or returned, or None for a query whose result is
    streamed to the caller (it has not been read when the statement ends). ``column_lineage``
    maps each output column (of a query, or of the table an INSERT/CTAS writes) to the
    ``table.column`` inputs it is computed from, derived with sqlglot on first use.
    """

    statement_id: str
    principal: str
    kind: str
    statement: str
    inputs: tuple[TableRead, ...]
    outputs: tuple[TableWrite, ...]
    duration_ms: float
    rows: int | None
    outcome: str
    error: str | None = None
    retries: int = 0  # commit attempts this statement repeated because another commit landed first
    _lineage: Callable[[], Mapping[str, tuple[str, ...]]] | None = field(default=None, repr=False, compare=False)

    def column_lineage(self) -> Mapping[str, tuple[str, ...]]:
        """``{output column: ("ns.table.column", …)}``; empty when the statement has no column outputs."""
        return self._lineage() if self._lineage is not None else {}


Subscriber = Callable[[Any], None]
_BUILTIN: dict[str, list[Subscriber]] = {h: [] for h in HOOKS}


def register_builtin(hook: str, fn: Subscriber) -> Callable[[], None]:
    """Register ``fn`` for ``hook`` on every lake and catalog instance of this process (built-in
    features use this); returns a function that unregisters it."""
    _check(hook)
    _BUILTIN[hook].append(fn)
    return lambda: _BUILTIN[hook].remove(fn)


def _check(hook: str) -> None:
    if hook not in HOOKS:
        raise ValueError(f"Unknown hook '{hook}'; hooks are {', '.join(HOOKS)}")


class Events:
    """The subscribers of one lake, per hook: ``events.subscribe("on_commit", fn)``."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {h: [] for h in HOOKS}

    def subscribe(self, hook: str, fn: Subscriber) -> Callable[[], None]:
        """Register ``fn`` for ``hook``; returns a function that unsubscribes it."""
        _check(hook)
        self._subscribers[hook].append(fn)
        return lambda: self._subscribers[hook].remove(fn)

    def subscribers(self, hook: str) -> list[Subscriber]:
        """Built-in subscribers first, then this lake's, in registration order."""
        return [*_BUILTIN[hook], *self._subscribers[hook]]

    def run_gates(self, change: TableChange) -> None:
        """Run every ``before_commit`` gate; the first that raises refuses the change (the error propagates)."""
        for gate in self.subscribers("before_commit"):
            gate(change)

    def emit(self, hook: str, event: object) -> None:
        """Call the subscribers of an after-the-fact hook; a failing subscriber is logged, never raised."""
        if hook == "before_commit":
            raise ValueError("before_commit subscribers are gates: use run_gates")
        for fn in self.subscribers(hook):
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - the change already happened; a subscriber cannot undo it
                log.exception("%s subscriber %r failed on %r", hook, fn, event)
