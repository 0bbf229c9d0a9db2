"""Identity federation: the identity-provider account behind each federated user.

- ``wharf_federated_identities``: (issuer, subject) of an OIDC token → the ``wharf_principals``
  row created at that account's first sign-in. Users are matched by this link, never by name,
  so a provider's user cannot take over a local account that happens to share a name.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wharf_federated_identities",
        sa.Column("issuer", sa.String(1000), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("principal_id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("wharf_federated_identities")
