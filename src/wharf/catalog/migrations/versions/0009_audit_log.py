"""The audit log: one row per statement, HTTP API call and governance decision (``wharf.governance.audit``).

A lake whose metadata database is PostgreSQL writes its audit log here. A SQLite lake keeps it in
a file of its own beside ``wharf.db`` (``wharf-audit.db``, same schema): a write to ``wharf.db``
changes the change token every statement's cached catalog answers depend on
(``wharf.catalog.freshness``), and the audit log is written by every statement. The table made
here then stays empty.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wharf_audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("tables_read", sa.Text, nullable=False),
        sa.Column("columns_read", sa.Text, nullable=False),
        sa.Column("tables_written", sa.Text, nullable=False),
        sa.Column("columns_written", sa.Text, nullable=False),
        sa.Column("policies", sa.Text, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("rows", sa.BigInteger),
        sa.Column("duration_ms", sa.Float),
        sa.Column("status", sa.Integer),
        sa.Column("request_id", sa.String(128)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_wharf_audit_log_time", "wharf_audit_log", ["time_ms"])
    op.create_index("ix_wharf_audit_log_principal", "wharf_audit_log", ["principal", "time_ms"])
    op.create_index("ix_wharf_audit_log_event", "wharf_audit_log", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_wharf_audit_log_event", table_name="wharf_audit_log")
    op.drop_index("ix_wharf_audit_log_principal", table_name="wharf_audit_log")
    op.drop_index("ix_wharf_audit_log_time", table_name="wharf_audit_log")
    op.drop_table("wharf_audit_log")
