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
from dataclasses import dataclass
from typing import Any, Callable

import josepy as jose
from acme import messages
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.hazmat.primitives.asymmetric import ec

from . import plugins
from .acme_session import AcmeSession
from .config import CertSpec
from .eab import ExternalAccount
from .errors import ACMEError, UsageError
from .keys import CertFacts, generate_key, key_to_pem, load_key, make_csr, public_keys_match, split_pem_chain
from .keystore import FileKeystore, LivePaths, ca_id, utc_iso
from .names import Identifier
from .solvers import Challenge, Solver

log = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclass(frozen=True)
class AccountSettings:
    """Who registers with the CA, and whether they agreed to its terms."""

    email: str | None = None
    agree_tos: bool = False
    # Needed only when registering with a CA that requires external account binding.
    eab: ExternalAccount | None = None


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


def issue(spec: CertSpec, keystore: FileKeystore, *, account: AccountSettings = AccountSettings(),
          timeout: float = 90.0, clock: Clock = utc_now) -> IssueResult:
    """Obtain a certificate for ``spec`` and make it the live version in ``keystore``."""
    solvers = [create_solver(s.name, s.options) for s in spec.solvers]
    with keystore.lock_cert(spec.name):
        session = open_session(spec.directory_url, keystore, account, ca_bundle=spec.ca_bundle, timeout=timeout)
        session.prefer_chain(spec.preferred_chain)
        key = generate_key(spec.key_type)
        order = session.new_order(spec.identifiers, make_csr(key, spec.identifiers), profile=spec.profile)
        reused = solve(session, spec, solvers, order)
        result = session.finalize(order)
        key_pem = key_to_pem(key)
        leaf_pem, chain_pem, facts = check_issued(spec, key_pem, result.fullchain_pem)
        meta: dict[str, Any] = {
            "serial": facts.serial,
            "not_before": utc_iso(facts.not_before),
            "not_after": utc_iso(facts.not_after),
            "issuer": facts.issuer,
            "ari_cert_id": facts.ari_cert_id,
            "issued_at": utc_iso(clock()),
            "order_url": result.order_url,
        }
        stored = keystore.store_version(spec, key_pem, leaf_pem, chain_pem, meta)
    log.info("stored %s version %s (serial %s)", spec.name, stored.version, facts.serial)
    return IssueResult(name=spec.name, version=stored.version, serial=facts.serial,
                       not_before=facts.not_before, not_after=facts.not_after, issuer=facts.issuer,
                       identifiers=facts.identifiers, live=keystore.live(spec.name),
                       reused_authorizations=reused)


def create_solver(name: str, options: Any) -> Solver:
    factory = plugins.lookup("solvers", name)
    solver: Solver = factory.from_options(options)
    return solver


def open_session(directory_url: str, keystore: FileKeystore, account: AccountSettings, *,
                 ca_bundle: str | None, timeout: float) -> AcmeSession:
    """A session signed by this CA's stored account, registering one on first use."""
    ca = ca_id(directory_url)
    stored = keystore.load_account(ca)
    if stored is None:
        with keystore.lock_keystore():
            # Another run may have registered while we waited for the lock.
            stored = keystore.load_account(ca)
            if stored is None:
                return _register(directory_url, ca, keystore, account, ca_bundle=ca_bundle, timeout=timeout)
    key_pem, data = stored
    session = AcmeSession(directory_url, account_jwk(key_pem), ca_bundle=ca_bundle, timeout=timeout)
    session.use_account(data["uri"])
    return session


def account_jwk(key_pem: bytes) -> jose.JWK:
    key = load_key(key_pem)
    return jose.JWKEC(key=key) if isinstance(key, ec.EllipticCurvePrivateKey) else jose.JWKRSA(key=key)


def _register(directory_url: str, ca: str, keystore: FileKeystore, account: AccountSettings, *,
              ca_bundle: str | None, timeout: float) -> AcmeSession:
    key = ec.generate_private_key(ec.SECP256R1())
    session = AcmeSession(directory_url, jose.JWKEC(key=key), ca_bundle=ca_bundle, timeout=timeout)
    if not account.agree_tos:
        terms = session.terms_of_service
        raise UsageError(f"no account at {directory_url} yet, and registering needs agreement to the CA's terms"
                         + (f" ({terms})" if terms else ""),
                         "read them, then pass --agree-tos (or agree_tos = true in certman.toml)")
    binding = account.eab.binding(session.account_key.public_key(), session.directory) if account.eab else None
    regr = session.register(account.email, eab=binding)
    keystore.save_account(ca, key_to_pem(key), {
        "uri": regr.uri,
        "directory": directory_url,
        "contact": list(regr.body.contact),
        "created_at": utc_iso(utc_now()),
    })
    log.info("registered account %s at %s", regr.uri, directory_url)
    return session


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
            raise ACMEError(f"the CA offers no {solver.challenge_type} challenge for {ident} (only {offered})",
                            "choose a solver for one of the offered challenge types")
        response, validation = challb.chall.response_and_validation(session.account_key)
        batches.setdefault(index, []).append(
            Challenge(ident, solver.challenge_type, challb.chall.encode("token"), validation))
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
        raise ACMEError(f"the CA returned a certificate for {', '.join(sorted(facts.identifiers))}, "
                        f"not {', '.join(sorted(wanted))}", "not stored")
    leaf_pem = leaf.public_bytes(Encoding.PEM)
    chain_pem = b"".join(c.public_bytes(Encoding.PEM) for c in certs[1:])
    return leaf_pem, chain_pem, facts
