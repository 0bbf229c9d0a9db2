"""Privileges, the objects they are granted on, and which privilege each statement needs.

Objects form a tree: the catalog (the lake, ``*``) holds namespaces, which hold tables and views,
which hold columns. A privilege granted on an object holds for everything inside it, including
objects created later (a grant on a namespace is stored on the namespace, and checked when a
table inside it is used). ``ALL PRIVILEGES`` is every privilege, ``MANAGE`` included.
"""

from __future__ import annotations

import re

USAGE = "USAGE"
SELECT = "SELECT"
INSERT = "INSERT"
UPDATE = "UPDATE"
DELETE = "DELETE"
CREATE = "CREATE"
ALTER = "ALTER"
DROP = "DROP"
MANAGE = "MANAGE"  # may grant privileges on the object, set its row filter and masks, write masked columns
MAINTAIN = "MAINTAIN"  # the maintenance procedures (CALL system.*)
ALL = "ALL"

PRIVILEGES = (USAGE, SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, MANAGE, MAINTAIN)

CATALOG = "catalog"
NAMESPACE = "namespace"
TABLE = "table"  # tables and views share names: a grant ON TABLE v works for a view
OBJECT_KINDS = (CATALOG, NAMESPACE, TABLE)

USER = "user"
GROUP = "group"
ROLE = "role"
GRANTEE_KINDS = (USER, GROUP, ROLE)

# Metadata tables that expose statistics (bounds, counts, partition values) or row contents of
# files: a principal under a row filter, a mask or a partial column grant must not read them.
STATISTICS_TABLES = frozenset(
    {
        "files",
        "data_files",
        "delete_files",
        "manifests",
        "partitions",
        "entries",
        "position_deletes",
        "all_data_files",
        "all_delete_files",
        "all_files",
        "all_manifests",
        "all_entries",
    }
)
# Metadata tables whose rows are the table's own rows (history): the row filter and masks apply.
ROW_TABLES = frozenset({"changes", "scd2"})

_MERGE_ACTION = re.compile(r"\bTHEN\s+(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def check_privilege(name: str) -> str:
    """The canonical name of a privilege (``select`` → ``SELECT``; ``ALL PRIVILEGES`` → ``ALL``)."""
    from wharf.errors import InvalidArgument

    upper = " ".join(name.upper().split())
    if upper in ("ALL", "ALL PRIVILEGES"):
        return ALL
    if upper == "MAINTENANCE":
        return MAINTAIN
    if upper not in PRIVILEGES:
        raise InvalidArgument(f"Unknown privilege {name!r}", hint=f"privileges: {', '.join(PRIVILEGES)}, ALL PRIVILEGES")
    return upper


def write_privileges(kind: str, text: str) -> tuple[str, ...]:
    """What a statement of ``kind`` (its text: ``text``) needs on the table it writes."""
    if kind == "merge":
        actions = {m.upper() for m in _MERGE_ACTION.findall(text)}
        # Every action the text names is needed (a string literal naming one only asks for more).
        return tuple(sorted(actions)) or (UPDATE,)
    if kind in ("delete", "truncate"):
        return (DELETE,)
    if kind == "update":
        return (UPDATE,)
    if kind in ("insert", "insert_overwrite"):
        return (INSERT,) if "OVERWRITE" not in text.upper() else (INSERT, DELETE)
    if kind == "call":
        return (MAINTAIN,)
    # Anything else that writes rows (a write-audit-publish, a quality batch write …): insert and delete.
    return (INSERT, DELETE)


# What a reference's role needs (``read`` and ``write`` are refined above).
ROLE_PRIVILEGE = {"alter": ALTER, "drop": DROP, "maintain": MAINTAIN}
