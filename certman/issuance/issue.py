"""The issuance story: lock, re-check, each CA in turn, store, unlock, deploy.

issue(spec, keystore)
  -> obtain: lock the certificate
     -> re-check: another run may have stored it while we waited (then done)
     -> for each CA of the spec, in order, until one issues (``fallback``):
        open the session (register the account on first use per CA)
        -> new key and CSR -> newOrder
        -> skip valid authorizations; present the rest per solver; wait; answer; poll
        -> cleanup (always) -> finalize -> download -> check -> store (atomic)
     -> unlock
  -> deploy: run the reloaders, verify the proxies -> IssueResult (with the deploy outcome)
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import msgspec
from acme import messages
from cryptography.hazmat.primitives.serialization import Encoding

from ..ca.accounts import AccountSettings, CAEndpoint, open_session
from ..ca.deadline import certificate_deadline
from ..ca.recovery import with_account_recovery
from ..ca.run_sessions import RunSessions
from ..ca.session import REQUEST_TIMEOUT, AcmeSession
from ..config import CertSpec
from ..deploy.outcome import DeployResult, not_deployed
from ..errors import ACMEError, KeystoreError
from ..keys import CertFacts, generate_key, key_to_pem, load_key, make_csr, public_keys_match, split_pem_chain
from ..keystore import FileKeystore, LivePaths, RenewalState, VersionMeta
from ..keystore.keyfiles import ORDER_HINT, check_private_key
from ..keystore.live_links import LiveRepair
from ..keystore.outcomes import after_success, redeploy_repaired
from ..keystore.past_commit import already_live, pending_order_left, state_left
from ..keystore.records import IndexEntry
from ..keystore.times import Clock, archive_stamp, utc_now
from ..recording import recorded_spec
from ..solvers import Solver
from ..solvers.shared import Rendezvous
from . import fallback, resume
from .challenges import solve
from .preflight import preflight

log = logging.getLogger(__name__)


class IssueResult(msgspec.Struct, frozen=True):
    name: str
    version: str
    serial: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    issuer: str
    identifiers: tuple[str, ...]
    live: LivePaths
    reused_authorizations: int
    # What the reloaders did with it; empty when the spec has none (or from ``obtain``).
    deploy: DeployResult = msgspec.field(default_factory=lambda: DeployResult({}))
    # live/<name> put back before issuing: it was a directory, a file or missing.
    repaired: tuple[LiveRepair, ...] = ()

    def raise_for_deploy(self) -> None:
        """Raise ``ReloadError`` (exit 6) if the certificate is stored but its proxy did not take it."""
        error = not_deployed(self.name, self.deploy)
        if error is not None:
            raise error


def issue(
    spec: CertSpec,
    keystore: FileKeystore,
    *,
    account: AccountSettings = AccountSettings(),
    timeout: float = 90.0,
    clock: Clock = utc_now,
    replaces: str | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
    deploy_timeout: float = 120.0,
) -> IssueResult:
    """What `certman issue` does: ``obtain`` the certificate, then run its reloaders.

    ``timeout`` (seconds) bounds everything the certificate does at a CA (see
    ``obtain``), ``deploy_timeout`` (seconds) each reloader call. A failed reload or
    verification does not raise: the certificate is stored, ``result.deploy`` says what
    failed, the state marks the deploy pending for the next `certman renew`, and
    ``result.raise_for_deploy()`` raises ``ReloadError`` (exit 6).
    Raises what ``obtain`` raises.
    """
    spec = recorded_spec(spec)
    result = obtain(
        spec,
        keystore,
        account=account,
        timeout=timeout,
        clock=clock,
        replaces=replaces,
        request_timeout=request_timeout,
    )
    if not spec.reloaders:
        return result
    # Deferred: a certificate without reloaders loads no proxy code.
    from ..deploy.batch import deploy_issued

    return msgspec.structs.replace(
        result, deploy=deploy_issued(keystore, spec, result.serial, timeout=deploy_timeout, clock=clock)
    )


def obtain(
    spec: CertSpec,
    keystore: FileKeystore,
    *,
    account: AccountSettings = AccountSettings(),
    timeout: float = 90.0,
    clock: Clock = utc_now,
    replaces: str | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
    sessions: RunSessions | None = None,
    entry: IndexEntry | None | Literal["read"] = "read",
    solvers: list[Solver] | None = None,
) -> IssueResult:
    """Obtain a certificate for ``spec`` and make it the live version in ``keystore``; no reload.

    Under the certificate lock: re-check whether another run stored it meanwhile, then
    try each CA of ``spec`` in order (``fallback.first_that_issues``) until one issues,
    as certmagic's obtain does. ``timeout`` (seconds) is one deadline for everything the
    certificate does at a CA: directory, account (and its recovery), order, polling,
    download (``certman.ca.deadline``); inside a renewal, the renewal's earlier deadline
    holds, which its ARI check shares. Each fallback CA gets a deadline of its own. ``replaces`` is the
    ARI CertID of the certificate this one renews (RFC 9773 §5), sent only to the CA that
    issued it. Raises ``ACMEError`` (every CA failed), ``SolverError``, ``UsageError``,
    ``KeystoreError``. The spec is recorded with absolute paths and resolved programs
    (``certman.recording``) before anything is ordered. A ``live/<name>`` that is a
    directory, a file or missing is put back first (``result.repaired``; see
    ``FileKeystore.repair_live``). A solver that serves a port (standalone, tls-alpn-01)
    shares it with the other orders in flight on the keystore; a port held by anything
    else is a SolverError once an authorization needs it. Everything that can be checked
    locally is checked before the first request to a CA (``preflight``). ``sessions`` are
    a renew run's ACME sessions, shared with its other certificates (``certman.ca.run_sessions``);
    without them this call opens a session of its own at each CA it tries. ``entry`` is the
    certificate's index entry if the caller read it (a renew run's plan; None: not stored),
    or ``"read"``: read it here (the whole index, O(N) in stored certificates). ``solvers`` are
    the ones a ``preflight`` of ``spec`` the caller ran just before built (a renew run checks
    before its ARI request); None: the preflight runs here.
    """
    spec, solvers = checked_locally(spec, keystore, solvers)
    stored = keystore.read_index().get(spec.name) if entry == "read" else entry
    known = [spec.name] if stored is not None else []
    repaired = tuple(keystore.repair_live(known, archive_stamp(clock())))
    # Should this issuance fail, the next renew still reloads the proxy onto the restored files.
    redeploy_repaired(keystore, repaired)
    seen = keystore.live_version(spec.name)
    with keystore.lock_cert(spec.name):
        done = done_while_waiting(spec, keystore, seen)
        if done is None:

            def attempt(at_ca: CertSpec, replacing: str | None) -> IssueResult:
                # One deadline for all the certificate does at this CA, account recovery
                # included; a fallback CA (not the spec's first) starts one of its own.
                with certificate_deadline(timeout, fresh=at_ca is not spec):
                    return with_account_recovery(
                        lambda: _order_and_store(
                            at_ca, keystore, solvers, account, timeout, clock, replacing, request_timeout, sessions
                        ),
                        keystore,
                        CAEndpoint(at_ca.directory_url, at_ca.ca_bundle, timeout),
                        account,
                        clock=clock,
                    )

            issued_by = stored.server if stored is not None else None
            done = fallback.first_that_issues(spec, keystore, attempt, replaces, issued_by)
    return msgspec.structs.replace(done, repaired=repaired)


def _order_and_store(
    spec: CertSpec,
    keystore: FileKeystore,
    solvers: list[Solver],
    account: AccountSettings,
    timeout: float,
    clock: Clock,
    replaces: str | None,
    request_timeout: float,
    sessions: RunSessions | None,
) -> IssueResult:
    """One CA's attempt; the caller holds the certificate lock."""
    if sessions is None:
        session = open_session(
            spec.directory_url,
            keystore,
            account,
            ca_bundle=spec.ca_bundle,
            timeout=timeout,
            request_timeout=request_timeout,
        )
    else:
        session = sessions.issuing(
            spec.directory_url, account, ca_bundle=spec.ca_bundle, request_timeout=request_timeout
        )
    session.prefer_chain(spec.preferred_chain)
    resumed = resume.continue_pending(session, spec, keystore)
    if resumed is not None:
        result, key_pem = resumed
        reused = len(spec.identifiers)
    else:
        key = generate_key(spec.key_type)
        csr = make_csr(key, spec.identifiers)
        order = new_order(session, spec, csr, replaces, committed_elsewhere=keystore.committed_elsewhere)
        reused = solve(session, spec, solvers, order)
        key_pem = key_to_pem(key)
        resume.remember(keystore, spec, order.uri, key_pem, clock())
        result = resume.finish(keystore, spec, lambda: session.finalize(order))
    try:
        leaf_pem, chain_pem, facts = check_issued(spec, key_pem, result.fullchain_pem)
    except ACMEError:
        keystore.clear_pending_order(spec.name)
        raise
    issued_at = clock()
    meta = VersionMeta.of(
        facts, issued_at=issued_at, order_url=result.order_url, renew_before_days=spec.renew_before_days
    )
    stored = keystore.store_version(spec, key_pem, leaf_pem, chain_pem, meta)
    live_link = keystore.layout.live_link(spec.name)
    with past_commit_errors(
        spec.name, stored.version, live_link, pending_order_left(keystore.layout.cert_dir(spec.name))
    ):
        keystore.clear_pending_order(spec.name)
    # Whichever command issued it, the certificate is fine again: no backoff, no old error.
    # A certificate renewal never touched keeps having no state.json.
    with past_commit_errors(spec.name, stored.version, live_link, state_left(keystore.layout.state(spec.name))):
        state = keystore.read_state(spec.name)
        if state != RenewalState():
            keystore.write_state(
                spec.name, after_success(state, issued_at, serial=facts.serial, reloaders=bool(spec.reloaders))
            )
    log.info("stored %s version %s (serial %s)", spec.name, stored.version, facts.serial)
    return IssueResult(
        name=spec.name,
        version=stored.version,
        serial=facts.serial,
        not_before=facts.not_before,
        not_after=facts.not_after,
        issuer=facts.issuer,
        identifiers=facts.identifiers,
        live=keystore.live(spec.name),
        reused_authorizations=reused,
    )


