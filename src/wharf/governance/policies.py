"""Policy functions, and the row filters and column masks that bind them to tables."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wharf.errors import AlreadyExists, InvalidArgument, NotFound
from wharf.governance import tables as t
from wharf.governance.builtin_masks import parse_builtin
from wharf.governance.functions import PolicyFunction, check_function
from wharf.governance.store import GovernanceStore, now_ms


def create_function(store: GovernanceStore, function: PolicyFunction, by: str, *, replace: bool = False) -> None:
    check_function(function)

    def run(conn: Connection) -> None:
        exists = conn.execute(sa.select(t.functions.c.name).where(t.functions.c.name == function.name)).first() is not None
        if exists and not replace:
            raise AlreadyExists(f"Function {function.name} already exists", hint="CREATE OR REPLACE FUNCTION")
        if exists:
            conn.execute(t.functions.delete().where(t.functions.c.name == function.name))
        conn.execute(
            t.functions.insert().values(
                name=function.name,
                parameters=function.parameters_json(),
                returns=function.returns,
                body=function.body,
                created_by=by,
                created_at_ms=now_ms(),
            )
        )

    store.run(run)


def drop_function(store: GovernanceStore, name: str, *, if_exists: bool = False) -> None:
    def run(conn: Connection) -> None:
        used = conn.execute(sa.select(t.row_filters.c.table_name).where(t.row_filters.c.function == name)).first()
        used = used or conn.execute(sa.select(t.masks.c.table_name).where(t.masks.c.function == name)).first()
        if used is not None:
            raise InvalidArgument(f"Function {name} is in use by {used[0]}", hint="drop the row filter or mask first")
        if conn.execute(t.functions.delete().where(t.functions.c.name == name)).rowcount == 0 and not if_exists:
            raise NotFound(f"No function named {name}")

    store.run(run)


def _function(conn: Connection, name: str) -> PolicyFunction:
    row = conn.execute(sa.select(t.functions).where(t.functions.c.name == name)).first()
    if row is None:
        raise NotFound(f"No function named {name}", hint=f"CREATE FUNCTION {name}(…) RETURNS … RETURN …")
    return PolicyFunction(row.name, tuple(tuple(p) for p in json.loads(row.parameters)), row.returns, row.body)


def _check_columns(columns: Sequence[str], table_columns: Sequence[str], table: str) -> list[str]:
    known = {c.lower(): c for c in table_columns}
    missing = [c for c in columns if c.lower() not in known]
    if missing:
        raise NotFound(f"{table} has no column(s) {', '.join(missing)}", hint=f"columns: {', '.join(table_columns)}")
    return [known[c.lower()] for c in columns]


def set_row_filter(
    store: GovernanceStore, table: str, function: str, columns: Sequence[str], table_columns: Sequence[str]
) -> None:
    cols = _check_columns(columns, table_columns, table)

    def run(conn: Connection) -> None:
        found = _function(conn, function)
        if len(found.parameters) != len(cols):
            raise InvalidArgument(
                f"{function} takes {len(found.parameters)} argument(s), {len(cols)} column(s) given", hint=found.signature
            )
        if "BOOL" not in found.returns.upper():
            raise InvalidArgument(f"A row filter returns BOOLEAN; {function} returns {found.returns}")
        conn.execute(t.row_filters.delete().where(t.row_filters.c.table_name == table.lower()))
        conn.execute(t.row_filters.insert().values(table_name=table.lower(), function=function, columns=json.dumps(cols)))

    store.run(run)


def drop_row_filter(store: GovernanceStore, table: str) -> bool:
    return store.run(
        lambda conn: bool(conn.execute(t.row_filters.delete().where(t.row_filters.c.table_name == table.lower())).rowcount)
    )


def set_mask(
    store: GovernanceStore, table: str, column: str, function: str, using: Sequence[str], table_columns: Sequence[str]
) -> None:
    (masked,) = _check_columns([column], table_columns, table)
    extra = _check_columns(using, table_columns, table)

    def run(conn: Connection) -> None:
        stored = conn.execute(sa.select(t.functions.c.name).where(t.functions.c.name == function)).first()
        builtin = parse_builtin(function) if stored is None else None
        if builtin is not None:
            if extra:
                raise InvalidArgument(f"The built-in mask {function} takes no USING COLUMNS")
            name = f"{builtin[0]}({', '.join(map(str, builtin[1]))})" if builtin[1] else builtin[0]
            key = (t.masks.c.table_name == table.lower(), t.masks.c.column_name == masked.lower())
            conn.execute(t.masks.delete().where(*key))
            conn.execute(
                t.masks.insert().values(table_name=table.lower(), column_name=masked.lower(), function=name, columns="[]")
            )
            return
        found = _function(conn, function)
        if len(found.parameters) != 1 + len(extra):
            raise InvalidArgument(
                f"{function} takes {len(found.parameters)} argument(s); a mask passes the column and its USING COLUMNS",
                hint=found.signature,
            )
        key = (t.masks.c.table_name == table.lower(), t.masks.c.column_name == masked.lower())
        conn.execute(t.masks.delete().where(*key))
        conn.execute(
            t.masks.insert().values(
                table_name=table.lower(), column_name=masked.lower(), function=function, columns=json.dumps(extra)
            )
        )

    store.run(run)


def drop_mask(store: GovernanceStore, table: str, column: str) -> bool:
    return store.run(
        lambda conn: bool(
            conn.execute(
                t.masks.delete().where(t.masks.c.table_name == table.lower(), t.masks.c.column_name == column.lower())
            ).rowcount
        )
    )


def set_tags(store: GovernanceStore, table: str, column: str, tags: dict[str, str | None], table_columns: Sequence[str]) -> None:
    """Set (or, with a None value, remove) classification tags on a column."""
    (named,) = _check_columns([column], table_columns, table)

    def run(conn: Connection) -> None:
        for tag, value in tags.items():
            key = (
                t.column_tags.c.table_name == table.lower(),
                t.column_tags.c.column_name == named.lower(),
                t.column_tags.c.tag == tag,
            )
            conn.execute(t.column_tags.delete().where(*key))
            if value is not None:
                conn.execute(
                    t.column_tags.insert().values(table_name=table.lower(), column_name=named.lower(), tag=tag, value=value)
                )

    store.run(run)


def create_tag_policy(
    store: GovernanceStore,
    name: str,
    tag: str,
    value: str,
    function: str,
    exempt: Sequence[tuple[str, str]],
    *,
    replace: bool = False,
) -> None:
    """Mask every column tagged ``tag = value`` with ``function`` (a stored function of one argument, or a built-in mask)."""

    def run(conn: Connection) -> None:
        if parse_builtin(function) is None:
            found = _function(conn, function)
            if len(found.parameters) != 1:
                raise InvalidArgument(
                    f"A tag masking policy's function takes the column only; {function} takes {len(found.parameters)}"
                )
        exists = conn.execute(sa.select(t.tag_policies.c.name).where(t.tag_policies.c.name == name)).first() is not None
        if exists and not replace:
            raise AlreadyExists(f"Masking policy {name} already exists", hint="CREATE OR REPLACE MASKING POLICY")
        conn.execute(t.tag_policies.delete().where(t.tag_policies.c.name == name))
        conn.execute(
            t.tag_policies.insert().values(
                name=name, tag=tag, value=value, function=function, exempt=json.dumps([list(e) for e in exempt])
            )
        )

    store.run(run)


def drop_tag_policy(store: GovernanceStore, name: str, *, if_exists: bool = False) -> None:
    def run(conn: Connection) -> None:
        if conn.execute(t.tag_policies.delete().where(t.tag_policies.c.name == name)).rowcount == 0 and not if_exists:
            raise NotFound(f"No masking policy named {name}")

    store.run(run)
