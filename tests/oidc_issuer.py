"""A small, real OIDC issuer on loopback for the identity-federation tests.

Built on joserfc (the JOSE library of the Authlib project, which Authlib's own JOSE module is
moving to): it generates real RSA and EC keys, signs real JWTs, and serves over HTTP what a
provider such as Keycloak or Entra ID serves — the discovery document
(``/.well-known/openid-configuration``) and the JWKS (``/jwks``, public keys only). Its key can be
rotated (a new key signs, the old one stays published) and an old key retired (no longer
published), as providers rotate theirs. ``forge`` makes the tokens an attacker would send.

Nothing here is shared with the server's verifier (PyJWT): the two sides are independent
implementations, so a bug in one does not hide in the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

AUDIENCE = "wharf-server"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OidcIssuer:
    """An identity provider on ``127.0.0.1:<free port>``; ``stop()`` ends it."""

    def __init__(self) -> None:
        self.keys: list[Any] = [self._new_key("RS256")]  # the last one signs
        self.published: list[Any] = list(self.keys)
        self.jwks_requests = 0
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/.well-known/openid-configuration":
                    body = issuer.discovery()
                elif self.path == "/jwks":
                    with issuer._lock:
                        issuer.jwks_requests += 1
                    body = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, name="oidc-issuer", daemon=True)
        self._thread.start()

    @staticmethod
    def _new_key(alg: str) -> Any:
        parameters = {"kid": uuid.uuid4().hex[:12], "alg": alg, "use": "sig"}
        if alg.startswith("ES"):
            return ECKey.generate_key("P-256", parameters=parameters, private=True)
        return RSAKey.generate_key(2048, parameters=parameters, private=True)

    # --- what the provider serves ----------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks",
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self.keys}),
        }

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [k.as_dict(private=False) for k in self.published]}

    # --- keys --------------------------------------------------------------------------------

    @property
    def signing_key(self) -> Any:
        return self.keys[-1]

    def rotate(self, alg: str = "ES256") -> Any:
        """A new signing key, published beside the old ones (as providers do before they switch)."""
        key = self._new_key(alg)
        with self._lock:
            self.keys.append(key)
            self.published.append(key)
        return key

    def retire(self, key: Any) -> None:
        """Stop publishing ``key``: tokens it signed must stop working."""
        with self._lock:
            self.published = [k for k in self.published if k.kid != key.kid]

    # --- tokens ------------------------------------------------------------------------------

    def claims(self, user: str, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": f"sub-{user}",
            "preferred_username": user,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    def token(self, user: str, *, key: Any = None, **claims: Any) -> str:
        """An access token for ``user`` signed by the current key (or ``key``); ``claims`` override or add (None drops)."""
        key = key if key is not None else self.signing_key
        return jwt.encode({"alg": key.alg, "kid": key.kid, "typ": "JWT"}, self.claims(user, **claims), key)

    @staticmethod
    def forge(header: dict[str, Any], claims: dict[str, Any], *, hmac_secret: bytes | None = None) -> str:
        """A token an attacker makes by hand: unsigned (``alg: none``) or HMAC-signed with ``hmac_secret``."""
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        if hmac_secret is None:
            return signing_input + "."
        digest = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(digest)}"

    def public_pem(self) -> bytes:
        """The current key's public key as PEM: what an HS/RS confusion attack uses as the HMAC secret."""
        pem: bytes = self.signing_key.as_pem(private=False)
        return pem

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=30)


__all__ = ["AUDIENCE", "OidcIssuer"]
