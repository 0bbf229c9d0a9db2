"""Table commits over REST: ``POST …/tables/{table}`` and ``POST /v1/transactions/commit``.

A REST commit is the same commit a SQL statement makes: it goes through ``LakeCatalog``'s commit
path (``commit_table``, or ``commit_tables`` for a multi-table transaction) under a Wharf
statement of the request's principal, so gates, stamped snapshot summaries, conflict checks and
``on_commit`` events are identical.

Every requirement and update type of the spec is parsed into PyIceberg's models; an unknown one
is a 400 (the spec requires it), a failed requirement a 409 ``CommitFailedException``.
"""

from __future__ import annotations

from typing import Any

import pydantic
from pyiceberg.exceptions import CommitFailedException, NoSuchNamespaceError
from pyiceberg.table import CommitTableResponse, StagedTable, Table
from pyiceberg.table.update import AssertCreate, TableRequirement, TableUpdate, update_table_metadata

from wharf import pyiceberg_compat as compat
from wharf.server.context import RequestContext
from wharf.server.rest.common import identifier_from_body, label, statement
from wharf.server.rest.errors import bad_request

# The spec's update actions and requirement types (BaseUpdate / TableRequirement discriminators).
SPEC_UPDATES = frozenset(
    {
        "assign-uuid",
        "upgrade-format-version",
        "add-schema",
        "set-current-schema",
        "add-spec",
        "set-default-spec",
        "add-sort-order",
        "set-default-sort-order",
        "add-snapshot",
        "set-snapshot-ref",
        "remove-snapshots",
        "remove-snapshot-ref",
        "set-location",
        "set-properties",
        "remove-properties",
        "set-statistics",
        "remove-statistics",
        "set-partition-statistics",
        "remove-partition-statistics",
        "remove-partition-specs",
        "remove-schemas",
        "add-encryption-key",
        "remove-encryption-key",
    }
)
# Spec updates the table metadata model Wharf builds on cannot hold: refused with a reason.
UNSUPPORTED_UPDATES = {
    "add-encryption-key": "table encryption keys are not supported (the metadata model has no encryption-keys)",
    "remove-encryption-key": "table encryption keys are not supported (the metadata model has no encryption-keys)",
}
SPEC_REQUIREMENTS = frozenset(
    {
        "assert-create",
        "assert-table-uuid",
        "assert-ref-snapshot-id",
        "assert-last-assigned-field-id",
        "assert-current-schema-id",
        "assert-last-assigned-partition-id",
        "assert-default-spec-id",
        "assert-default-sort-order-id",
    }
)
_UPDATE = pydantic.TypeAdapter(TableUpdate)
_REQUIREMENT = pydantic.TypeAdapter(TableRequirement)


def parse_updates(raw: Any) -> tuple[TableUpdate, ...]:
    if not isinstance(raw, list):
        raise bad_request('"updates" must be a list')
    parsed = []
    for i, item in enumerate(raw):
        action = item.get("action") if isinstance(item, dict) else None
        if action not in SPEC_UPDATES:
            raise bad_request(f"updates[{i}]: unknown update action {action!r}", hint=f"known: {', '.join(sorted(SPEC_UPDATES))}")
        if action in UNSUPPORTED_UPDATES:
            raise bad_request(f"updates[{i}]: {action}: {UNSUPPORTED_UPDATES[action]}")
        try:
            parsed.append(_UPDATE.validate_python(item))
        except pydantic.ValidationError as exc:
            raise bad_request(f"updates[{i}] ({action}) is malformed: {_first_problem(exc)}") from exc
    return tuple(parsed)


