"""Enforcement: the one place that turns grants and policies into decisions.

- ``GovernancePolicy`` is the reference pipeline's policy (``wharf.sql.policy``): for every
  table reference of every statement of a governed principal it checks the privilege the
  reference's role needs and returns the row filter and column masks that apply, compiled for
  the invoking principal. Its ``cache_version`` is the policy version, so the statement cache
  never reuses a statement compiled under other grants.
- ``authorize_action`` checks statements that create or drop things that are not table
  references yet (``CREATE TABLE``, ``CREATE SCHEMA``, …); ``created`` records their owner.
- ``check_option_gate`` is a ``before_commit`` gate: an ``INSERT``/``UPDATE``/``MERGE`` by a
  principal under a row filter may not write rows that filter hides (``WITH CHECK OPTION``).
- ``rest_authorizer`` maps Iceberg REST operations to privileges (the server's ``ctx.authorize``).

The lake owner is never governed: ``wharf.connect(path)`` does no policy work at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from wharf.errors import AccessDenied, InvalidArgument
from wharf.governance.builtin_masks import builtin_mask, parse_builtin
from wharf.governance.functions import Invoker, compile_call
from wharf.governance.privileges import (
    ALTER,
    CATALOG,
    CREATE,
    DELETE,
    DROP,
    INSERT,
    MANAGE,
    NAMESPACE,
    ROLE_PRIVILEGE,
    ROW_TABLES,
    SELECT,
    STATISTICS_TABLES,
    TABLE,
    UPDATE,
    USAGE,
    write_privileges,
)
from wharf.governance.state import GovernanceState, Identity, Mask, table_key
from wharf.principal import Principal
from wharf.sql.policy import ReferencePolicy
from wharf.statement import current

if TYPE_CHECKING:
    from wharf.catalog.changes import TableChange
    from wharf.governance.store import GovernanceStore
    from wharf.sql.context import Context
    from wharf.sql.references import Reference

VIEW_META = "wharf.view"  # meta of a table node inside a view's query: (view label, view owner)


def _object_words(kind: str, name: str) -> str:
    return "the catalog" if kind == CATALOG else f"{'namespace' if kind == NAMESPACE else 'table'} {name}"


def denied(state: GovernanceState, who: str, privilege: str, kind: str, name: str, detail: str = "") -> AccessDenied:
    """The refusal for a missing privilege: names the privilege and object, says who can grant it. Never a value."""
    managers = ", ".join(state.managers(kind, name))
    on = "CATALOG" if kind == CATALOG else f"{kind.upper()} {name}"
    lapsed = state.lapsed(who, kind, name)
    if lapsed is not None:
        # Just-in-time access that ran out: say so (the requester knows its own request), and how to renew it.
        return AccessDenied(
            f"{who} has no {privilege} privilege on {_object_words(kind, name)}{detail}: "
            f"the access granted by access request {lapsed.request_id} on table {lapsed.object_name} has expired",
            hint=f"REQUEST ACCESS ON TABLE {lapsed.object_name} FOR '<duration>' REASON '…' to ask again",
        )
    return AccessDenied(
        f"{who} has no {privilege} privilege on {_object_words(kind, name)}{detail}",
        hint=f"ask {managers} to run GRANT {privilege} ON {on} TO USER {who}",
    )


@dataclass(frozen=True)
class Decision:
    """What one principal may see of one table: the compiled row filter and masks (None: unrestricted)."""

    row_filter: exp.Expression | None
    masks: dict[str, exp.Expression]
    names: tuple[str, ...] = ()  # which policies, for the audit log: "row filter f", "mask c: f"


def table_policy(
    state: GovernanceState, identity: Identity, namespace: str, name: str, columns: list[str], types: dict[str, str] | None = None
) -> Decision:
    """The row filter and masks of ``namespace.name`` for ``identity`` (``columns``: the table's columns)."""
    key = table_key(namespace, name)
    invoker = identity.invoker()
    spelled = {c.lower(): c for c in columns}
    row_filter = None
    names: list[str] = []
    found = state.row_filters.get(key)
    if found is not None:
        names.append(f"row filter {found.function}")
        function = state.functions.get(found.function)
        if function is None:
            raise AccessDenied(f"The row filter of {key} names a missing function {found.function}", hint="ask its owner")
        row_filter = compile_call(function, [spelled.get(c.lower(), c) for c in found.columns], invoker)
    masks: dict[str, exp.Expression] = {}
    bound: dict[str, Mask] = dict(state.masks.get(key, {}))
    for column, function_name in state.tag_masks(identity, key).items():
        bound.setdefault(column, Mask(function_name, ()))  # a column's own mask wins over its tags'
    for column, mask in bound.items():
        if column.lower() not in spelled:
            continue  # a dropped column: nothing to mask
        names.append(f"mask {spelled[column.lower()]}: {mask.function}")
        function = state.functions.get(mask.function)
        if function is None:
            builtin = parse_builtin(mask.function)
            if builtin is None or types is None:
                raise AccessDenied(f"The mask of {key}.{column} names a missing function {mask.function}", hint="ask its owner")
            name = spelled[column.lower()]
            masks[name] = builtin_mask(*builtin, name, types[name])
            continue
        args = [spelled[column.lower()], *(spelled.get(c.lower(), c) for c in mask.columns)]
        masks[spelled[column.lower()]] = exp.cast(compile_call(function, args, invoker), function.returns, dialect="duckdb")
    return Decision(row_filter, masks, tuple(names))


class GovernancePolicy:
    """The reference pipeline's policy for one lake (registered for every principal but its owner)."""

    def __init__(self, store: GovernanceStore) -> None:
        self.store = store

    @property
    def cache_version(self) -> tuple[int, int]:
        """The policy version and the lapse epoch: compiled statements (and cached results) are reused
        only under the grants they were compiled with, and never past the expiry of a time-bound grant."""
        return self.store.cache_version()

    def invoker(self, principal: Principal) -> Invoker:
        """What ``current_user()``, ``is_member()`` and ``current_user_attribute()`` answer for ``principal``."""
        return self.store.state().identity(principal).invoker()

    def __call__(self, principal: Principal, reference: Reference) -> ReferencePolicy | None:
        if principal.is_owner:
            return None
        state = self.store.state()
        identity = state.identity(principal)
        return decide(state, identity, reference)


def _types_of(reference: Reference) -> dict[str, str]:
    from wharf.tables.types import iceberg_to_duckdb

    schema = reference.schema if reference.schema is not None else reference.table.schema()
    return {f.name: iceberg_to_duckdb(f.field_type) for f in schema.fields}


def _columns_of(reference: Reference) -> list[str]:
    if reference.schema is not None:
        return [f.name for f in reference.schema.fields]
    return [f.name for f in reference.table.schema().fields]


def decide(state: GovernanceState, identity: Identity, reference: Reference) -> ReferencePolicy | None:
    """Refuse ``reference`` or return what restricts it, for ``identity`` (see the module docstring)."""
    key = table_key(reference.namespace, reference.name)
    label = reference.label
    who = identity.name
    checker = identity
    view = reference.node.meta.get(VIEW_META) if reference.node is not None else None
    if view is not None:
        # Inside a view: the invoker needs SELECT on the view; the view's owner, SELECT on what it reads.
        view_label, view_owner = view
        if not state.uses_namespace(identity, view_label.rsplit(".", 1)[0]) or not state.has(identity, SELECT, TABLE, view_label):
            raise denied(state, who, SELECT, TABLE, view_label)
        checker = state.identity(Principal(view_owner))
    if not state.uses_namespace(checker, reference.namespace):
        raise denied(state, checker.name, USAGE, NAMESPACE, reference.namespace)
    role = reference.role
    decision = table_policy(state, identity, reference.namespace, reference.name, _columns_of(reference), _types_of(reference))
    restricted = decision.row_filter is not None or bool(decision.masks)
    if role == "describe":
        if not state.any_privilege(checker, key) and not state.column_grants(checker, SELECT, key):
            raise denied(state, checker.name, SELECT, TABLE, label)
        return None
    if role == "read":
        full = state.has(checker, SELECT, TABLE, key)
        if not full:
            allowed = state.column_grants(checker, SELECT, key)
            if not allowed:
                raise denied(state, checker.name, SELECT, TABLE, label)
            if reference.metadata in STATISTICS_TABLES:
                raise AccessDenied(
                    f"{who} may not read {label}.{reference.metadata}: it exposes the values of columns {who} cannot read",
                    hint="metadata tables with file statistics need SELECT on the whole table",
                )
            used = reference.columns
            if used is None:
                raise denied(
                    state,
                    checker.name,
                    SELECT,
                    TABLE,
                    label,
                    f" (only on columns {', '.join(sorted(allowed))}; name them instead of *)",
                )
            missing = sorted({c for c in used if c.lower() not in allowed})
            if missing:
                raise denied(state, checker.name, SELECT, TABLE, label, f" (column(s) {', '.join(missing)})")
        if reference.metadata in STATISTICS_TABLES and restricted:
            raise AccessDenied(
                f"{who} may not read {label}.{reference.metadata}: a row filter or column mask applies to {who} on {label}, "
                "and file statistics would reveal what it hides",
                hint="query the table itself; its rows and columns are filtered and masked for you",
            )
        if reference.metadata is not None and reference.metadata not in ROW_TABLES:
            return None  # snapshots, history, refs …: no row values
        return ReferencePolicy(decision.row_filter, decision.masks, decision.names) if restricted else None
    if role == "write":
        statement = current()
        kind, text = (statement.kind, statement.text) if statement is not None else ("insert", "")
        for privilege in write_privileges(kind, text):
            if not state.has(checker, privilege, TABLE, key):
                raise denied(state, checker.name, privilege, TABLE, label)
        if decision.masks and not state.has(checker, MANAGE, TABLE, key):
            raise AccessDenied(
                f"{who} may not write to {label}: column(s) {', '.join(sorted(decision.masks))} are masked for {who}",
                hint="writing into a table with masked columns needs MANAGE on it",
            )
        # The target is read raw (masks would be written back), but only the rows the filter shows.
        if decision.row_filter is None:
            return None
        return ReferencePolicy(decision.row_filter, {}, tuple(n for n in decision.names if n.startswith("row filter")))
    needed = ROLE_PRIVILEGE.get(role)
    if needed is None:
        raise AccessDenied(f"{who} may not use {label} for {role}", hint="an unknown use is refused")
    privilege = needed
    if not state.has(checker, privilege, TABLE, key):
        raise denied(state, checker.name, privilege, TABLE, label)
    return None


def mark_view(ctx: Context, query: exp.Expr, label: str) -> None:
    """Mark the table nodes of a view's expanded query with the view and its owner (innermost view wins)."""
    policy = next((p for p in ctx.policies if isinstance(p, GovernancePolicy)), None)
    if policy is None or ctx.principal.is_owner:
        return
    owner = policy.store.state().owner_of(TABLE, label)
    for node in query.find_all(exp.Table):
        node.meta.setdefault(VIEW_META, (label, owner))


# --- actions that are not table references ---------------------------------------------------


def authorize_action(state: GovernanceState, principal: Principal, action: str, kind: str, name: str) -> None:
    """``action`` (CREATE, DROP, ALTER, …) on an object that is not resolved as a reference (a new table, a namespace)."""
    if principal.is_owner:
        return
    identity = state.identity(principal)
    if kind == NAMESPACE and action == CREATE:
        # A namespace is created inside its parent (or the catalog).
        parent = name.rsplit(".", 1)[0] if "." in name else None
        ok = state.has(identity, CREATE, NAMESPACE, parent) if parent else state.has(identity, CREATE, CATALOG)
        if not ok:
            raise denied(state, identity.name, CREATE, NAMESPACE if parent else CATALOG, parent or "*")
        return
    if kind == TABLE and action == CREATE:
        namespace = name.rsplit(".", 1)[0]
        if not state.has(identity, CREATE, NAMESPACE, namespace):
            raise denied(state, identity.name, CREATE, NAMESPACE, namespace)
        return
    if not state.has(identity, action, kind, name):
        raise denied(state, identity.name, action, kind, name)


# --- WITH CHECK OPTION: rows a filter hides may not be written -------------------------------


def check_option(store: GovernanceStore, change: TableChange) -> None:
    """Refuse a change whose new rows include rows the committing principal's row filter hides."""
    principal = change.principal
    if principal.is_owner or change.kind not in ("update", "create") or change.io is None:
        return
    state = store.state()
    key = change.table.lower()
    found = state.row_filters.get(key)
    if found is None:
        return
    function = state.functions.get(found.function)
    if function is None:
        raise AccessDenied(f"The row filter of {key} names a missing function {found.function}")
    identity = state.identity(principal)
    columns = [f'"{c}"' for c in found.columns]
    condition = compile_call(function, list(found.columns), identity.invoker()).sql("duckdb")
    for snapshot in change.added_snapshots:
        operation = snapshot.summary.operation.value if snapshot.summary is not None else ""
        if operation in ("replace", "delete"):
            continue  # compaction and deletes add no new row values
        added, removed = _snapshot_files(change, snapshot)
        if not added:
            continue
        hidden = _hidden_rows(change, added, removed, columns, condition)
        if hidden:
            raise AccessDenied(
                f"{principal.name} may not write {hidden} row(s) to {change.table} that its row filter hides from them",
                hint="write only rows you can read back (like WITH CHECK OPTION)",
            )


def _snapshot_files(change: TableChange, snapshot: Any) -> tuple[list[str], list[str]]:
    from pyiceberg.manifest import ManifestContent, ManifestEntryStatus

    io = change.io
    added: list[str] = []
    removed: list[str] = []
    for manifest in snapshot.manifests(io):
        if manifest.content != ManifestContent.DATA or manifest.added_snapshot_id != snapshot.snapshot_id:
            continue
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
            if entry.snapshot_id != snapshot.snapshot_id:
                continue
            if entry.status == ManifestEntryStatus.ADDED:
                added.append(entry.data_file.file_path)
            elif entry.status == ManifestEntryStatus.DELETED:
                removed.append(entry.data_file.file_path)
    return added, removed


def _hidden_rows(change: TableChange, added: list[str], removed: list[str], columns: list[str], condition: str) -> int:
    """Rows in ``added`` files but not in ``removed`` ones (the statement's new row values) that fail the filter."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    def read(paths: list[str]) -> pa.Table | None:
        names = [c.strip('"') for c in columns]
        parts = []
        for path in paths:
            with change.io.new_input(path).open(seekable=True) as stream:  # type: ignore[union-attr]  # checked by the caller
                parts.append(pq.read_table(stream, columns=names))
        return pa.concat_tables(parts) if parts else None

    new_rows = read(added)
    old_rows = read(removed)
    with duckdb.connect(":memory:") as con:
        con.execute("SET enable_external_access = false")
        con.register("new_rows", new_rows)
        source = "new_rows"
        if old_rows is not None:
            con.register("old_rows", old_rows)
            cols = ", ".join(columns)
            source = f"(SELECT {cols} FROM new_rows EXCEPT ALL SELECT {cols} FROM old_rows)"
        row = con.execute(f"SELECT count(*) FROM {source} AS t WHERE NOT coalesce({condition}, false)").fetchone()
    return int(row[0]) if row else 0


# --- the Iceberg REST catalog -----------------------------------------------------------------

# REST operation → (privilege, object kind of its target); reads of metadata need SELECT.
REST_ACTIONS: dict[str, tuple[str, str]] = {
    "listNamespaces": (USAGE, NAMESPACE),
    "createNamespace": (CREATE, NAMESPACE),
    "loadNamespaceMetadata": (USAGE, NAMESPACE),
    "namespaceExists": (USAGE, NAMESPACE),
    "dropNamespace": (DROP, NAMESPACE),
    "updateProperties": (ALTER, NAMESPACE),
    "listTables": (USAGE, NAMESPACE),
    "listViews": (USAGE, NAMESPACE),
    "createTable": (CREATE, TABLE),
    "createView": (CREATE, TABLE),
    "registerTable": (CREATE, TABLE),
    "loadTable": (SELECT, TABLE),
    "loadView": (SELECT, TABLE),
    "tableExists": (USAGE, TABLE),
    "viewExists": (USAGE, TABLE),
    "updateTable": (INSERT, TABLE),
    "replaceView": (ALTER, TABLE),
    "dropTable": (DROP, TABLE),
    "dropView": (DROP, TABLE),
    "renameTable": (ALTER, TABLE),
    "renameView": (ALTER, TABLE),
}


# HTTP API operations open to every authenticated principal: the statements they run go through the
# SQL pipeline as that principal (every privilege, filter and mask applies there), and what they
# reveal of their own is catalog names or the result cache's counters (sizes and hit counts: no rows, no statements);
# access requests (``/api/v1/access``) are checked by ``lake.governance.access`` as the principal.
ANY_PRINCIPAL_ACTIONS = frozenset({"submitQuery", "registerPrecache", "cacheStats", "listCatalogs", "accessRequests"})


def rest_authorize(store: GovernanceStore, principal: Principal, action: str, target: str) -> None:
    """Raise ``AccessDenied`` unless ``principal`` may perform the REST operation ``action`` on ``target``."""
    if principal.is_owner or action in ANY_PRINCIPAL_ACTIONS:
        return
    state = store.state()
    identity = state.identity(principal)
    privilege, kind = REST_ACTIONS.get(action, (MANAGE, CATALOG))  # an unknown operation: owner only (fail closed)
    if kind == NAMESPACE:
        if target == "*":
            if privilege == USAGE:
                return  # listing top-level namespaces shows names only
            kind = CATALOG
        if privilege == CREATE:
            authorize_action(state, principal, CREATE, NAMESPACE, target)
            return
        ok = state.uses_namespace(identity, target) if privilege == USAGE else state.has(identity, privilege, kind, target)
        if not ok:
            raise denied(state, identity.name, privilege, kind, target)
        return
    if kind == CATALOG:
        if not state.has(identity, privilege, CATALOG):
            raise denied(state, identity.name, privilege, CATALOG, "*")
        return
    namespace = target.rsplit(".", 1)[0]
    if privilege == CREATE:
        authorize_action(state, principal, CREATE, TABLE, target)
        return
    if not state.uses_namespace(identity, namespace):
        raise denied(state, identity.name, USAGE, NAMESPACE, namespace)
    if privilege == USAGE:
        return
    if action == "updateTable":
        # A REST commit can add, overwrite and delete data: it needs all three.
        for needed in (INSERT, UPDATE, DELETE):
            if not state.has(identity, needed, TABLE, target):
                raise denied(state, identity.name, needed, TABLE, target)
    elif not state.has(identity, privilege, TABLE, target):
        raise denied(state, identity.name, privilege, TABLE, target)
    if action in ("loadTable", "updateTable"):
        key = target.lower()
        column_grants_only = bool(state.column_grants(identity, SELECT, key)) and not state.has(identity, SELECT, TABLE, key)
        if key in state.row_filters or key in state.masks or column_grants_only:
            raise AccessDenied(
                f"{identity.name} may not read {target}'s files directly: a row filter, column mask or column-level "
                f"grant applies to {identity.name} on it, and an engine reading the files could not be trusted to apply it",
                hint="query the table through Wharf's SQL API (POST /api/v1/sql), where it is applied",
            )


__all__ = ["GovernancePolicy", "InvalidArgument", "authorize_action", "check_option", "decide", "rest_authorize", "table_policy"]


def rest_authorizer(store: GovernanceStore) -> Callable[[Principal, str, str], None]:
    """The server's ``Authorizer`` for one lake (``RequestContext.authorize``)."""
    return lambda principal, action, target: rest_authorize(store, principal, action, target)
