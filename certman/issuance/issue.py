"""The issuance story: lock, account, key, order, solve, finalize, verify, store.

issue(spec, keystore)
  -> lock the certificate
  -> open the session (register the account on first use per CA)
  -> new key and CSR -> newOrder
  -> skip valid authorizations; present the rest per solver; wait; answer; poll
  -> cleanup (always) -> finalize -> download -> check -> store (atomic) -> IssueResult
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acme import messages
from cryptography.hazmat.primitives.serialization import Encoding

from ..ca.accounts import AccountSettings, open_session
from ..ca.session import REQUEST_TIMEOUT, AcmeSession
from ..config import CertSpec
from ..errors import ACMEError
from ..keys import CertFacts, generate_key, key_to_pem, load_key, make_csr, public_keys_match, split_pem_chain
from ..keystore import FileKeystore, LivePaths, utc_iso
from ..names import Identifier
from ..plugins import registry as plugins
from ..solvers import Challenge, Solver
from . import resume

log = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class IssueResult:
    name: str
    version: str
    serial: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    issuer: str
    identifiers: tuple[str, ...]
    live: LivePaths
    reused_authorizations: int


def issue(
    spec: CertSpec,
    keystore: FileKeystore,
    *,
    account: AccountSettings = AccountSettings(),
    timeout: float = 90.0,
    clock: Clock = utc_now,
    replaces: str | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
) -> IssueResult:
    """Obtain a certificate for ``spec`` and make it the live version in ``keystore``.

    ``replaces`` is the ARI CertID of the certificate this one renews (RFC 9773 §5).
    """
    solvers = [create_solver(s.name, s.options) for s in spec.solvers]
    if spec.reloaders:
        from ..deploy.batch import check_reloaders

        check_reloaders(spec)
    seen = keystore.live_version(spec.name)
    with keystore.lock_cert(spec.name):
        done = done_while_waiting(spec, keystore, seen)
        if done is not None:
            return done
        session = open_session(
            spec.directory_url,
            keystore,
            account,
            ca_bundle=spec.ca_bundle,
            timeout=timeout,
            request_timeout=request_timeout,
        )
        session.prefer_chain(spec.preferred_chain)
        resumed = resume.continue_pending(session, spec, keystore)
        if resumed is not None:
            result, key_pem = resumed
            reused = len(spec.identifiers)
        else:
            key = generate_key(spec.key_type)
            order = new_order(session, spec, make_csr(key, spec.identifiers), replaces)
            reused = solve(session, spec, solvers, order)
            key_pem = key_to_pem(key)
            resume.remember(keystore, spec, order.uri, key_pem, clock())
            result = resume.finish(keystore, spec, lambda: session.finalize(order))
        try:
            leaf_pem, chain_pem, facts = check_issued(spec, key_pem, result.fullchain_pem)
        except ACMEError:
            keystore.clear_pending_order(spec.name)
            raise
        meta: dict[str, Any] = {
            "serial": facts.serial,
            "not_before": utc_iso(facts.not_before),
            "not_after": utc_iso(facts.not_after),
            "issuer": facts.issuer,
            "ari_cert_id": facts.ari_cert_id,
            "issued_at": utc_iso(clock()),
            "order_url": result.order_url,
        }
        if spec.renew_before_days is not None:
            meta["renew_before_days"] = spec.renew_before_days
        stored = keystore.store_version(spec, key_pem, leaf_pem, chain_pem, meta)
        keystore.clear_pending_order(spec.name)
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


def done_while_waiting(spec: CertSpec, keystore: FileKeystore, seen: str | None) -> IssueResult | None:
    """The version another run stored for the same names while we waited for the lock, if any.

    Lock, re-check, work: two runs started together must not both order a certificate.
    """
    current = keystore.live_version(spec.name)
    if current is None or current == seen:
        return None
    entry = keystore.read_index().get(spec.name)
    if entry is None or set(entry.get("identifiers", ())) != {i.value for i in spec.identifiers}:
        return None
    log.info("%s: another run stored version %s while this one waited; nothing to do", spec.name, current)
    return IssueResult(
        name=spec.name,
        version=current,
        serial=entry["serial"],
        not_before=_parse_utc(entry["not_before"]),
        not_after=_parse_utc(entry["not_after"]),
        issuer=entry["issuer"],
        identifiers=tuple(entry["identifiers"]),
        live=keystore.live(spec.name),
        reused_authorizations=0,
    )


def _parse_utc(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def create_solver(name: str, options: Any) -> Solver:
    factory = plugins.lookup("solvers", name)
    solver: Solver = factory.from_options(options)
    return solver


def new_order(session: AcmeSession, spec: CertSpec, csr_pem: bytes, replaces: str | None) -> messages.OrderResource:
    """newOrder with ``replaces`` when given; once more without it if the CA refuses the
    replacement (already replaced, or the old order belongs to another account)."""
    try:
        return session.new_order(spec.identifiers, csr_pem, profile=spec.profile, replaces=replaces)
    except ACMEError as exc:
        if replaces is None or not _replacement_refused(exc):
            raise
        log.info("the CA refused to mark %s as replaced (%s); ordering without replaces", replaces, exc)
    return session.new_order(spec.identifiers, csr_pem, profile=spec.profile)


def _replacement_refused(exc: ACMEError) -> bool:
    kind = (exc.problem_type or "").rsplit(":", 1)[-1]
    return kind in ("alreadyReplaced", "unauthorized")


def solve(session: AcmeSession, spec: CertSpec, solvers: list[Solver], order: messages.OrderResource) -> int:
    """Prove control of every identifier whose authorization is not yet valid; return how many were."""
    pending = [a for a in order.authorizations if a.body.status != messages.STATUS_VALID]
    reused = len(order.authorizations) - len(pending)
    batches: dict[int, list[Challenge]] = {}
    answers: list[tuple[messages.ChallengeBody, Any]] = []
    for authz in pending:
        ident = _identifier_of(authz.body)
        index = spec.solvers.index(spec.solver_for(ident))
        solver = solvers[index]
        challb = next((c for c in authz.body.challenges if c.chall.typ == solver.challenge_type), None)
        if challb is None:
            offered = ", ".join(c.chall.typ for c in authz.body.challenges)
            raise ACMEError(
                f"the CA offers no {solver.challenge_type} challenge for {ident} (only {offered})",
                "choose a solver for one of the offered challenge types",
            )
        response, validation = challb.chall.response_and_validation(session.account_key)
        batches.setdefault(index, []).append(
            Challenge(ident, solver.challenge_type, challb.chall.encode("token"), validation)
        )
        answers.append((challb, response))
    if not pending:
        return reused
    presented: list[int] = []
    try:
        for index, batch in batches.items():
            presented.append(index)
            solvers[index].present(tuple(batch))
        for index, batch in batches.items():
            solvers[index].wait_ready(tuple(batch))
        for challb, response in answers:
            session.answer(challb, response)
        session.wait_authorizations([a.uri for a in pending])
    finally:
        for index in presented:
            try:
                solvers[index].cleanup(tuple(batches[index]))
            except Exception as exc:  # cleanup must not hide the real outcome
                log.warning("cleanup of the %s solver failed: %s", spec.solvers[index].name, exc)
    return reused


def _identifier_of(authz: messages.Authorization) -> Identifier:
    value = authz.identifier.value
    if authz.wildcard:
        value = "*." + value
    return Identifier("ip" if authz.identifier.typ == messages.IDENTIFIER_IP else "dns", value)


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
