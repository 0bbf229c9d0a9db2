"""Data quality rulesets: named DQDL documents attached to a table.

``CREATE DATA QUALITY RULESET name ON db.t AS '…'`` / ``lake.quality.create_ruleset`` store one
row; the text is kept as written (it was parsed before it was stored). ``webhook`` is the URL
called when a run of the ruleset fails. Evaluations are not stored here but in the Iceberg
table ``system.quality_results``, where every engine can query them.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wharf_quality_rulesets",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("table_name", sa.String(1000), nullable=False),
        sa.Column("ruleset", sa.Text, nullable=False),
        sa.Column("webhook", sa.String(2000), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_wharf_quality_rulesets_table", "wharf_quality_rulesets", ["table_name"])


def downgrade() -> None:
    op.drop_index("ix_wharf_quality_rulesets_table", "wharf_quality_rulesets")
    op.drop_table("wharf_quality_rulesets")
