"""``TableChange``: what a commit gate sees — one proposed change to one table, not yet committed.

Built by the commit path (``wharf.catalog.lake_catalog``) for every catalog commit: statements,
Python API calls, maintenance, and PyIceberg (later REST) clients committing through Wharf's
catalog. A gate reads the proposal (who, which statement, the metadata the table would have,
the snapshots it adds, the refs it moves) and raises to refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pyiceberg.io import FileIO
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    RemoveSnapshotRefUpdate,
    SetSnapshotRefUpdate,
    TableRequirement,
    TableUpdate,
    update_table_metadata,
)

from wharf import pyiceberg_compat as compat
from wharf.principal import Principal
from wharf.statement import Statement

CHANGE_KINDS = ("create", "update", "drop", "rename", "register", "create_view", "replace_view", "drop_view", "rename_view")


@dataclass
class TableChange:
    """A proposed change to ``table`` (``namespace.name``) by ``principal``.

    ``kind``: ``create`` (a new table, possibly with data: CTAS), ``update`` (a snapshot, a ref
    move, a schema/spec/property change…), ``drop``, ``rename`` (to ``new_name``) or ``register``;
    for views ``create_view``, ``replace_view``, ``drop_view``, ``rename_view`` (no metadata).
    ``base`` is the table's metadata before the change (None for a new table); ``updates`` are
    the Iceberg metadata updates the change applies. ``statement`` is the Wharf statement that
    makes it, or None for a client committing through the catalog directly.
    """

    kind: str
    table: str
    principal: Principal
    statement: Statement | None
    base: TableMetadata | None = None
    updates: tuple[TableUpdate, ...] = ()
    requirements: tuple[TableRequirement, ...] = ()
    io: FileIO | None = field(default=None, repr=False)
    new_name: str | None = None
    # The empty metadata a new table's updates apply to (the catalog's own starting point).
    start: TableMetadata | None = field(default=None, repr=False)
    # The catalog committing the change (a gate that must read the lake, e.g. the quality gate).
    catalog: Any = field(default=None, repr=False, compare=False)

    @cached_property
    def metadata(self) -> TableMetadata | None:
        """The table's metadata if the change lands (None when it drops the table)."""
        if self.kind == "drop":
            return None
        if self.base is None:
            # A new table: its updates build the whole metadata from the catalog's empty start.
            return update_table_metadata(self.start, self.updates) if self.start is not None else None
        # Without PyIceberg's final deep copy (O(history) per commit): updates build new objects.
        return compat.update_metadata(self.base, self.updates, None) if self.updates else self.base

    @property
    def added_snapshots(self) -> list[Snapshot]:
        """Snapshots this change adds (a write adds one; ref moves and schema changes add none)."""
        return [u.snapshot for u in self.updates if isinstance(u, AddSnapshotUpdate)]

    @property
    def ref_moves(self) -> dict[str, int | None]:
        """Each branch or tag the change sets (to a snapshot id) or removes (None), in order."""
        moves: dict[str, int | None] = {}
        for u in self.updates:
            if isinstance(u, SetSnapshotRefUpdate):
                moves[u.ref_name] = u.snapshot_id
            elif isinstance(u, RemoveSnapshotRefUpdate):
                moves[u.ref_name] = None
        return moves

    def moves(self, ref: str) -> bool:
        """Whether the change points branch/tag ``ref`` at a (new or different) snapshot."""
        target = self.ref_moves.get(ref)
        if target is None:
            return False
        current = self.base.refs.get(ref) if self.base is not None else None
        return current is None or current.snapshot_id != target
