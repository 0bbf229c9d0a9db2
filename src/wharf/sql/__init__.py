"""SQL: one parser, one executor; one module per statement kind (each registers its handler)."""

from wharf.sql import branches, ddl, delete, insert, merge, procedures, query, session, show, update  # noqa: F401
from wharf.sql.executor import execute
from wharf.sql.parser import DIALECTS, ParsedStatement, parse

__all__ = ["DIALECTS", "ParsedStatement", "execute", "parse"]
