"""SQL: one parser, one executor; one module per statement kind (each registers its handler)."""

import wharf.ingest.apply_changes  # noqa: F401  (registers system.apply_changes)
import wharf.sql.adoption_procedures  # noqa: F401  (registers its procedures)
import wharf.sql.history_procedures  # noqa: F401  (registers its procedures)
import wharf.sql.maintenance_procedures  # noqa: F401  (registers its procedures)
import wharf.sql.quality  # noqa: F401  (data quality statements and procedures; the wharf.wap.ruleset gate)
from wharf.sql import (  # noqa: F401
    access,  # noqa: F401  (access requests, approvers, rules, webhooks)
    branches,
    columns,
    ddl,
    delete,
    governance,  # noqa: F401  (users, roles, grants, row filters and masks)
    insert,
    layout,
    merge,
    procedures,
    query,
    session,
    show,
    update,
    views,
)
from wharf.sql.executor import execute
from wharf.sql.parser import DIALECTS, ParsedStatement, parse

__all__ = ["DIALECTS", "ParsedStatement", "execute", "parse"]
