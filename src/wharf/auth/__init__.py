"""Authentication for a served lake: users, personal access tokens, service principals, signed tokens.

::

    service.py     AuthService: identities, tokens, verify_bearer / issue_token / authenticate_password
    hashing.py     argon2 for passwords, SHA-256 + constant-time compare for generated secrets
    signing.py     JWT signing keys in the metadata database, rotation
    tables.py      the tables (migration 0004)
    rate_limit.py  token buckets for the token endpoint
    redaction.py   a logging filter that keeps credentials out of logs
    lake_auth.py   ``lake.auth``: the same operations from Python, owner-checked
    commands.py    ``wharf users | tokens | principals | auth``

Nothing here depends on the HTTP framework: the server calls ``verify_authorization`` (or
``verify_bearer``) per request and ``issue_token`` at its OAuth endpoint.
"""

from wharf.auth.lake_auth import LakeAuth, parse_duration, service_for
from wharf.auth.rate_limit import TokenBucketLimiter
from wharf.auth.redaction import RedactSecrets, install_redaction, redact
from wharf.auth.service import Account, AuthService, NewToken, ServiceCredentials, TokenInfo

__all__ = [
    "Account",
    "AuthService",
    "LakeAuth",
    "NewToken",
    "RedactSecrets",
    "ServiceCredentials",
    "TokenBucketLimiter",
    "TokenInfo",
    "install_redaction",
    "parse_duration",
    "redact",
    "service_for",
]
