"""Idempotency keys of the Iceberg REST endpoint: the final response of each keyed request, for replay.

Every ``wharf serve`` worker process shares this table, so a client that retries a request on
another connection (and so perhaps another worker) still gets the first answer. Rows older than
the announced key lifetime are deleted as new keys arrive.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wharf_rest_idempotency",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(2000), nullable=False),  # principal, method and path of the request
        sa.Column("status", sa.Integer, nullable=True),  # NULL while the first request is still running
        sa.Column("body", sa.LargeBinary, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("wharf_rest_idempotency")
