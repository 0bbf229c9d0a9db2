"""Governance: groups, roles, privileges, owners, policy functions, row filters, column masks.

- ``wharf_gov_groups`` / ``wharf_gov_members``: groups and the users (or services) in them. Users
  themselves, with their attributes, are the rows of ``wharf_principals`` (migration 0004).
- ``wharf_gov_roles`` / ``wharf_gov_role_grants``: roles, granted to a user, a group or a role.
- ``wharf_gov_grants``: one privilege on one object (catalog ``*``, namespace, table or view; a
  column when ``column_name`` is not empty) granted to a user, group or role.
- ``wharf_gov_owners``: who owns an object created by someone other than the lake owner.
- ``wharf_gov_functions``: policy functions (``CREATE FUNCTION … RETURN <expr>``).
- ``wharf_gov_row_filters`` / ``wharf_gov_masks``: the policies bound to tables and columns.
- ``wharf_gov_column_tags`` / ``wharf_gov_tag_policies``: classification tags on columns, and
  masking policies bound to a tag value (applied to every column carrying it).
- ``wharf_gov_version``: one row; its counter moves with every change above, so a policy cached
  for (principal, version) is never used after a change.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wharf_gov_groups",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "wharf_gov_members",
        sa.Column("group_name", sa.String(255), primary_key=True),
        sa.Column("member", sa.String(255), primary_key=True),
    )
    op.create_table(
        "wharf_gov_roles",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "wharf_gov_role_grants",
        sa.Column("role", sa.String(255), primary_key=True),
        sa.Column("grantee_kind", sa.String(16), primary_key=True),
        sa.Column("grantee", sa.String(255), primary_key=True),
        sa.Column("granted_by", sa.String(255), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "wharf_gov_grants",
        sa.Column("privilege", sa.String(16), primary_key=True),
        sa.Column("object_kind", sa.String(16), primary_key=True),
        sa.Column("object_name", sa.String(1000), primary_key=True),
        sa.Column("column_name", sa.String(255), primary_key=True),
        sa.Column("grantee_kind", sa.String(16), primary_key=True),
        sa.Column("grantee", sa.String(255), primary_key=True),
        sa.Column("granted_by", sa.String(255), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "wharf_gov_owners",
        sa.Column("object_kind", sa.String(16), primary_key=True),
        sa.Column("object_name", sa.String(1000), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
    )
    op.create_table(
        "wharf_gov_functions",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("returns", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "wharf_gov_row_filters",
        sa.Column("table_name", sa.String(1000), primary_key=True),
        sa.Column("function", sa.String(255), nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
    )
    op.create_table(
        "wharf_gov_masks",
        sa.Column("table_name", sa.String(1000), primary_key=True),
        sa.Column("column_name", sa.String(255), primary_key=True),
        sa.Column("function", sa.String(255), nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
    )
    op.create_table(
        "wharf_gov_column_tags",
        sa.Column("table_name", sa.String(1000), primary_key=True),
        sa.Column("column_name", sa.String(255), primary_key=True),
        sa.Column("tag", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(1000), nullable=False),
    )
    op.create_table(
        "wharf_gov_tag_policies",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.Column("value", sa.String(1000), nullable=False),
        sa.Column("function", sa.String(255), nullable=False),
        sa.Column("exempt", sa.Text, nullable=False),
    )
    op.create_table(
        "wharf_gov_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO wharf_gov_version (id, version) VALUES (1, 1)")


def downgrade() -> None:
    for name in (
        "wharf_gov_version",
        "wharf_gov_tag_policies",
        "wharf_gov_column_tags",
        "wharf_gov_masks",
        "wharf_gov_row_filters",
        "wharf_gov_functions",
        "wharf_gov_owners",
        "wharf_gov_grants",
        "wharf_gov_role_grants",
        "wharf_gov_roles",
        "wharf_gov_members",
        "wharf_gov_groups",
    ):
        op.drop_table(name)
