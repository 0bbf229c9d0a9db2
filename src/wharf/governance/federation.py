"""Users from an identity provider: created at their first sign-in, their groups and attributes kept in step.

``Federation.sign_in(token)`` is what the server calls for an OIDC bearer token: the token is
verified (``wharf.auth.oidc``), then the provider's account (issuer, subject) is looked up in
``wharf_federated_identities``:

- known: its user is the principal; a disabled user is refused at once, like a local one;
- unknown: a user is created (``username_prefix`` + the username claim) and linked. An existing
  user of that name is taken over only when it has no credentials of its own (no password, no
  personal access token, no link): a placeholder an admin made with ``CREATE USER`` to grant to
  before the first sign-in. A user with credentials, a service principal, another account's
  user, or the lake owner's name is refused (401): the provider must not become someone else.

Groups come from the token on every request: a principal's groups are the token's (the
mechanism governance already has for "groups named by an identity provider"), so a grant to a
group, a role granted to a group (``MAP GROUP 'Sales Analysts' TO ROLE analyst``) and
``is_member('Sales Analysts')`` follow the provider. The user's stored groups and mapped
attributes are rewritten when they differ from the token's, in one governance change (so the
policy version moves and nothing cached under the old attributes is served); in the steady state
a request costs one indexed read and no write.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from wharf.auth.oidc import FederatedIdentity, OidcConfig, OidcVerifier
from wharf.auth.service import USER, check_name
from wharf.auth.tables import principals, tokens
from wharf.errors import AuthenticationError, InvalidArgument
from wharf.governance import tables as t
from wharf.governance.principals import insert_user
from wharf.governance.store import GovernanceStore, now_ms
from wharf.principal import Principal

if TYPE_CHECKING:
    from wharf.catalog import LakeCatalog
    from wharf.lakehouse import Lakehouse

_LINKED = (
    sa.select(principals.c.id, principals.c.name, principals.c.disabled, principals.c.groups, principals.c.attributes)
    .select_from(t.federated_identities.join(principals, principals.c.id == t.federated_identities.c.principal_id))
    .where(t.federated_identities.c.issuer == sa.bindparam("issuer"), t.federated_identities.c.subject == sa.bindparam("subject"))
)


class Federation:
    """Signs in one identity provider's users to one lake."""

    def __init__(self, store: GovernanceStore, verifier: OidcVerifier, catalog: LakeCatalog | None = None) -> None:
        self.store = store
        self.verifier = verifier
        self.catalog = catalog  # where first sign-ins are audited (refused tokens: the server's request record)

    @classmethod
    def for_lake(cls, lake: Lakehouse, config: OidcConfig) -> Federation:
        from wharf.governance.store import store_for

        return cls(store_for(lake.catalog, lake.owner), OidcVerifier(config), lake.catalog)

    def sign_in(self, token: str) -> Principal:
        """The principal of a provider's token, creating or updating its user; ``AuthenticationError`` (401) otherwise."""
        identity = self.verifier.identity(self.verifier.verify(token))
        with self.store.engine.connect() as conn:
            row = conn.execute(_LINKED, {"issuer": identity.issuer, "subject": identity.subject}).first()
        if row is None:
            row = self._first_sign_in(identity)
        if row.disabled:
            raise AuthenticationError("user is disabled")
        groups = sorted(identity.groups)
        attributes = _merged(json.loads(row.attributes), identity)
        if json.loads(row.groups) != groups or json.loads(row.attributes) != attributes:
            self._update(row.id, groups, attributes)
        return Principal(row.name, kind=USER, groups=identity.groups)

    def _first_sign_in(self, identity: FederatedIdentity) -> Any:
        name = identity.name
        try:
            check_name(name)
        except InvalidArgument:
            raise AuthenticationError(
                "the identity provider's user name is not usable as a Wharf user name",
                hint="set oidc_username_claim to a claim of letters, digits and . _ @ + - (e.g. preferred_username or email)",
            ) from None
        if name == self.store.owner:
            raise AuthenticationError(
                "the identity provider's user name is the lake owner's",
                hint="set oidc_username_prefix so provider users get names of their own",
            )

        def link(conn: Connection) -> None:
            existing = conn.execute(sa.select(principals).where(principals.c.name == name)).first()
            if existing is None:
                principal_id = insert_user(conn, name)
            elif _is_placeholder(conn, existing):
                principal_id = existing.id
            else:
                raise AuthenticationError(
                    "the identity provider's user name belongs to another account",
                    hint="set oidc_username_prefix, or have an admin rename or drop the local user",
                )
            conn.execute(
                t.federated_identities.insert().values(
                    issuer=identity.issuer, subject=identity.subject, principal_id=principal_id, created_at_ms=now_ms()
                )
            )

        try:
            self.store.run(link)
        except IntegrityError:
            pass  # the same account signed in at the same moment elsewhere: its link is there now
        with self.store.engine.connect() as conn:
            row = conn.execute(_LINKED, {"issuer": identity.issuer, "subject": identity.subject}).first()
        if row is None:  # pragma: no cover - the insert failed for another reason than a concurrent one
            raise AuthenticationError("the user could not be created", hint="retry")
        if self.catalog is not None:
            from wharf.governance.audit import record_decision

            record_decision(
                self.catalog,
                principal=row.name,
                kind="authentication",
                operation="oidc.first_sign_in",
                decision="allowed",
                detail={"issuer": identity.issuer, "subject": identity.subject},
            )
        return row

    def _update(self, principal_id: str, groups: list[str], attributes: dict[str, str]) -> None:
        def run(conn: Connection) -> None:
            conn.execute(
                principals.update()
                .where(principals.c.id == principal_id)
                .values(
                    groups=json.dumps(groups),
                    attributes=json.dumps(attributes, sort_keys=True),
                    updated_at_ms=now_ms(),
                )
            )

        self.store.run(run)


def _merged(current: dict[str, str], identity: FederatedIdentity) -> dict[str, str]:
    """The stored attributes with the mapped ones replaced by the token's (an absent claim removes its attribute)."""
    merged = dict(current)
    for attribute, value in identity.attributes.items():
        if value is None:
            merged.pop(attribute, None)
        else:
            merged[attribute] = value
    return dict(sorted(merged.items()))


def _is_placeholder(conn: Connection, row: Any) -> bool:
    """A user with no way to sign in of its own and no provider account yet: made to be granted to."""
    if row.kind != USER or row.password_hash is not None or row.client_id is not None:
        return False
    has_token = conn.execute(sa.select(tokens.c.id).where(tokens.c.principal_id == row.id).limit(1)).first()
    linked = conn.execute(
        sa.select(t.federated_identities.c.subject).where(t.federated_identities.c.principal_id == row.id)
    ).first()
    return has_token is None and linked is None


__all__ = ["Federation"]
