"""The governance tables of the metadata database, as SQLAlchemy Core tables (created by migration 0006)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

groups = sa.Table(
    "wharf_gov_groups",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)

members = sa.Table(
    "wharf_gov_members",
    metadata,
    sa.Column("group_name", sa.String(255), primary_key=True),
    sa.Column("member", sa.String(255), primary_key=True),
)

roles = sa.Table(
    "wharf_gov_roles",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)

role_grants = sa.Table(
    "wharf_gov_role_grants",
    metadata,
    sa.Column("role", sa.String(255), primary_key=True),
    sa.Column("grantee_kind", sa.String(16), primary_key=True),  # user | group | role
    sa.Column("grantee", sa.String(255), primary_key=True),
    sa.Column("granted_by", sa.String(255), nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)

grants = sa.Table(
    "wharf_gov_grants",
    metadata,
    sa.Column("privilege", sa.String(16), primary_key=True),
    sa.Column("object_kind", sa.String(16), primary_key=True),  # catalog | namespace | table
    sa.Column("object_name", sa.String(1000), primary_key=True),  # '*' | 'db' | 'db.t' (lower case)
    sa.Column("column_name", sa.String(255), primary_key=True),  # '' for the whole object
    sa.Column("grantee_kind", sa.String(16), primary_key=True),
    sa.Column("grantee", sa.String(255), primary_key=True),
    sa.Column("granted_by", sa.String(255), nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)

owners = sa.Table(
    "wharf_gov_owners",
    metadata,
    sa.Column("object_kind", sa.String(16), primary_key=True),
    sa.Column("object_name", sa.String(1000), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
)

functions = sa.Table(
    "wharf_gov_functions",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("parameters", sa.Text, nullable=False),  # JSON [[name, type], …]
    sa.Column("returns", sa.String(255), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)

row_filters = sa.Table(
    "wharf_gov_row_filters",
    metadata,
    sa.Column("table_name", sa.String(1000), primary_key=True),
    sa.Column("function", sa.String(255), nullable=False),
    sa.Column("columns", sa.Text, nullable=False),  # JSON list: the columns passed to the function
)

masks = sa.Table(
    "wharf_gov_masks",
    metadata,
    sa.Column("table_name", sa.String(1000), primary_key=True),
    sa.Column("column_name", sa.String(255), primary_key=True),
    sa.Column("function", sa.String(255), nullable=False),
    sa.Column("columns", sa.Text, nullable=False),  # JSON list: further columns passed after the masked one
)

column_tags = sa.Table(
    "wharf_gov_column_tags",
    metadata,
    sa.Column("table_name", sa.String(1000), primary_key=True),
    sa.Column("column_name", sa.String(255), primary_key=True),
    sa.Column("tag", sa.String(255), primary_key=True),
    sa.Column("value", sa.String(1000), nullable=False),
)

tag_policies = sa.Table(
    "wharf_gov_tag_policies",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("tag", sa.String(255), nullable=False),
    sa.Column("value", sa.String(1000), nullable=False),
    sa.Column("function", sa.String(255), nullable=False),
    sa.Column("exempt", sa.Text, nullable=False),  # JSON [[kind, name], …]: who sees the real value
)

version = sa.Table(
    "wharf_gov_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# --- access requests (migration 0007) ---------------------------------------------------------

grants.append_column(sa.Column("expires_at_ms", sa.BigInteger, nullable=True))  # NULL: never expires
grants.append_column(sa.Column("request_id", sa.Integer, nullable=True))  # the access request it came from
grants.append_column(sa.Column("idle_ms", sa.BigInteger, nullable=True))  # lapses this long after its last use
grants.append_column(sa.Column("last_used_ms", sa.BigInteger, nullable=True))

access_requests = sa.Table(
    "wharf_gov_access_requests",
    metadata,
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
    sa.Column("rule", sa.String(255), nullable=True),
)

approvers = sa.Table(
    "wharf_gov_approvers",
    metadata,
    sa.Column("object_kind", sa.String(16), primary_key=True),  # table | namespace
    sa.Column("object_name", sa.String(1000), primary_key=True),
    sa.Column("grantee_kind", sa.String(16), primary_key=True),  # user | group | role
    sa.Column("grantee", sa.String(255), primary_key=True),
)

object_tags = sa.Table(
    "wharf_gov_object_tags",
    metadata,
    sa.Column("object_kind", sa.String(16), primary_key=True),  # table | namespace
    sa.Column("object_name", sa.String(1000), primary_key=True),
    sa.Column("tag", sa.String(255), primary_key=True),
    sa.Column("value", sa.String(1000), nullable=False),
)

access_rules = sa.Table(
    "wharf_gov_access_rules",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("grantee_kind", sa.String(16), nullable=False),
    sa.Column("grantee", sa.String(255), nullable=False),
    sa.Column("privileges", sa.Text, nullable=False),  # JSON list
    sa.Column("object_kind", sa.String(16), nullable=False),  # tag | table | namespace
    sa.Column("object_name", sa.String(1000), nullable=False),
    sa.Column("tag_value", sa.String(1000), nullable=True),
    sa.Column("max_duration_ms", sa.BigInteger, nullable=False),
    sa.Column("without_approval", sa.Boolean, nullable=False),
    sa.Column("idle_ms", sa.BigInteger, nullable=True),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)

webhooks = sa.Table(
    "wharf_gov_webhooks",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(1000), nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)

# Identity federation (migration 0008): which identity-provider account (issuer, subject) a user is.
federated_identities = sa.Table(
    "wharf_federated_identities",
    metadata,
    sa.Column("issuer", sa.String(1000), primary_key=True),
    sa.Column("subject", sa.String(255), primary_key=True),
    sa.Column("principal_id", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)
