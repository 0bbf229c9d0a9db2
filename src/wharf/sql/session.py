"""Session settings: ``SET wharf.<name> = value`` / ``RESET wharf.<name>``; other ``SET``s go to DuckDB.

=================  ==============================================================================
wharf.branch       reads and writes without an explicit ref use this branch (Spark's spark.wap.branch)
wharf.wap_id       writes are staged, not published, tagged with this id (Spark's spark.wap.id);
                   publish them with ``CALL system.publish_changes(table, wap_id)``
wharf.dialect      SQL dialect of the following ``lake.sql`` calls (duckdb, spark, trino, …)
wharf.partition_overwrite_mode
                   INSERT OVERWRITE replaces the rows of its static PARTITION values (``static``,
                   Spark's default) or the partitions it writes (``dynamic``); Spark's
                   ``spark.sql.sources.partitionOverwriteMode`` is an alias
wharf.user         read-only: who runs statements is fixed when the lake is opened
                   (``wharf.connect(user=…)``), so a statement cannot impersonate someone
=================  ==============================================================================

``SET`` alone lists the Wharf settings; ``SET wharf.x`` shows one. ``spark.wap.branch`` and
``spark.wap.id`` are accepted as aliases. Anything else (``SET threads = 2``) runs on DuckDB,
for principals allowed external access only (an engine setting is the whole process's, not
the session's). Settings belong to the lake handle a statement runs on (``lake.session()``
gives another handle with its own), never to the process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from wharf.errors import AccessDenied, InvalidArgument
from wharf.result import Result
from wharf.sql.context import Context, Session
from wharf.sql.executor import handles, run_duckdb
from wharf.sql.parser import DIALECTS, TokenStream, extension


@dataclass(frozen=True)
class SetOption:
    """``SET [name [= value]]``; ``show`` when no value is given."""

    name: str | None
    value: Any = None
    show: bool = False
    text: str = ""


@dataclass(frozen=True)
class ResetOption:
    """``RESET [name]``."""

    name: str | None
    text: str = ""


def _name(session: Session, value: Any, setting: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # SET wharf.wap_id = 42
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{setting} must be a name, got {value!r}")
    return value


def _branch(session: Session, value: Any) -> str | None:
    name = _name(session, value, "wharf.branch")
    if name is not None and session.wap_id:
        raise InvalidArgument(
            "wharf.branch and wharf.wap_id cannot both be set", hint="RESET wharf.wap_id first, or stage on the branch only"
        )
    return name


def _wap_id(session: Session, value: Any) -> str | None:
    name = _name(session, value, "wharf.wap_id")
    if name is not None and session.branch:
        raise InvalidArgument(
            "wharf.wap_id and wharf.branch cannot both be set", hint="RESET wharf.branch first; staged writes need no branch"
        )
    return name


def _dialect(session: Session, value: Any) -> str:
    text = str(value or "duckdb").lower()
    if text not in DIALECTS:
        raise InvalidArgument(f"Unknown SQL dialect '{value}'", hint=f"use one of: {', '.join(DIALECTS)}")
    return text


def _overwrite_mode(session: Session, value: Any) -> str:
    text = str(value or "static").lower()
    if text not in ("static", "dynamic"):
        raise InvalidArgument(f"Unknown partition overwrite mode '{value}'", hint="static (Spark's default) or dynamic")
    return text


def _read_only(session: Session, value: Any) -> str:
    raise InvalidArgument(
        "wharf.user cannot be changed by a statement",
        hint="the user is set when the lake is opened: wharf.connect(path, user='…') or $WHARF_USER",
    )


@dataclass(frozen=True)
class Setting:
    attribute: str  # attribute of Session
    check: Callable[[Session, Any], Any]  # validates and normalises a new value
    default: Any = None  # value after RESET


SETTINGS: dict[str, Setting] = {
    "wharf.branch": Setting("branch", _branch),
    "wharf.wap_id": Setting("wap_id", _wap_id),
    "wharf.dialect": Setting("dialect", _dialect, "duckdb"),
    "wharf.partition_overwrite_mode": Setting("partition_overwrite_mode", _overwrite_mode, "static"),
    "wharf.user": Setting("user", _read_only),
}
ALIASES = {
    "spark.wap.branch": "wharf.branch",
    "spark.wap.id": "wharf.wap_id",
    "spark.sql.sources.partitionoverwritemode": "wharf.partition_overwrite_mode",
}


def _setting(name: str) -> str | None:
    lowered = name.lower()
    lowered = ALIASES.get(lowered, lowered)
    if lowered in SETTINGS:
        return lowered
    if lowered.startswith("wharf."):
        raise InvalidArgument(f"Unknown setting '{name}'", hint=f"Wharf settings: {', '.join(SETTINGS)}")
    return None


@extension(lambda s: s.word() in ("SET", "RESET"))
def _parse_set(s: TokenStream) -> SetOption | ResetOption:
    if s.accept("RESET"):
        name = None if s.done() else s.dotted_name()
        if name is None or name.lower() in ALIASES or name.lower().startswith("wharf."):
            s.expect_end()
        return ResetOption(name, s.text)
    s.expect("SET")
    if s.done():
        return SetOption(None, show=True, text=s.text)
    if s.word() in ("SESSION", "GLOBAL", "LOCAL", "VARIABLE"):
        return SetOption(s.word(), text=s.text)  # DuckDB scoped settings: always passed through
    name = s.dotted_name()
    if s.done():
        return SetOption(name, show=True, text=s.text)
    if not (s.accept("=") or s.accept("TO")):
        s.fail("Expected = or TO after the setting name")
    if _is_wharf(name):
        value = s.literal()
        s.expect_end()
        return SetOption(name, value, text=s.text)
    return SetOption(name, text=s.text)


def _is_wharf(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith("wharf.") or lowered in ALIASES


def _value(ctx: Context, name: str) -> Any:
    attribute = SETTINGS[name].attribute
    return ctx.principal.name if attribute == "user" else getattr(ctx.session, attribute)


def _rows(ctx: Context, names: list[str]) -> Result:
    values = [_value(ctx, n) for n in names]
    return Result(pa.table({"key": names, "value": pa.array([None if v is None else str(v) for v in values], pa.string())}))


def _engine_setting(ctx: Context, name: str) -> None:
    if not ctx.principal.external_access:
        raise AccessDenied(
            f"{ctx.principal.name} may not change DuckDB's setting '{name}'",
            hint="engine settings apply to every session of the lake; only its owner may change them",
        )


@handles(SetOption, kind="set")
def run_set(ctx: Context, stmt: SetOption) -> Result:
    if stmt.name is None:
        return _rows(ctx, list(SETTINGS))
    key = _setting(stmt.name) if _is_wharf(stmt.name) else None
    if key is None:
        _engine_setting(ctx, stmt.name)
        if stmt.show:
            sql = "SELECT ? AS key, CAST(current_setting(?) AS VARCHAR) AS value"
            return Result(run_duckdb(ctx.con, sql, [stmt.name, stmt.name]).to_arrow_table())
        run_duckdb(ctx.con, stmt.text)
        return Result(pa.table({"key": [stmt.name], "value": pa.array([None], pa.string())}), rowcount=0)
    if stmt.show:
        return _rows(ctx, [key])
    setting = SETTINGS[key]
    ctx.update_session(**{setting.attribute: setting.check(ctx.session, stmt.value)})
    return _rows(ctx, [key])


@handles(ResetOption, kind="reset")
def run_reset(ctx: Context, stmt: ResetOption) -> Result:
    if stmt.name is None:
        keys = [k for k, s in SETTINGS.items() if s.check is not _read_only]
    elif _is_wharf(stmt.name):
        key = _setting(stmt.name)
        assert key is not None
        if SETTINGS[key].check is _read_only:
            _read_only(ctx.session, None)
        keys = [key]
    else:
        _engine_setting(ctx, stmt.name)
        run_duckdb(ctx.con, stmt.text)
        return Result(pa.table({"key": [stmt.name], "value": pa.array([None], pa.string())}), rowcount=0)
    ctx.update_session(**{SETTINGS[key].attribute: SETTINGS[key].default for key in keys})
    return _rows(ctx, keys)
