"""A dry run: the real issuance path, with nothing changed (``--dry-run`` of issue and renew).

rehearse(spec, keystore)
  -> the local checks ``obtain`` makes (``preflight``, state, pending order)
  -> where to order: the CA's staging twin or ``dry_run_server`` (``ca.twins``), else the CA itself
  -> the dry run's own account there (``accounts/<ca-id>+dry-run/``), registered on first use
  -> new key and CSR -> newOrder -> the solvers present, the CA validates -> cleanup
  -> at a twin: finalize, download, check the chain as issue does; nothing stored
     without a twin: deactivate every authorization (RFC 8555 §7.5.2); never finalize
  -> each reloader's configuration test (nginx -t, haproxy -c); no reload

The keystore gains only lock files and the dry-run account: no version, no spec, no
state, no pending order, no repaired ``live/`` link. The real account is read (for its
contact, and because its registration agreed to the CA's terms) and never written.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from acme import messages

from ..ca.accounts import AccountSettings, CAEndpoint, open_session
from ..ca.recovery import with_account_recovery
from ..ca.session import REQUEST_TIMEOUT, AcmeSession
from ..ca.twins import dry_run_account_id, twin_of
from ..config import CertSpec
from ..errors import CertmanError
from ..keys import generate_key, key_to_pem, make_csr
from ..keystore import FileKeystore, ca_id
from ..keystore.times import encode_time
from ..solvers import Solver
from .challenges import solve
from .issue import check_issued, checked_locally

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RehearsalResult:
    """What one dry run did. ``ca`` is the certificate's CA, ``rehearsed_at`` where the order went."""

    name: str
    identifiers: tuple[str, ...]
    ca: str
    rehearsed_at: str
    # Finalized at a staging twin: the serial and expiry of the certificate it issued (and nobody stores).
    finalized: bool
    serial: str | None = None
    not_after: datetime.datetime | None = None
    # Without a twin: the authorizations given up after validation.
    deactivated: int = 0
    reused_authorizations: int = 0
    # One line per reloader: its configuration test, or that it has none.
    reloaders: tuple[str, ...] = ()
    # A failed configuration test (ReloadError, exit 6), reported after the result.
    reload_error: CertmanError | None = field(default=None, compare=False)

    def summary(self) -> str:
        if self.finalized:
            return (
                f"dry run: validated and finalized at the staging twin {self.rehearsed_at}; "
                "nothing stored, nothing reloaded"
            )
        return (
            f"dry run: {self.ca} has no staging twin, so it validated there, then deactivated "
            f"{self.deactivated} authorization(s) and did not finalize; nothing stored, nothing reloaded"
        )

    def raise_for_deploy(self) -> None:
        """Raise the failed configuration test (``ReloadError``, exit 6), as the real reload would fail."""
        if self.reload_error is not None:
            raise self.reload_error

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "name": self.name,
            "identifiers": list(self.identifiers),
            "ca": self.ca,
            "rehearsed_at": self.rehearsed_at,
            "finalized": self.finalized,
            "serial": self.serial,
            "not_after": encode_time(self.not_after),
            "deactivated_authorizations": self.deactivated,
            "reused_authorizations": self.reused_authorizations,
            "reloaders": list(self.reloaders),
            "error": self.reload_error.message if self.reload_error else None,
            "summary": self.summary(),
        }


