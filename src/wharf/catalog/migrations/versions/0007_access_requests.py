"""Access requests: time-bound grants, approvers, object tags, self-service rules, webhooks.

- ``wharf_gov_grants`` gains ``expires_at_ms`` (NULL: never; a grant past it is ignored at query
  time), ``request_id`` (the access request it came from), ``idle_ms`` (a rule's "revoke when
  unused for N days": the grant lapses ``idle_ms`` after its last use) and ``last_used_ms``.
- ``wharf_gov_access_requests``: one request for a privilege on a table, its status (pending,
  approved, denied) and decision.
- ``wharf_gov_approvers``: groups or users who may decide requests on a table or namespace (the
  object's owner always may).
- ``wharf_gov_object_tags``: tags on tables and namespaces (column tags are in
  ``wharf_gov_column_tags``); access rules select tables by them.
- ``wharf_gov_access_rules``: self-service rules (``CREATE ACCESS RULE``).
- ``wharf_gov_webhooks``: where notifications of requests and decisions are posted.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wharf_gov_grants") as batch:
        batch.add_column(sa.Column("expires_at_ms", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("request_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("idle_ms", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("last_used_ms", sa.BigInteger, nullable=True))
    op.create_table(
        "wharf_gov_access_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("privilege", sa.String(16), nullable=False),
        sa.Column("object_kind", sa.String(16), nullable=False),
        sa.Column("object_name", sa.String(1000), nullable=False),
        sa.Column("duration_ms", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # pending | approved | denied
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("decided_at_ms", sa.BigInteger, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("granted_ms", sa.BigInteger, nullable=True),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=True),
        sa.Column("rule", sa.String(255), nullable=True),  # the access rule that approved it
    )
    op.create_index("ix_wharf_gov_access_requests_status", "wharf_gov_access_requests", ["status"])
    op.create_table(
        "wharf_gov_approvers",
        sa.Column("object_kind", sa.String(16), primary_key=True),
        sa.Column("object_name", sa.String(1000), primary_key=True),
        sa.Column("grantee_kind", sa.String(16), primary_key=True),
        sa.Column("grantee", sa.String(255), primary_key=True),
    )
    op.create_table(
        "wharf_gov_object_tags",
        sa.Column("object_kind", sa.String(16), primary_key=True),
        sa.Column("object_name", sa.String(1000), primary_key=True),
        sa.Column("tag", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(1000), nullable=False),
    )
    op.create_table(
        "wharf_gov_access_rules",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("grantee_kind", sa.String(16), nullable=False),
        sa.Column("grantee", sa.String(255), nullable=False),
        sa.Column("privileges", sa.Text, nullable=False),  # JSON list
        sa.Column("object_kind", sa.String(16), nullable=False),  # tag | table | namespace
        sa.Column("object_name", sa.String(1000), nullable=False),  # the tag name, or the object
        sa.Column("tag_value", sa.String(1000), nullable=True),
        sa.Column("max_duration_ms", sa.BigInteger, nullable=False),
        sa.Column("without_approval", sa.Boolean, nullable=False),
        sa.Column("idle_ms", sa.BigInteger, nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "wharf_gov_webhooks",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(1000), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("wharf_gov_webhooks", "wharf_gov_access_rules", "wharf_gov_object_tags", "wharf_gov_approvers"):
        op.drop_table(name)
    op.drop_index("ix_wharf_gov_access_requests_status", "wharf_gov_access_requests")
    op.drop_table("wharf_gov_access_requests")
    with op.batch_alter_table("wharf_gov_grants") as batch:
        for column in ("last_used_ms", "idle_ms", "request_id", "expires_at_ms"):
            batch.drop_column(column)
