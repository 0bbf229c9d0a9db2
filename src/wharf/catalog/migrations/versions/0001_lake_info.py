"""The catalog's tables and the lake's identity.

- PyIceberg's SQL-catalog tables (``iceberg_tables``, ``iceberg_namespace_properties``), from
  PyIceberg's own definitions: created here, under the migration lock, because PyIceberg's own
  "create if absent" races when several processes open a new lake at once.
- ``wharf_lake``: the lake's id, creation time and owner.

Lakes created before Wharf used Alembic already have these tables (and a ``wharf_migrations``
bookkeeping table, which Alembic's ``alembic_version`` replaces): they are adopted as they are.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    from pyiceberg.catalog.sql import SqlCatalogBaseTable

    bind = op.get_bind()
    SqlCatalogBaseTable.metadata.create_all(bind, checkfirst=True)
    existing = set(sa.inspect(bind).get_table_names())
    if "wharf_lake" not in existing:
        op.create_table(
            "wharf_lake",
            sa.Column("key", sa.String(200), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )
    lake = sa.table("wharf_lake", sa.column("key", sa.String), sa.column("value", sa.Text))
    keys = {row[0] for row in bind.execute(sa.select(lake.c.key))}
    rows = [
        {"key": key, "value": value}
        for key, value in (("lake_id", str(uuid.uuid4())), ("created_at_ms", str(int(time.time() * 1000))))
        if key not in keys
    ]
    if rows:
        op.bulk_insert(lake, rows)
    if "wharf_migrations" in existing:
        op.drop_table("wharf_migrations")


def downgrade() -> None:
    op.drop_table("wharf_lake")
