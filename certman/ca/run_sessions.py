"""One ACME session per CA for a whole renew run, shared by all its jobs.

A run over N certificates used to open N sessions: N directory fetches (RFC 8555 §7.1.1),
N account loads, N connection pools and N nonce pools, each starting empty and so costing
a newNonce round trip (§7.2). ``RunSessions`` opens one per (directory URL, CA bundle,
account) and hands each certificate a copy of it. The copy shares the transport: the
``requests`` connection pool, sized to the run's jobs so that every job keeps its
connection alive, the nonce pool (every response's nonce goes in, none comes out twice:
``signing.NoncePool``), the signing key and the account URL. It does not share what one
certificate sets on its session (the preferred chain). ARI lookups (RFC 9773) use the
same session, and a rate limit pauses all of its jobs (``rate_pause``).

Deadlines stay per certificate. The shared transport has none of its own
(``timeout=inf``); each request is bounded by the deadline of the certificate whose
thread sends it (``certman.ca.deadline``, a context variable), so one certificate's
deadline never cuts another's request.

A session is reused only while the keystore still holds the account it signs with. After
an account recovery (``certman.ca.recovery``) or a key rollover replaced it, the next
certificate opens a new one.
"""

from __future__ import annotations

import copy
import logging
import math
import threading

import msgspec
import requests

from ..errors import CertmanError
from ..keystore import AccountRecord, FileKeystore, ca_id
from .accounts import AccountSettings, account_jwk, open_session
from .rate_pause import PausingAdapter
from .session import REQUEST_TIMEOUT, AcmeSession

log = logging.getLogger(__name__)

# (directory URL, CA bundle path, keystore account id)
SessionKey = tuple[str, str | None, str]


class _Opened(msgspec.Struct, frozen=True):
    session: AcmeSession
    # The stored account it signs with: its key file's PEM and its URL.
    key_pem: bytes | None
    uri: str | None


class RunSessions:
    """The ACME sessions of one run, at most one per CA and account; safe to share between threads.

    ``jobs`` is how many certificates the run works on at once: the size of each
    session's connection pool. Sessions are opened on first use, each under a lock of its
    own, so that the run's first jobs wait for one directory fetch rather than each
    making their own.
    """

    def __init__(self, keystore: FileKeystore, *, jobs: int) -> None:
        self.keystore = keystore
        self.jobs = max(1, jobs)
        self._opened: dict[SessionKey, _Opened] = {}
        # CAs whose directory could not be fetched for an ARI lookup: asked once per run.
        self._unreachable: set[SessionKey] = set()
        self._locks: dict[SessionKey, threading.Lock] = {}
        self._lock = threading.Lock()

    def issuing(
        self,
        directory_url: str,
        account: AccountSettings,
        *,
        ca_bundle: str | None,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> AcmeSession:
        """A copy of the run's session at ``directory_url``, signed by the stored account
        (registered on first use, as ``accounts.open_session`` does).

        ``request_timeout`` bounds each request (seconds). Raises what ``open_session``
        raises: ``UsageError``, ``ACMEError``, ``CAUnreachable``.
        """
        key = (directory_url, ca_bundle, ca_id(directory_url))
        with self._lock_of(key):
            session = self._current(key)
            if session is None:
                before = self.keystore.load_account(key[2])
                session = open_session(
                    directory_url,
                    self.keystore,
                    account,
                    ca_bundle=ca_bundle,
                    timeout=math.inf,
                    request_timeout=request_timeout,
                    http=self._pool(),
                )
                # A first registration is stored under the keystore lock, no other run
                # can replace it meanwhile: what is stored now is what it signs with.
                stored = before or self.keystore.load_account(key[2])
                self._opened[key] = _Opened(session, *_signing(stored))
            return copy.copy(session)

    def for_renewal_info(self, directory_url: str, ca_bundle: str | None) -> AcmeSession | None:
        """The run's session at ``directory_url`` for renewalInfo GETs, opened with the
        stored account if none is yet; None when no account is stored (nothing is
        registered for a lookup) or the CA cannot be reached (logged, once per run).

        Raises ``KeystoreError`` for a stored account key that does not load.
        """
        key = (directory_url, ca_bundle, ca_id(directory_url))
        with self._lock_of(key):
            session = self._current(key)
            if session is not None or key in self._unreachable:
                return session
            stored = self.keystore.load_account(key[2])
            if stored is None:
                return None
            # A damaged key file fails the certificate naming it, not as an unreachable CA.
            signing_key = account_jwk(stored[0], self.keystore.layout.account_key(key[2]))
            try:
                session = AcmeSession(
                    directory_url, signing_key, ca_bundle=ca_bundle, timeout=math.inf, http=self._pool()
                )
            except CertmanError as exc:
                log.warning("cannot reach %s for renewal information: %s", directory_url, exc)
                self._unreachable.add(key)
                return None
            session.use_account(stored[1].uri)
            self._opened[key] = _Opened(session, *_signing(stored))
            return session

    def _current(self, key: SessionKey) -> AcmeSession | None:
        """The opened session, while the keystore still holds the account it signs with."""
        opened = self._opened.get(key)
        if opened is None:
            return None
        if _signing(self.keystore.load_account(key[2])) != (opened.key_pem, opened.uri):
            return None
        if self.keystore.load_pending_account_key(key[2]) is not None:
            return None  # a rollover died half-way: open_session settles it
        return opened.session

    def _lock_of(self, key: SessionKey) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def _pool(self) -> requests.Session:
        """A ``requests.Session`` that keeps up to ``jobs`` connections per host alive
        (requests' default keeps 10 and closes any beyond them), and pauses every job
        after a rate-limited answer (``rate_pause``)."""
        http = requests.Session()
        http.mount("https://", PausingAdapter(pool_maxsize=self.jobs))
        return http


def _signing(stored: tuple[bytes, AccountRecord] | None) -> tuple[bytes | None, str | None]:
    return (None, None) if stored is None else (stored[0], stored[1].uri)
