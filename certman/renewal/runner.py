"""The per-certificate work of a renew run, and the state it records.

Refresh ARI where its check time passed, issue what is due (``replaces`` = the old
CertID when the CA speaks ARI), then record success or failure in the certificate's
``RenewalState``; ``deploy_all`` runs each distinct reloader once and records the
outcome. One certificate's failure is recorded and reported, never raised.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import logging
from typing import TYPE_CHECKING

from msgspec import structs

from ..ca.deadline import certificate_deadline
from ..config import CertSpec, Settings
from ..deploy.batch import deploy, deployment_of
from ..deploy.outcome import DeployResult
from ..errors import CAUnreachable, CertmanError, RateLimited, Unsupported
from ..keystore import FileKeystore
from ..keystore.outcomes import after_success
from ..keystore.records import IndexEntry
from ..keystore.state_records import AriState, DeployState, RenewalState
from . import rules as renewal
from .plan import ISSUE, Plan, skip_result
from .report import CertResult

if TYPE_CHECKING:  # the ACME stack is imported only when a certificate needs work
    from ..ca.accounts import AccountSettings
    from ..ca.session import AcmeSession
    from ..solvers import Solver

log = logging.getLogger(__name__)

# After a failed ARI fetch, fall back to the lifetime rule and ask again in an hour.
ARI_RETRY_AFTER_ERROR = datetime.timedelta(hours=1)
ARI_RECHECK_UNSUPPORTED = datetime.timedelta(days=1)


class Runner:
    """The per-certificate work of one run; shares one ACME session per CA across threads."""

    def __init__(
        self,
        keystore: FileKeystore,
        settings: Settings,
        account: AccountSettings | None,
        now: datetime.datetime,
        *,
        jobs: int = 1,
    ) -> None:
        from ..ca.run_sessions import RunSessions

        self.keystore = keystore
        self.settings = settings
        self.account = account
        self.now = now
        # One ACME session per CA for the run's ``jobs`` threads: ARI and issuance alike.
        self.sessions = RunSessions(keystore, jobs=jobs)

    def run_all(self, plans: list[Plan], jobs: int) -> list[CertResult]:
        """Each plan's result, in order, from ``jobs`` threads (at most one per plan)."""
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=min(jobs, len(plans)), thread_name_prefix="renew"
        ) as pool:
            return list(pool.map(self.run, plans))

    def run(self, plan: Plan) -> CertResult:
        """The certificate's work; one deadline (``settings.timeout``) covers everything it
        does with its CA in this run: ARI, directory, account, order, polling, download."""
        try:
            if plan.updates_record and plan.spec is not None:
                with self.keystore.lock_cert(plan.name):
                    self.keystore.write_spec(plan.spec)
            with certificate_deadline(self.settings.timeout):
                checked = None
                if plan.check_ari:
                    if plan.action in (renewal.RENEW, ISSUE):
                        # Due anyway: a local problem fails it before the ARI request too.
                        checked = self._preflight(plan)
                    self._refresh_ari(plan)
                if plan.action in (renewal.RENEW, ISSUE):
                    return self._issue(plan, checked)
            if plan.action == renewal.DEPLOY:
                spec = plan.spec or self.keystore.read_spec(plan.name)
                serial = plan.entry.serial if plan.entry else None
                plan.deployment = (spec, deployment_of(self.keystore, spec, serial or ""))
                return structs.replace(skip_result(plan), action="deployed")
            return skip_result(plan)
        except CertmanError as exc:
            return self._record_failure(plan, exc.message, exc.hint, exc)
        except Exception as exc:  # one certificate's bug must not stop the batch
            log.debug("renewing %s failed", plan.name, exc_info=True)
            return self._record_failure(
                plan, f"internal error: {type(exc).__name__}: {exc}", "run with -vv and report it", exc
            )

    def refresh_window(self, plan: Plan) -> None:
        """Fetch and record the plan's ARI window (RFC 9773 §4.2) if its check time passed, under
        the certificate's deadline; a CA that cannot say is logged and the lifetime rule applies."""
        if plan.check_ari:
            with certificate_deadline(self.settings.timeout):
                self._refresh_ari(plan)

    def _preflight(self, plan: Plan) -> tuple[CertSpec, list[Solver]]:
        """The plan's spec and its solvers, checked as ``obtain`` checks it, before this run's
        first request for it."""
        from ..issuance.preflight import preflight
        from ..recording import recorded_spec
        from ..solvers.shared import Rendezvous

        spec = plan.spec or self.keystore.read_spec(plan.name)
        rendezvous = Rendezvous.under(self.keystore.root, timeout=self.keystore.lock_timeout)
        return spec, preflight(recorded_spec(spec), rendezvous=rendezvous, board=self.keystore.token_board)

    def _session(self, spec: CertSpec) -> AcmeSession | None:
        """A session for ARI requests, or None when we hold no account at this CA or it is down."""
        return self.sessions.for_renewal_info(spec.directory_url, spec.ca_bundle)

    def _refresh_ari(self, plan: Plan) -> None:
        entry = plan.entry
        assert entry is not None and entry.ari_cert_id is not None  # check_ari is set only then
        cert_id = entry.ari_cert_id
        spec = plan.spec or self.keystore.read_spec(plan.name)
        session = self._session(spec)
        now = self.now
        if session is None or not session.supports_ari:
            ari = AriState(cert_id=cert_id, unsupported=True, next_check=now + ARI_RECHECK_UNSUPPORTED)
        else:
            try:
                info = session.renewal_info(cert_id)
            except Unsupported as exc:
                log.warning("renewal information for %s: %s; using the lifetime rule", plan.name, exc)
                ari = AriState(cert_id=cert_id, unsupported=True, next_check=now + ARI_RECHECK_UNSUPPORTED)
            except CertmanError as exc:
                log.warning("renewal information for %s: %s; using the lifetime rule", plan.name, exc)
                ari = structs.replace(
                    plan.state.ari or AriState(), next_check=now + ARI_RETRY_AFTER_ERROR, last_error=exc.message
                )
            else:
                ari = AriState(
                    cert_id=cert_id,
                    window_start=info.window_start,
                    window_end=info.window_end,
                    explanation_url=info.explanation_url,
                    chosen=renewal.ari_renew_at(cert_id, info.window_start, info.window_end),
                    fetched_at=now,
                    next_check=renewal.ari_next_check(now, info.retry_after),
                )
        record(self.keystore, plan, structs.replace(plan.state, ari=ari))
        decision = renewal.decide(plan.name, entry, plan.state, now)
        # The window may make it due; it never cancels a redeploy to reloaders that changed.
        if plan.action != renewal.DEPLOY or decision.action != renewal.SKIP:
            plan.action, plan.reason, plan.renew_at = decision.action, decision.reason, decision.renew_at

    def _issue(self, plan: Plan, checked: tuple[CertSpec, list[Solver]] | None) -> CertResult:
        """Obtain the plan's certificate and record it; ``checked``: this run's preflight of it
        before its ARI request (None: it runs here)."""
        from ..ca.accounts import AccountSettings
        from ..issuance.issue import obtain, past_commit_errors
        from ..keystore.past_commit import state_left

        spec, solvers = checked or self._preflight(plan)
        replaces = None
        if plan.action == renewal.RENEW and plan.entry and plan.entry.ari_cert_id:
            session = self._session(spec)
            if session is not None and session.supports_ari:
                replaces = plan.entry.ari_cert_id
        now = self.now
        account = self.account or AccountSettings(self.settings.email, self.settings.agree_tos)
        result = obtain(
            spec,
            self.keystore,
            account=account,
            timeout=self.settings.timeout,
            clock=lambda: now,
            replaces=replaces,
            sessions=self.sessions,
            # Read under the renewal lock this run holds: no whole-index read per certificate.
            entry=plan.entry,
            # Its preflight ran in this run already (port probes included): once per certificate.
            solvers=solvers,
        )
        left = state_left(self.keystore.layout.state(plan.name))
        with past_commit_errors(plan.name, result.version, self.keystore.layout.live_link(plan.name), left):
            record(
                self.keystore,
                plan,
                after_success(plan.state, now, serial=result.serial, reloaders=bool(spec.reloaders)),
            )
        if spec.reloaders:
            plan.deployment = (spec, deployment_of(self.keystore, spec, result.serial))
        issued = IndexEntry(
            result.serial, result.not_before, result.not_after, renew_before_days=spec.renew_before_days
        )
        return CertResult(
            plan.name,
            "issued" if plan.action == ISSUE else "renewed",
            plan.reason,
            serial=result.serial,
            not_after=result.not_after,
            next_renewal=renewal.lifetime_renew_at(plan.name, issued),
            last_success=now,
            last_failure=plan.state.last_failure,
        )

    def _record_failure(self, plan: Plan, message: str, hint: str | None, exc: BaseException) -> CertResult:
        now = self.now
        failures = plan.state.consecutive_failures + 1
        # A rate limit, or a 503 that said when to come back: honoured across runs.
        retry_after = exc.retry_after if isinstance(exc, RateLimited | CAUnreachable) else None
        next_attempt = renewal.next_attempt_after_failure(now, failures, retry_after)
        failed = structs.replace(
            plan.state,
            last_attempt=now,
            last_failure=now,
            consecutive_failures=failures,
            last_error=message,
            retry_after=retry_after,
            next_attempt=next_attempt,
        )
        try:
            record(self.keystore, plan, failed)
        except CertmanError as write_error:
            log.error("cannot record the failure of %s: %s", plan.name, write_error)
        entry = plan.entry
        log.info("%s failed: %s", plan.name, message)
        return CertResult(
            plan.name,
            "failed",
            plan.reason,
            serial=entry.serial if entry else None,
            not_after=entry.not_after if entry else None,
            next_renewal=next_attempt,
            error=message,
            hint=hint,
            last_success=plan.state.last_success,
            last_failure=now,
            consecutive_failures=failures,
        )


