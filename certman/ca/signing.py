"""What a signed ACME request carries: the JWS of RFC 8555 §6.2 and the nonces of §6.5.

certman signs through ``acme.jws`` and keeps its own nonce pool rather than the ``acme``
library's ``ClientNetwork``: that class drags in pyOpenSSL (about 3% of a whole
``certman issue``), and certman replaces its request policy anyway (see ``transport``).
"""

from __future__ import annotations

import threading

import requests
from acme import errors as acme_errors
from acme import jws
from josepy import errors as jose_errors
from josepy import interfaces, json_util, jwa, jwk

REPLAY_NONCE_HEADER = "Replay-Nonce"


class NoncePool:
    """Nonces taken from the CA's responses, each handed out at most once (RFC 8555 §6.5).

    Safe to share between threads. ``keep`` raises ``acme.errors.BadNonce`` for a
    Replay-Nonce that is not base64url, as the RFC requires the client to refuse it.
    """

    def __init__(self) -> None:
        self._nonces: list[bytes] = []
        self._lock = threading.Lock()

    def keep(self, response: requests.Response) -> bool:
        """Store the response's Replay-Nonce; False when it carried none."""
        value = response.headers.get(REPLAY_NONCE_HEADER)
        if value is None:
            return False
        try:
            nonce = json_util.decode_b64jose(value)
        except jose_errors.DeserializationError as error:
            raise acme_errors.BadNonce(value, error) from error
        with self._lock:
            self._nonces.append(nonce)
        return True

    def take(self) -> bytes | None:
        """A nonce never handed out before, or None when the pool is empty."""
        with self._lock:
            return self._nonces.pop() if self._nonces else None


def algorithm_for(key: jwk.JWK) -> jwa.JWASignature:
    """ES256 for an EC account key (certman makes P-256 ones), RS256 for RSA (§6.2)."""
    return jwa.ES256 if isinstance(key, jwk.JWKEC) else jwa.RS256


def signed_body(
    body: interfaces.JSONDeSerializable | None, *, key: jwk.JWK, nonce: bytes, url: str, kid: str | None
) -> str:
    """The flattened JWS of ``body`` for a POST to ``url`` (§6.2); None signs an empty payload (§6.3).

    ``kid`` is the account URL; without it the public key goes in the ``jwk`` header, as
    newAccount and revokeCert-by-certificate-key require.
    """
    payload = b"" if body is None else body.json_dumps().encode()
    signature = jws.JWS.sign(payload, key=key, alg=algorithm_for(key), nonce=nonce, url=url, kid=kid)
    return str(signature.json_dumps())