def rehearse(
    spec: CertSpec,
    keystore: FileKeystore,
    *,
    account: AccountSettings = AccountSettings(),
    dry_run_server: str | None = None,
    timeout: float = 90.0,
    request_timeout: float = REQUEST_TIMEOUT,
) -> RehearsalResult:
    """Rehearse issuing ``spec``: solvers, order, validation and (at a staging twin) finalize.

    ``dry_run_server`` (a directory URL or alias) is where to finalize; without it, the
    CA's known staging twin (``ca.twins.STAGING_TWINS``); without either, the order goes
    to the certificate's own CA, whose authorizations are deactivated once validated
    (RFC 8555 §7.5.2), and nothing is finalized. ``timeout`` (seconds) bounds the
    conversation with the CA. Raises what ``obtain`` raises for the same fault, so a dry
    run exits as the real run would: ``UsageError`` (2), ``KeystoreError`` (3),
    ``ACMEError``/``AuthorizationFailed`` (4), ``SolverError`` (5); a failed reloader
    configuration test is ``result.reload_error`` (``ReloadError``, 6).
    """
    # The same local checks as the real run, before any request (reloaders included).
    spec, solvers = checked_locally(spec, keystore)
    twin = twin_of(spec.directory_url, dry_run_server)
    at = twin or spec.directory_url
    endpoint = CAEndpoint(at, spec.ca_bundle, timeout, dry_run_account_id(at))
    own = dry_run_account(keystore, spec, account)
    result = with_account_recovery(
        lambda: _order(spec, keystore, solvers, endpoint, own, twin is not None, request_timeout),
        keystore,
        endpoint,
        own,
    )
    if not spec.reloaders:
        return result
    from ..deploy.batch import test_configs

    try:
        return replace(result, reloaders=test_configs(spec))
    except CertmanError as exc:
        return replace(result, reload_error=exc)


def dry_run_account(keystore: FileKeystore, spec: CertSpec, account: AccountSettings) -> AccountSettings:
    """Who registers the dry-run account: the given settings, else the real account's contact.

    A real account at the certificate's CA means its terms were agreed to when it was
    registered, so an unattended dry run may register its own account at the twin.
    """
    real = keystore.load_account(ca_id(spec.directory_url))
    if real is None:
        return account
    emails = ",".join(c.removeprefix("mailto:") for c in real[1].contact if c.startswith("mailto:"))
    return AccountSettings(account.email or emails or None, True, account.eab)


def _order(
    spec: CertSpec,
    keystore: FileKeystore,
    solvers: list[Solver],
    ca: CAEndpoint,
    account: AccountSettings,
    finalize: bool,
    request_timeout: float,
) -> RehearsalResult:
    session = open_session(
        ca.directory_url,
        keystore,
        account,
        ca_bundle=ca.ca_bundle,
        timeout=ca.timeout,
        request_timeout=request_timeout,
        account_id=ca.account,
    )
    session.prefer_chain(spec.preferred_chain)
    key = generate_key(spec.key_type)
    order = session.new_order(spec.identifiers, make_csr(key, spec.identifiers), profile=spec.profile)
    rehearsed = RehearsalResult(
        name=spec.name,
        identifiers=tuple(i.value for i in spec.identifiers),
        ca=spec.directory_url,
        rehearsed_at=ca.directory_url,
        finalized=finalize,
    )
    if not finalize:
        try:
            reused = solve(session, spec, solvers, order)
        except BaseException:
            _deactivate(session, order, quiet=True)
            raise
        return replace(rehearsed, reused_authorizations=reused, deactivated=_deactivate(session, order, quiet=False))
    reused = solve(session, spec, solvers, order)
    issued = session.finalize(order)
    _, _, facts = check_issued(spec, key_to_pem(key), issued.fullchain_pem)
    log.info("dry run of %s: %s issued serial %s; not stored", spec.name, ca.directory_url, facts.serial)
    return replace(rehearsed, reused_authorizations=reused, serial=facts.serial, not_after=facts.not_after)


def _deactivate(session: AcmeSession, order: messages.OrderResource, *, quiet: bool) -> int:
    """Deactivate each authorization of ``order`` that is pending or valid; how many were.

    ``quiet`` (after a failure) logs what cannot be deactivated instead of raising over
    the failure that matters.
    """
    count = 0
    for authz in order.authorizations:
        try:
            current = session.fetch_authorization(authz.uri)
            if current.body.status not in (messages.STATUS_PENDING, messages.STATUS_VALID):
                continue
            session.deactivate_authorization(authz.uri)
            count += 1
        except CertmanError as exc:
            if not quiet:
                raise
            log.warning("could not deactivate the authorization %s: %s", authz.uri, exc.message)
    log.info("dry run: deactivated %d authorization(s) at %s", count, session.directory_url)
    return count