def checked_locally(
    spec: CertSpec, keystore: FileKeystore, solvers: list[Solver] | None = None
) -> tuple[CertSpec, list[Solver]]:
    """``spec`` as recorded and its solvers, after every check that needs no CA: ``preflight``
    (unless the caller ran it and passes its ``solvers``), then the state file and any pending
    order's key, so a corrupt one fails (exit 3) before the first request. Shared by
    ``obtain`` and the dry run."""
    spec = recorded_spec(spec)
    if solvers is None:
        rendezvous = Rendezvous.under(keystore.root, timeout=keystore.lock_timeout)
        solvers = preflight(spec, rendezvous=rendezvous, board=keystore.token_board)
    keystore.read_state(spec.name)
    pending = keystore.read_pending_order(spec.name)
    if pending is not None:
        check_private_key(pending.key_pem, keystore.layout.order_key(spec.name), ORDER_HINT)
    return spec, solvers


def done_while_waiting(spec: CertSpec, keystore: FileKeystore, seen: str | None) -> IssueResult | None:
    """The version another run stored for the same names while we waited for the lock, if any.

    Lock, re-check, work: two runs started together must not both order a certificate.
    """
    current = keystore.live_version(spec.name)
    if current is None or current == seen:
        return None
    entry = keystore.read_index().get(spec.name)
    if entry is None or set(entry.identifiers) != {i.value for i in spec.identifiers}:
        return None
    log.info("%s: another run stored version %s while this one waited; nothing to do", spec.name, current)
    return IssueResult(
        name=spec.name,
        version=current,
        serial=entry.serial or "",
        not_before=entry.not_before,
        not_after=entry.not_after,
        issuer=entry.issuer or "",
        identifiers=entry.identifiers,
        live=keystore.live(spec.name),
        reused_authorizations=0,
    )


