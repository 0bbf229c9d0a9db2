"""SQL: one parser, one executor; one module per statement kind (each registers its handler)."""

from wharf.sql import ddl, insert, query  # noqa: F401  (register handlers)
from wharf.sql.executor import execute
from wharf.sql.parser import DIALECTS, Statement, parse

__all__ = ["DIALECTS", "Statement", "execute", "parse"]