def deploy_all(
    keystore: FileKeystore, plans: list[Plan], results: dict[str, CertResult], now: datetime.datetime, timeout: float
) -> DeployResult:
    """Run each distinct reloader once for the certificates that need it; record each outcome.

    ``timeout`` is in seconds, per reloader.
    """
    items = [p.deployment for p in plans if p.deployment is not None and results[p.name].ok]
    if not items:
        return DeployResult({})
    outcome = deploy(items, timeout=timeout)
    for plan in plans:
        if plan.deployment is None or plan.name not in outcome.errors:
            continue
        error = outcome.errors[plan.name]
        deployed = DeployState(
            pending=error is not None,
            serial=plan.deployment[1].serial,
            error=error.message if error else None,
            attempted_at=now,
        )
        try:
            record(keystore, plan, structs.replace(plan.state, deploy=deployed))
        except CertmanError as write_error:
            # This certificate's failure, not the batch's: the others still get their state.
            log.error("cannot record the deploy of %s: %s", plan.name, write_error)
            if error is None:
                results[plan.name] = structs.replace(
                    results[plan.name],
                    error=f"deployed, but not recorded: {write_error.message}",
                    hint=write_error.hint,
                )
        if error is not None:
            results[plan.name] = structs.replace(
                results[plan.name],
                error=f"issued, not deployed: {error.message}",
                hint=error.hint or "the next run retries the reload without issuing",
            )
    return outcome


def record(keystore: FileKeystore, plan: Plan, state: RenewalState) -> None:
    """Write ``state`` for ``plan``'s certificate, and go on with it as a reader will see it
    (times in whole seconds), so this run decides exactly as the next one will."""
    plan.state = RenewalState.from_json(state.to_json(), keystore.layout.state(plan.name))
    keystore.write_state(plan.name, plan.state)