def new_order(
    session: AcmeSession,
    spec: CertSpec,
    csr_pem: bytes,
    replaces: str | None,
    *,
    committed_elsewhere: Callable[[str], bool] | None = None,
) -> messages.OrderResource:
    """newOrder with ``replaces`` when given; once more without it if the CA refuses the
    replacement (already replaced, or the old order belongs to another account).

    In a fleet, "already replaced" (RFC 9773 §5, a 409) means another host renewed: when
    ``committed_elsewhere(spec.name)`` says its version is in the store, an ``ACMEError``
    (the caller pulls it), never a second order without ``replaces``. When it says False,
    the other host's replacement was fenced out and discarded (a stalled holder), so
    ordering without ``replaces`` is the only way to a new certificate.
    """
    try:
        return session.new_order(spec.identifiers, csr_pem, profile=spec.profile, replaces=replaces)
    except ACMEError as exc:
        kind = _replacement_refused(exc)
        if replaces is None or kind is None:
            raise
        if kind == "alreadyReplaced" and committed_elsewhere is not None and committed_elsewhere(spec.name):
            raise ACMEError(
                f"{spec.name}: the CA says certificate {replaces} was already replaced: another fleet host renewed it",
                "not ordered again without replaces (that would be a second certificate); "
                "the version the fleet store has is pulled instead",
                problem_type=exc.problem_type,
            ) from None
        log.info("the CA refused to mark %s as replaced (%s); ordering without replaces", replaces, exc)
    return session.new_order(spec.identifiers, csr_pem, profile=spec.profile)


def _replacement_refused(exc: ACMEError) -> str | None:
    kind = (exc.problem_type or "").rsplit(":", 1)[-1]
    return kind if kind in ("alreadyReplaced", "unauthorized") else None


def check_issued(spec: CertSpec, key_pem: bytes, fullchain_pem: str) -> tuple[bytes, bytes, CertFacts]:
    """Refuse to store anything but a parseable chain whose leaf matches our key and names."""
    certs = split_pem_chain(fullchain_pem)
    if not certs:
        raise ACMEError("the CA returned an empty certificate chain")
    leaf = certs[0]
    if not public_keys_match(load_key(key_pem), leaf):
        raise ACMEError("the CA returned a certificate for a different key", "this is a CA bug; not stored")
    facts = CertFacts.of(leaf)
    wanted = {i.value for i in spec.identifiers}
    if set(facts.identifiers) != wanted:
        raise ACMEError(
            f"the CA returned a certificate for {', '.join(sorted(facts.identifiers))}, "
            f"not {', '.join(sorted(wanted))}",
            "not stored",
        )
    leaf_pem = leaf.public_bytes(Encoding.PEM)
    chain_pem = b"".join(c.public_bytes(Encoding.PEM) for c in certs[1:])
    return leaf_pem, chain_pem, facts


@contextmanager
def past_commit_errors(name: str, version: str, link: Path, left: str) -> Iterator[None]:
    """A ``KeystoreError`` inside says that ``version`` of ``name`` IS live, and what is ``left``."""
    try:
        yield
    except KeystoreError as exc:
        raise already_live(exc, name, version, link, left) from exc
