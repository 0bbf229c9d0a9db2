"""External locations: directories or bucket prefixes outside the warehouse that tables may use.

Only the lake owner registers them (``lake.register_location``), as Lake Formation registers
locations; a table's location and its data and metadata paths must lie in the warehouse or in one
of these.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wharf_locations",
        sa.Column("location", sa.String(2000), primary_key=True),
        sa.Column("registered_by", sa.String(255), nullable=False),
        sa.Column("registered_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("wharf_locations")
