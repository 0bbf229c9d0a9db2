"""The policy pass: where governance decides, per table reference, what a principal may see.

Every resolved reference of every statement kind — query sources, DML targets and sources, CTAS
sources, metadata tables, ``DESCRIBE``/``SHOW``, procedure arguments, the CLI's inspection
commands, ``Table.to_arrow()`` — passes through ``authorize`` before it is planned. A ``Policy``
(registered on the lake; the governance issue provides the real ones) may:

- refuse the reference (raise ``AccessDenied``), e.g. no ``SELECT`` privilege, or a metadata
  table that would reveal file paths;
- restrict it: a row filter and column masks, returned as a ``ReferencePolicy``. The generate
  pass then reads the table through ``SELECT <masked columns> FROM <files> WHERE <filter>``, so
  every query shape (joins, CTEs, subqueries, UNION, DML) sees only the permitted rows and values.

With no policy registered this pass changes nothing: that is the embedded default (the lake
owner). It fails closed: a policy that raises anything refuses the statement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sqlglot import exp

from wharf.errors import AccessDenied, WharfError

if TYPE_CHECKING:
    from wharf.principal import Principal
    from wharf.sql.references import Reference


@dataclass(frozen=True)
class ReferencePolicy:
    """What applies to one reference: a row filter and masks, as SQL over the table's own column names.

    ``row_filter`` keeps the rows for which it is TRUE; ``masks`` replaces a column's value by an
    expression (``{"ssn": "'***'"}``, ``{"email": "regexp_replace(email, '.*@', '*@')"}``).
    ``names`` says which policies these are, for the audit log (``row filter us_only``,
    ``mask email: mask_email``); never values.
    """

    row_filter: exp.Expr | None = None
    masks: dict[str, exp.Expression] = field(default_factory=dict)
    names: tuple[str, ...] = ()

    @property
    def restricts(self) -> bool:
        return self.row_filter is not None or bool(self.masks)


class Policy(Protocol):
    """Decides what ``principal`` may do with ``reference`` (its ``role``: read, write, describe, …)."""

    def __call__(self, principal: Principal, reference: Reference) -> ReferencePolicy | None: ...


def combine(policies: list[ReferencePolicy]) -> ReferencePolicy | None:
    """All row filters must hold; the first mask of a column wins (policies are ordered)."""
    if not policies:
        return None
    filters = [p.row_filter for p in policies if p.row_filter is not None]
    masks: dict[str, exp.Expression] = {}
    for p in policies:
        for column, mask in p.masks.items():
            masks.setdefault(column.lower(), mask)
    row_filter: exp.Expr | None = exp.and_(*filters) if filters else None
    names = tuple(dict.fromkeys(name for p in policies for name in p.names))
    return ReferencePolicy(row_filter, masks, names) if row_filter is not None or masks else None


def authorize_reference(policies: tuple[Policy, ...], principal: Principal, reference: Reference) -> None:
    """Apply every policy to one reference (fills ``reference.policy``; raises ``AccessDenied`` to refuse)."""
    if not policies:
        return
    found: list[ReferencePolicy] = []
    for policy in policies:
        try:
            result = policy(principal, reference)
        except WharfError:
            raise
        except Exception as exc:
            # Fail closed: a broken policy refuses instead of letting the reference through.
            raise AccessDenied(
                f"A policy failed while checking {principal.name}'s access to {reference.label}: {type(exc).__name__}: {exc}",
                hint="the statement was refused; ask the lake owner to fix the policy",
            ) from exc
        if result is not None and result.restricts:
            found.append(result)
    reference.policy = combine(found)
