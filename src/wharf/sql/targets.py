"""Write targets: which table and branch a DML statement commits to, and the commit itself.

``t`` writes to the session branch (``SET wharf.branch``) or main; ``t.branch_x`` to branch x.
With ``SET wharf.wap_id = 'x'`` the snapshot is staged (no branch moves) with ``wap.id = x``
in its summary, for ``CALL system.publish_changes``. The target is resolved by the reference
pipeline (role ``write``), so policies see it like any other reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg import expressions as ie
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot
from sqlglot import exp

from wharf.errors import InvalidArgument, SqlParseError
from wharf.sql.context import Context
from wharf.sql.pipeline import resolve_reference
from wharf.sql.references import Reference
from wharf.tables.commit import FileChanges, commit_changes, commit_files, conform, write_data_files
from wharf.tables.scan import PlannedFile

WAP_ID_PROPERTY = "wap.id"


@dataclass
class Target:
    reference: Reference
    branch: str
    stage_only: bool = False
    wap_id: str | None = None

    def summary_properties(self) -> dict[str, str]:
        """What the target adds to its snapshot's summary (the WAP id); a statement's own extra
        properties (``Statement.summary``: an SCD2 refresh's source snapshot, ``apply_changes``'s
        high-water mark) are merged in by ``commit`` / ``commit_delta``."""
        return {WAP_ID_PROPERTY: self.wap_id} if self.wap_id else {}

    @property
    def table(self) -> Table:
        return self.reference.table

    @property
    def namespace(self) -> str:
        return self.reference.namespace

    @property
    def name(self) -> str:
        return self.reference.name

    @property
    def label(self) -> str:
        return self.reference.label

    @property
    def snapshot_id(self) -> int | None:
        """Head of the target branch (None: empty table or branch not created yet)."""
        ref = self.table.metadata.refs.get(self.branch)
        if ref is not None:
            return ref.snapshot_id
        main = self.table.metadata.refs.get(MAIN_BRANCH)
        return main.snapshot_id if main else None


def resolve_target(ctx: Context, node: exp.Table) -> Target:
    """Resolve the table a write statement targets, with its branch."""
    if not isinstance(node, exp.Table) or not isinstance(node.this, (exp.Identifier, exp.Dot)):
        raise SqlParseError(
            f"{ctx.statement.kind.upper()} needs the name of the table it writes to",
            sql=ctx.statement.text,
            hint="INSERT INTO t …, UPDATE t SET …, DELETE FROM t …, MERGE INTO t USING …",
        )
    ref = resolve_reference(ctx, node, role="write")
    if ref.metadata is not None:
        raise InvalidArgument(f"Metadata table {ref.label}.{ref.metadata} is read-only")
    if ref.is_time_travel:
        raise InvalidArgument(f"Cannot write to {ref.label} at a past version", hint="write to the table or a branch")
    branch = ref.version.ref if ref.version.ref is not None else ctx.session.branch or MAIN_BRANCH
    found = ref.table.metadata.refs.get(branch)
    if found is not None and found.snapshot_ref_type == SnapshotRefType.TAG:  # explicit or session (SET wharf.branch)
        raise InvalidArgument(f"'{branch}' is a tag of {ref.label}; tags are read-only, write to a branch")
    if branch != MAIN_BRANCH and branch not in ref.table.metadata.refs:
        # Session branch that does not exist yet: create it from main (on an empty table: at an empty
        # snapshot, since Iceberg branches need one), like Spark's WAP branch.
        from wharf.tables.snapshots import BRANCH, create_ref

        create_ref(ref.table, BRANCH, branch)
        ctx.forget_table(ref.namespace, ref.name)
        ref = resolve_reference(ctx, node, role="write")
    wap_id = ctx.session.wap_id
    return Target(ref, branch, stage_only=bool(wap_id), wap_id=wap_id)


def commit(
    ctx: Context,
    target: Target,
    *,
    added: list[DataFile],
    removed: Sequence[PlannedFile | DataFile] = (),
    read_filter: ie.BooleanExpression | None = None,
    operation: Operation | None = None,
) -> Snapshot | None:
    """Commit one snapshot for a statement (the commit path runs the gates and announces it)."""
    extra = {**ctx.statement.summary, **target.summary_properties()}
    files = [f.data_file if isinstance(f, PlannedFile) else f for f in removed]
    return commit_files(
        target.table,
        added=added,
        removed=files,
        branch=target.branch,
        read_filter=read_filter,
        stage_only=target.stage_only,
        operation=operation,
        properties=extra,
    )


def commit_delta(
    ctx: Context, target: Target, changes: FileChanges, *, read_filter: ie.BooleanExpression | None = None
) -> Snapshot | None:
    """Commit one snapshot that also adds or removes delete files (merge-on-read, dangling deletes).

    Iceberg's RowDelta names the operation: ``delete`` when only delete files are added,
    ``overwrite`` otherwise.
    """
    extra = {**ctx.statement.summary, **target.summary_properties()}
    only_deletes = changes.added_deletes and not changes.added and not changes.removed
    return commit_changes(
        target.table,
        changes,
        operation=Operation.DELETE if only_deletes else Operation.OVERWRITE,
        branch=target.branch,
        read_filter=read_filter,
        stage_only=target.stage_only,
        properties=extra,
    )


def write_rows(target: Target, data: pa.Table) -> list[DataFile]:
    """Conform rows to the target schema and write them as data files (no commit)."""
    return write_data_files(target.table, conform(data, target.table.schema(), table_name=target.label))
