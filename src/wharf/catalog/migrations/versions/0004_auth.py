"""Authentication for a served lake: principals (users and service principals), access tokens, signing keys.

- ``wharf_principals``: one row per identity, users (argon2 password hash, optional) and service
  principals (client id + SHA-256 of the client secret). ``version`` is bumped whenever the
  principal's existing tokens must stop working (disabled, secret rotated, password changed):
  every signed token carries the version it was issued at.
- ``wharf_tokens``: personal access tokens, stored as the SHA-256 of their secret part.
- ``wharf_auth_keys``: the keys that sign Wharf's JWTs; the newest unretired one signs, retired
  ones still verify the tokens they signed until those expire.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wharf_principals",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True, unique=True),
        sa.Column("secret_hash", sa.String(128), nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False, default=False),
        sa.Column("version", sa.Integer, nullable=False, default=1),
        sa.Column("groups", sa.Text, nullable=False, default="[]"),
        sa.Column("attributes", sa.Text, nullable=False, default="{}"),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "wharf_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("principal_id", sa.String(64), sa.ForeignKey("wharf_principals.id"), nullable=False, index=True),
        sa.Column("label", sa.String(255), nullable=True),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=True),
        sa.Column("revoked_at_ms", sa.BigInteger, nullable=True),
        sa.Column("last_used_at_ms", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "wharf_auth_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("retired_at_ms", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("wharf_tokens")
    op.drop_table("wharf_auth_keys")
    op.drop_table("wharf_principals")
