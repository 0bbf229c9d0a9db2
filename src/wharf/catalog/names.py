"""Case-insensitive names: ``Orders``, ``ORDERS`` and ``orders`` name the same table.

Spark's session catalog and DuckDB both resolve namespace and table names without regard to
case (DuckDB even for quoted names), so users of either expect it from Wharf. The catalog keeps
each name as it was created; ``canonical`` turns any spelling into that stored one, so every layer
above (statements, labels that policies match on, events) sees one name per object.

An exact match always wins; a spelling that folds to several stored names (possible only in a
catalog another engine wrote) is left as given, and the caller's exact lookup decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyiceberg.catalog import Catalog
from pyiceberg.typedef import Identifier
from sqlalchemy import text

from wharf import pyiceberg_compat as compat

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

_TABLE = compat.SQL_CATALOG_TABLE
_FOLDED_OBJECT = text(
    f"SELECT table_namespace, table_name FROM {_TABLE} "
    "WHERE catalog_name = :catalog AND lower(table_namespace) = lower(:namespace) AND lower(table_name) = lower(:name)"
)
_FOLDED_NAMESPACE = text(
    f"SELECT DISTINCT table_namespace FROM {_TABLE} WHERE catalog_name = :catalog AND lower(table_namespace) = lower(:namespace) "
    f"UNION SELECT DISTINCT namespace FROM {compat.SQL_NAMESPACE_TABLE} "
    "WHERE catalog_name = :catalog AND lower(namespace) = lower(:namespace)"
)


def storable(parts: Identifier) -> bool:
    """Whether a catalog could hold these names: PostgreSQL text cannot contain NUL, and no
    valid name does (``wharf.identifiers``), so such a name is simply not found."""
    return not any("\x00" in part for part in parts)


class NameFolding:
    """Mixin for the SQL catalog: the stored spelling of a namespace, table or view name."""

    name: str
    engine: Engine

    def canonical(self, identifier: str | Identifier) -> Identifier:
        """``identifier`` spelled as the catalog stores it (namespace and name folded separately)."""
        ident = Catalog.identifier_to_tuple(identifier)
        if len(ident) < 2 or not storable(ident):
            return ident
        try:
            namespace = Catalog.namespace_to_string(ident[:-1])
        except ValueError:
            return ident  # not a valid name: the caller's own checks say why
        with self.engine.connect() as conn:
            rows = conn.execute(_FOLDED_OBJECT, {"catalog": self.name, "namespace": namespace, "name": ident[-1]}).fetchall()
        stored = {(str(r[0]), str(r[1])) for r in rows}
        if len(stored) == 1 and (namespace, ident[-1]) not in stored:
            ns, name = stored.pop()
            return (*Catalog.identifier_to_tuple(ns), name)
        if stored:
            return ident
        return (*self.canonical_namespace(ident[:-1]), ident[-1])  # a new name, in an existing namespace

    def canonical_namespace(self, namespace: str | Identifier) -> Identifier:
        """``namespace`` spelled as the catalog stores it."""
        ns = Catalog.identifier_to_tuple(namespace)
        if not ns or not storable(ns):
            return ns
        try:
            spelled = Catalog.namespace_to_string(ns)
        except ValueError:
            return ns
        with self.engine.connect() as conn:
            stored = {str(r[0]) for r in conn.execute(_FOLDED_NAMESPACE, {"catalog": self.name, "namespace": spelled})}
        if len(stored) == 1 and spelled not in stored:
            return Catalog.identifier_to_tuple(stored.pop())
        return ns
