"""The authentication tables of the metadata database, as SQLAlchemy Core tables (created by migration 0004)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

principals = sa.Table(
    "wharf_principals",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),  # "user" | "service"
    sa.Column("password_hash", sa.Text),
    sa.Column("client_id", sa.String(64), unique=True),
    sa.Column("secret_hash", sa.String(128)),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("groups", sa.Text, nullable=False),  # JSON list of group names
    sa.Column("attributes", sa.Text, nullable=False),  # JSON object of string attributes
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
)

tokens = sa.Table(
    "wharf_tokens",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("principal_id", sa.String(64), sa.ForeignKey("wharf_principals.id"), nullable=False),
    sa.Column("label", sa.String(255)),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_at_ms", sa.BigInteger),
    sa.Column("revoked_at_ms", sa.BigInteger),
    sa.Column("last_used_at_ms", sa.BigInteger),
)

keys = sa.Table(
    "wharf_auth_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("retired_at_ms", sa.BigInteger),
)
