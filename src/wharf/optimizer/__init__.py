"""The automatic optimizer: table maintenance decided by policy, run unattended, logged to SQL.

- ``wharf.tables.optimizer_policy``: the ``wharf.optimizer.*`` properties (``Policy``);
- ``decide``: measure a table, decide what its policy calls for and why (``Decision``);
- ``log``: ``system.maintenance_log``, the queryable record of every action and the back-off state;
- ``runner``: ``Optimizer.run_once()`` (one pass, for cron) and ``Optimizer.serve()`` (a loop);
- ``commands``: the ``wharf optimize`` and ``wharf optimizer …`` CLI commands.

See docs/optimizer.md.
"""

from wharf.optimizer.decide import Action, Decision, TableState, TableStats, decide, measure
from wharf.optimizer.log import LOG_NAME, LogEntry, MaintenanceLog
from wharf.optimizer.runner import Optimizer, PassReport, optimize_table
from wharf.tables.optimizer_policy import Policy

__all__ = [
    "LOG_NAME",
    "Action",
    "Decision",
    "LogEntry",
    "MaintenanceLog",
    "Optimizer",
    "PassReport",
    "Policy",
    "TableState",
    "TableStats",
    "decide",
    "measure",
    "optimize_table",
]
