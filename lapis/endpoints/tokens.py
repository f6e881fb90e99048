"""Short-lived scoring tokens of ``auth_mode: aml_token`` endpoints.

Azure gives such an endpoint no long-lived key a caller can use: callers ask
for a token (``get-credentials``), present it as ``Authorization: Bearer``,
and ask again before it expires. Lapis' tokens are stateless: the endpoint's
name and expiry, signed (HMAC-SHA256) with the endpoint's primary key, so the
data plane checks one without a database read, and regenerating the primary
key revokes every token issued before it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

PREFIX = "lapis-aml."
LIFETIME_S = 3600  # an hour; clients refresh after half of it
REFRESH_AFTER_S = LIFETIME_S // 2


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), (PREFIX + payload).encode(), hashlib.sha256).digest())


def issue(endpoint: str, secret: str, now: float | None = None) -> dict[str, object]:
    """A token for ``endpoint`` in the shape of Azure's token answer (times in epoch seconds)."""
    issued = int(now if now is not None else time.time())
    claims = {"ep": endpoint.lower(), "iat": issued, "exp": issued + LIFETIME_S}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return {
        "accessToken": f"{PREFIX}{payload}.{_sign(secret, payload)}",
        "tokenType": "Bearer",
        "expiryTimeUtc": issued + LIFETIME_S,
        "refreshAfterTimeUtc": issued + REFRESH_AFTER_S,
    }


def verify(token: bytes, endpoint: str, secret: str, now: float | None = None) -> bool:
    """Whether ``token`` was signed with ``secret`` for ``endpoint`` and has not expired."""
    try:
        text = token.decode("ascii")
    except UnicodeDecodeError:
        return False
    if not text.startswith(PREFIX):
        return False
    payload, _, signature = text[len(PREFIX) :].partition(".")
    if not payload or not hmac.compare_digest(signature, _sign(secret, payload)):
        return False
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        expires, name = int(claims["exp"]), str(claims["ep"])
    except (ValueError, KeyError, TypeError):
        return False
    current = now if now is not None else time.time()
    return name == endpoint.lower() and current < expires
