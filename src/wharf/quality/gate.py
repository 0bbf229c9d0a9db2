"""The automatic quality gate: ``wharf.wap.ruleset = '<ruleset>'`` puts every write to main behind a ruleset.

A ``before_commit`` gate, registered for every catalog of the process (``register_builtin``), so
SQL statements, the Python API, the CLI and PyIceberg clients committing through Wharf's catalog
all pass it: a change that points ``main`` of a table carrying the property at a snapshot is
evaluated on that snapshot — read from the change's proposed metadata when the snapshot is not
committed yet — and refused (``CommitRejected`` naming the failed rules) when a rule fails.
Nothing is committed then and the files written for it are removed.

Moving main to a snapshot that already passed the same rules (a run of the ruleset with the same
fingerprint recorded in ``system.quality_results``, as write-audit-publish records its audit) is
not evaluated again. The quality machinery's own writes (``system.quality_results``, quarantine
tables) are not gated. Setting the property to a ruleset that does not exist is refused.
Every gate run is recorded (kind ``gate``), refused ones too. The rules run as the principal
making the change (so a ``CustomSql`` rule reads only what that writer may read); only the
bookkeeping (rulesets, ``system.quality_results``) runs as the lake's owner.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.update import RemovePropertiesUpdate, SetPropertiesUpdate

from wharf.catalog.changes import TableChange
from wharf.errors import CommitRejected, InvalidArgument
from wharf.events import register_builtin
from wharf.quality.results_log import CHECK, GATE, is_internal

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.quality.lake_quality import Source

GATE_PROPERTY = "wharf.wap.ruleset"
_LAKES_LOCK = threading.Lock()


# How the gate gets a lake handle (as the owner) on the lake a catalog belongs to: the façade
# layer (``wharf.lakehouse``) installs it, since this layer cannot build a ``Lakehouse`` itself.
LakeOpener = Callable[[Any], "Lakehouse"]
_opener: LakeOpener | None = None


def set_lake_opener(opener: LakeOpener) -> None:
    """Install how the gate opens a lake handle for a catalog (``wharf.lakehouse`` does, on import)."""
    global _opener
    _opener = opener


def gate_lake(catalog: Any) -> Lakehouse:
    """The owner's handle on ``catalog``'s lake, made once per catalog: what the gate evaluates and records with."""
    with _LAKES_LOCK:
        lake: Lakehouse | None = getattr(catalog, "_wharf_gate_lake", None)
        if lake is None:
            if _opener is None:
                raise CommitRejected(
                    "The data quality gate cannot open the lake (wharf.lakehouse is not loaded)",
                    gate="quality",
                    hint="import wharf before committing through its catalog",
                )
            lake = _opener(catalog)
            catalog._wharf_gate_lake = lake
        return lake


def _sets_property(change: TableChange) -> str | None:
    for update in change.updates:
        if isinstance(update, SetPropertiesUpdate) and GATE_PROPERTY in update.updates:
            return update.updates[GATE_PROPERTY]
    return None


def _gate_ruleset(change: TableChange) -> str | None:
    """The ruleset the table names once the change lands, read from the base and the change's
    property updates — without building the proposed metadata, which most commits never need."""
    name = change.base.properties.get(GATE_PROPERTY) if change.base is not None else None
    for update in change.updates:
        if isinstance(update, SetPropertiesUpdate) and GATE_PROPERTY in update.updates:
            name = update.updates[GATE_PROPERTY]
        elif isinstance(update, RemovePropertiesUpdate) and GATE_PROPERTY in update.removals:
            name = None
    return name or None


def quality_gate(change: TableChange) -> None:
    """The ``before_commit`` gate (see the module docstring)."""
    if is_internal() or change.kind not in ("create", "update") or change.catalog is None:
        return
    name = _gate_ruleset(change)
    if name is None:
        return
    from wharf.quality.lake_quality import Quality

    lake = gate_lake(change.catalog)
    quality = Quality(lake)
    stored = quality.store.find(name)
    if stored is None:
        raise InvalidArgument(
            f"Table property {GATE_PROPERTY} of {change.table} names data quality ruleset '{name}', which does not exist",
            hint=f"create it first (CREATE DATA QUALITY RULESET {name} ON {change.table} AS '…'), "
            f"or UNSET TBLPROPERTIES ('{GATE_PROPERTY}')",
        )
    if _sets_property(change) is not None and not change.moves(MAIN_BRANCH):
        return  # turning the gate on: the ruleset exists, nothing is published by this change
    target = change.ref_moves.get(MAIN_BRANCH)
    if target is None or not change.moves(MAIN_BRANCH):
        return
    spec = quality.spec(stored.name)
    if quality.log.passed(change.table, target, spec.name, spec.digest):
        return
    # The rules (CustomSql included) run as the committing principal, never as the owner the
    # bookkeeping handle belongs to: a ruleset must not read what the writer may not read.
    evaluator = lake.session(principal=change.principal)
    source, view = _proposed(change, target, evaluator)
    try:
        run = quality.run(spec, source, kind=GATE, step=CHECK, principal=change.principal.name, evaluator=evaluator)
    finally:
        if view is not None:
            evaluator.duckdb.execute(f"DROP VIEW IF EXISTS {view}")
    if run.passed:
        return
    failed = run.failed_rules()
    reasons = "; ".join(f"{r.rule}" + (f" ({r.failure_reason})" if r.failure_reason else "") for r in failed)
    raise CommitRejected(
        f"Data quality gate '{stored.name}' refused the write to {change.table}: "
        f"{len(failed)} of {len(run.rules)} rule(s) failed: {reasons}",
        table=change.table,
        gate=f"quality:{stored.name}",
        hint="nothing was committed; fix the data (see system.quality_results, run "
        f"{run.run_id}), write through lake.quality.write_audit_publish(..., on_failure='quarantine'), "
        f"or change the ruleset",
    )


def _proposed(change: TableChange, snapshot_id: int, evaluator: Lakehouse) -> tuple[Source, str | None]:
    """What the gate evaluates: the snapshot as a table reference if it is committed already
    (a fast-forward), else a DuckDB view (returned, to drop) over the files of the proposed metadata,
    made in the database the evaluating principal's statements run on."""
    from pyiceberg.table import Table as IcebergTable

    from wharf.quality.lake_quality import Source
    from wharf.tables.scan import ScanPlanner, quote_ident

    ns, name = change.table.rsplit(".", 1)
    if change.base is not None and change.base.snapshot_by_id(snapshot_id) is not None:
        pinned = f"{quote_ident(ns)}.{quote_ident(name)} FOR VERSION AS OF {snapshot_id}"
        return Source(pinned, change.table, "main", snapshot_id), None
    metadata = change.metadata
    assert metadata is not None and change.io is not None  # a create or update carries both
    proposed = IcebergTable(identifier=(ns, name), metadata=metadata, metadata_location="", io=change.io, catalog=change.catalog)
    plan = ScanPlanner(max_entries=1).plan(proposed, snapshot_id)
    view = f"__wharf_proposed_{uuid.uuid4().hex[:16]}"
    evaluator.duckdb.execute(f"CREATE VIEW {view} AS SELECT * FROM {plan.relation_sql()}")
    return Source(view, change.table, "main", snapshot_id), view


unregister = register_builtin("before_commit", quality_gate)

__all__ = ["GATE_PROPERTY", "gate_lake", "quality_gate"]
