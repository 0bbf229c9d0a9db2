"""Governance in the commit path: who may create a table or view, who owns it, ``WITH CHECK OPTION``.

A process-wide ``before_commit`` gate (every catalog, so SQL, the Python API, the REST catalog
and PyIceberg clients alike) refuses a new table or view in a namespace where the committing
principal lacks ``CREATE`` and checks the rows a governed principal writes against its row
filter; an ``on_commit`` subscriber records the owner of what a governed principal created and
forgets the grants and policies of a dropped table (a new table of the same name starts clean).
The lake owner's commits cost one attribute check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wharf.events import register_builtin
from wharf.governance.enforce import authorize_action, check_option
from wharf.governance.privileges import CREATE, TABLE

if TYPE_CHECKING:
    from wharf.catalog.changes import TableChange
    from wharf.events import CommitEvent
    from wharf.governance.store import GovernanceStore


def _store(catalog: Any) -> GovernanceStore:
    from wharf.catalog import lake_owner
    from wharf.governance.store import store_for

    return store_for(catalog, lake_owner(catalog.engine) or catalog.principal.name)


def governance_gate(change: TableChange) -> None:
    if change.catalog is None:
        return
    if change.kind in ("rename", "rename_view") and change.new_name is not None:
        from wharf.governance.grants import rename_object

        if not change.principal.is_owner:
            authorize_action(_store(change.catalog).state(), change.principal, CREATE, TABLE, change.new_name)
        # Grants and policies follow the table (a table later created under the old name starts clean).
        rename_object(_store(change.catalog), change.table, change.new_name)
        return
    if change.principal.is_owner:
        return
    store = _store(change.catalog)
    if change.kind in ("create", "create_view", "register"):
        authorize_action(store.state(), change.principal, CREATE, TABLE, change.table)
    if change.kind in ("update", "create"):
        check_option(store, change)


unregister_gate = register_builtin("before_commit", governance_gate)


def commit_subscriber(store: GovernanceStore) -> Any:
    """The lake's ``on_commit`` subscriber: owners of created objects, grants of dropped and renamed tables."""
    from wharf.governance.grants import forget_object, set_owner

    def on_commit(event: CommitEvent) -> None:
        if event.kind in ("create", "create_view", "register") and event.principal != store.owner:
            set_owner(store, TABLE, event.table, event.principal)
        elif event.kind in ("drop", "drop_view"):
            forget_object(store, TABLE, event.table)

    return on_commit
