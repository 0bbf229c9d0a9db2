"""Who runs a statement: a ``Principal`` travels with every statement and every commit.

A lake has one owner, recorded when the lake is created (the user who created it). The owner
may use DuckDB's own file and network functions (``read_csv``, ``ATTACH``, ``COPY``, engine
``SET``s); any other principal works only through Wharf's tables. The governance layer adds
roles, grants and policies on top of this identity; nothing here decides what a principal may
read.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field


def default_user() -> str:
    """``$WHARF_USER``, else the operating-system user."""
    return os.environ.get("WHARF_USER") or getpass.getuser()


@dataclass(frozen=True)
class Principal:
    """An identity statements run as.

    ``kind`` is ``user``, ``service`` (a job or an API client) or ``external`` (a client that
    commits through Wharf's catalog, e.g. PyIceberg). ``external_access`` allows DuckDB's file and
    network access for this principal's statements; only the lake owner has it by default.
    """

    name: str
    kind: str = "user"
    groups: frozenset[str] = field(default_factory=frozenset)
    is_owner: bool = False
    external_access: bool = False

    @classmethod
    def owner(cls, name: str) -> Principal:
        """The lake owner: every privilege, and DuckDB's external access."""
        return cls(name, is_owner=True, external_access=True)

    def __str__(self) -> str:
        return self.name
