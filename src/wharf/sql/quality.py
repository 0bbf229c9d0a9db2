"""Data quality in SQL: stored rulesets, evaluation and write-audit-publish (``wharf.quality``).

::

    CREATE [OR REPLACE] DATA QUALITY RULESET [IF NOT EXISTS] name ON db.t AS '<DQDL>' [WEBHOOK '<url>']
    DROP DATA QUALITY RULESET [IF EXISTS] name
    SHOW DATA QUALITY RULESETS [ON db.t]
    CALL system.evaluate_data_quality(table => 'db.t.branch_stg', ruleset => 'Rules = [...]' | ruleset_name => 'name',
                                      row_level => false)
    CALL system.write_audit_publish(table => 'db.t', source => '<query>', ruleset => '…' | ruleset_name => '…',
                                    on_failure => 'reject' | 'quarantine', staging_branch => '…')

The statements run through the lake handle's ``quality`` façade (same code as the Python API),
as the statement's principal. Importing this module also registers the ``wharf.wap.ruleset``
commit gate (``wharf.quality.gate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import TokenType

from wharf.errors import InvalidArgument
from wharf.quality import gate  # noqa: F401  (registers the wharf.wap.ruleset commit gate)
from wharf.result import Result
from wharf.sql.context import Context
from wharf.sql.executor import handles
from wharf.sql.parser import TokenStream, extension
from wharf.sql.procedures import Param, procedure

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.quality.lake_quality import Quality


@dataclass(frozen=True)
class CreateRuleset:
    name: str
    table: str
    text: str
    webhook: str | None = None
    replace: bool = False
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropRuleset:
    name: str
    if_exists: bool = False


@dataclass(frozen=True)
class ShowRulesets:
    table: str | None = None


def _string(s: TokenStream, what: str) -> str:
    tok = s.peek()
    if tok is None or tok.token_type != TokenType.STRING:
        s.fail(f"Expected {what} as a quoted string", hint="quote DQDL with single quotes; double any ' inside it")
    s.i += 1
    return str(tok.text)


def _is_ruleset_ddl(s: TokenStream) -> bool:
    if s.accept("CREATE"):
        s.accept("OR", "REPLACE")
        return s.at("DATA", "QUALITY")
    if s.accept("DROP"):
        return s.at("DATA", "QUALITY")
    # sqlglot folds everything after SHOW into one token: read the tail as tokens of its own.
    return s.word() == "SHOW" and len(s.tokens) > 1 and s.command_tail().at("DATA", "QUALITY")


@extension(_is_ruleset_ddl)
def _parse(s: TokenStream) -> CreateRuleset | DropRuleset | ShowRulesets:
    if s.word() == "SHOW":
        t = s.command_tail()
        t.expect("DATA", "QUALITY")
        if not (t.accept("RULESETS") or t.accept("RULESET")):
            t.fail("Expected RULESETS")
        table = t.dotted_name() if t.accept("ON") or t.accept("FOR") else None
        t.expect_end()
        return ShowRulesets(table)
    if s.accept("DROP"):
        s.expect("DATA", "QUALITY", "RULESET")
        if_exists = s.accept("IF", "EXISTS")
        name = s.identifier()
        s.expect_end()
        return DropRuleset(name, if_exists)
    s.expect("CREATE")
    replace = s.accept("OR", "REPLACE")
    s.expect("DATA", "QUALITY", "RULESET")
    if_not_exists = s.accept("IF", "NOT", "EXISTS")
    if replace and if_not_exists:
        s.fail("CREATE OR REPLACE and IF NOT EXISTS cannot be used together")
    name = s.identifier()
    if not (s.accept("ON") or s.accept("FOR")):
        s.fail("Expected ON <table>", hint="CREATE DATA QUALITY RULESET name ON db.t AS 'Rules = [ … ]'")
    table = s.dotted_name()
    s.expect("AS")
    text = _string(s, "the DQDL ruleset")
    webhook = _string(s, "the webhook URL") if s.accept("WEBHOOK") else None
    s.expect_end()
    return CreateRuleset(name, table, text, webhook, replace, if_not_exists)


def _quality(ctx: Context) -> Quality:
    lake: Lakehouse | None = ctx.lake
    if lake is None:  # pragma: no cover - every statement Lakehouse runs has its handle
        raise InvalidArgument("Data quality statements need a lake handle (run them with lake.sql)")
    return lake.quality


def _status(message: str) -> Result:
    return Result(pa.table({"status": [message]}), rowcount=0, message=message)


@handles(CreateRuleset, kind="create_ruleset")
def create_ruleset(ctx: Context, stmt: CreateRuleset) -> Result:
    quality = _quality(ctx)
    if stmt.if_not_exists and quality.store.find(stmt.name) is not None:
        return _status(f"Data quality ruleset {stmt.name} already exists")
    existed = quality.store.find(stmt.name) is not None
    stored = quality.create_ruleset(stmt.name, stmt.table, stmt.text, webhook=stmt.webhook, replace=stmt.replace)
    verb = "Replaced" if existed else "Created"
    return _status(f"{verb} data quality ruleset {stored.name} on {stored.table}")


@handles(DropRuleset, kind="drop_ruleset")
def drop_ruleset(ctx: Context, stmt: DropRuleset) -> Result:
    dropped = _quality(ctx).drop_ruleset(stmt.name, if_exists=stmt.if_exists)
    return _status(f"Dropped data quality ruleset {stmt.name}" if dropped else f"Data quality ruleset {stmt.name} does not exist")


_RULESET_COLUMNS = pa.schema(
    [
        ("name", pa.string()),
        ("table_name", pa.string()),
        ("rules", pa.string()),
        ("webhook", pa.string()),
        ("created_by", pa.string()),
        ("updated_at", pa.timestamp("ms", tz="UTC")),
    ]
)


@handles(ShowRulesets, kind="show_rulesets")
def show_rulesets(ctx: Context, stmt: ShowRulesets) -> Result:
    found = _quality(ctx).rulesets(stmt.table)
    rows = [
        {
            "name": r.name,
            "table_name": r.table,
            "rules": r.text,
            "webhook": r.webhook,
            "created_by": r.created_by,
            "updated_at": r.updated_at_ms,
        }
        for r in found
    ]
    return Result(pa.Table.from_pylist(rows, schema=_RULESET_COLUMNS), rowcount=len(rows))


def _ruleset_argument(a: dict[str, Any], procedure_name: str) -> str:
    if (a.get("ruleset") is None) == (a.get("ruleset_name") is None):
        raise InvalidArgument(
            f"system.{procedure_name} needs exactly one of ruleset => '<DQDL>' or ruleset_name => '<stored ruleset>'"
        )
    return str(a["ruleset"] if a.get("ruleset") is not None else a["ruleset_name"])


@procedure(
    "evaluate_data_quality",
    [
        Param("table", "string"),
        Param("ruleset", "string", False),
        Param("ruleset_name", "string", False),
        Param("row_level", "boolean", False),
    ],
    [
        ("rule", pa.string()),
        ("outcome", pa.string()),
        ("failure_reason", pa.string()),
        ("evaluated_metrics", pa.map_(pa.string(), pa.float64())),
    ],
)
def _evaluate_data_quality(ctx: Context, a: dict[str, Any]) -> pa.Table:
    """One row per rule (``rule``, ``outcome``, ``failure_reason``, ``evaluated_metrics``); with
    ``row_level => true`` the source rows plus Glue's four outcome columns. Recorded in
    ``system.quality_results``."""
    quality = _quality(ctx)
    ruleset = _ruleset_argument(a, "evaluate_data_quality")
    if a.get("ruleset_name") is not None:
        quality.ruleset(ruleset)  # a stored name only: say clearly when it does not exist
    run = quality.evaluate(a["table"], ruleset, row_level=bool(a.get("row_level")))
    return run.rows("all") if a.get("row_level") else run.to_arrow()


@procedure(
    "write_audit_publish",
    [
        Param("table", "string"),
        Param("source", "string"),
        Param("ruleset", "string", False),
        Param("ruleset_name", "string", False),
        Param("on_failure", "string", False),
        Param("staging_branch", "string", False),
    ],
    [
        ("outcome", pa.string()),
        ("batch_id", pa.string()),
        ("main_before", pa.int64()),
        ("main_after", pa.int64()),
        ("staged_snapshot_id", pa.int64()),
        ("published_rows", pa.int64()),
        ("quarantined_rows", pa.int64()),
        ("failed_rules", pa.list_(pa.string())),
        ("message", pa.string()),
    ],
)
def _write_audit_publish(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
    """Stage the rows of ``source`` (a query) on a branch, audit them with the ruleset, publish to main
    only if they pass (``on_failure``: reject, or quarantine the failing rows)."""
    quality = _quality(ctx)
    ruleset = _ruleset_argument(a, "write_audit_publish")
    if a.get("ruleset_name") is not None:
        quality.ruleset(ruleset)
    result = quality.write_audit_publish(
        a["table"], a["source"], ruleset, on_failure=a.get("on_failure") or "reject", staging_branch=a.get("staging_branch")
    )
    failed = [r.rule for r in result.report.failed_rules()] if result.report is not None else []
    return {
        "outcome": result.outcome,
        "batch_id": result.batch_id,
        "main_before": result.main_before,
        "main_after": result.main_after,
        "staged_snapshot_id": result.staged_snapshot_id,
        "published_rows": result.published_rows,
        "quarantined_rows": result.quarantined_rows,
        "failed_rules": failed,
        "message": result.message,
    }


__all__ = ["CreateRuleset", "DropRuleset", "ShowRulesets"]