def parse_requirements(raw: Any) -> tuple[TableRequirement, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise bad_request('"requirements" must be a list')
    parsed = []
    for i, item in enumerate(raw):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in SPEC_REQUIREMENTS:
            raise bad_request(
                f"requirements[{i}]: unknown requirement type {kind!r}", hint=f"known: {', '.join(sorted(SPEC_REQUIREMENTS))}"
            )
        try:
            parsed.append(_REQUIREMENT.validate_python(item))
        except pydantic.ValidationError as exc:
            raise bad_request(f"requirements[{i}] ({kind}) is malformed: {_first_problem(exc)}") from exc
    return tuple(parsed)


def _first_problem(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"


def parse_commit(body: Any) -> tuple[tuple[TableRequirement, ...], tuple[TableUpdate, ...]]:
    if not isinstance(body, dict):
        raise bad_request("A commit request body must be a JSON object with requirements and updates")
    if "updates" not in body:
        raise bad_request('A commit request needs "updates" (and "requirements")')
    return parse_requirements(body.get("requirements")), parse_updates(body.get("updates"))


def _staged(ctx: RequestContext, identifier: tuple[str, ...], updates: tuple[TableUpdate, ...]) -> StagedTable:
    """The table a stage-create commit creates (``assert-create``): its metadata is what the updates build."""
    catalog = ctx.lake.catalog
    if not catalog.namespace_exists(identifier[:-1]):
        raise NoSuchNamespaceError(f"Namespace does not exist: {label(identifier[:-1])}")
    metadata = update_table_metadata(compat.empty_table_metadata(catalog), updates, enforce_validation=True)
    return StagedTable(
        identifier=identifier,
        metadata=metadata,
        metadata_location=f"{metadata.location}/metadata/staged.metadata.json",  # never written: the commit picks its own
        io=compat.catalog_file_io(catalog, metadata.location or catalog.properties["warehouse"]),
        catalog=catalog,
    )


def commit_one(
    ctx: RequestContext, identifier: tuple[str, ...], requirements: tuple[TableRequirement, ...], updates: tuple[TableUpdate, ...]
) -> CommitTableResponse:
    """Commit to one table (or create it, for a stage-create's ``assert-create``) through the commit path."""
    catalog = ctx.lake.catalog
    with statement(ctx, "updateTable", label(identifier)):
        try:
            if any(isinstance(r, AssertCreate) for r in requirements):
                if catalog.metadata_location(identifier) is not None:
                    raise CommitFailedException(f"Requirement failed: table {label(identifier)} already exists")
                table: Table = _staged(ctx, identifier, updates)
            else:
                table = catalog.load_table(identifier)
            return catalog.commit_table(table, requirements, updates)
        except ValueError as exc:  # PyIceberg's metadata builder refusing an update (unknown schema id …)
            if isinstance(exc, pydantic.ValidationError):
                raise
            raise bad_request(f"The updates cannot be applied to {label(identifier)}: {exc}") from exc


def commit_transaction(ctx: RequestContext, body: Any) -> list[CommitTableResponse]:
    """Commit to several tables atomically (``POST /v1/transactions/commit``)."""
    if not isinstance(body, dict) or not isinstance(body.get("table-changes"), list) or not body["table-changes"]:
        raise bad_request('A transaction needs "table-changes": a non-empty list of table commits')
    changes = []
    seen: set[tuple[str, ...]] = set()
    for i, change in enumerate(body["table-changes"]):
        if not isinstance(change, dict) or "identifier" not in change:
            raise bad_request(f"table-changes[{i}] needs an identifier")
        identifier = ctx.lake.catalog.canonical(identifier_from_body(change["identifier"]))
        if identifier in seen:
            raise bad_request(f"table-changes[{i}]: table {label(identifier)} appears more than once")
        seen.add(identifier)
        requirements, updates = parse_commit(change)
        changes.append((identifier, requirements, updates))
    for identifier, _, _ in changes:
        ctx.authorize("updateTable", label(identifier))
    with statement(ctx, "commitTransaction", ", ".join(label(i) for i, _, _ in changes)):
        try:
            return ctx.lake.catalog.commit_tables(changes)
        except ValueError as exc:
            if isinstance(exc, pydantic.ValidationError):
                raise
            raise bad_request(f"The updates cannot be applied: {exc}") from exc
