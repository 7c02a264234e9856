"""The renewal job: decide per certificate, renew what is due in a bounded pool, then deploy.

    renew(keystore, settings)
      -> index.json + state.json per certificate (no PEM parsing) + declared certificates
      -> decide (renewal.decide): renew / deploy again / skip, and why
      -> pool of ``jobs``: refresh ARI where its check time passed; issue what is due
         (``replaces`` = the old CertID when the CA speaks ARI); record success/failure
      -> deploy: each distinct reloader once for all its certificates
      -> RenewReport (one CertResult per certificate)

One certificate's failure never stops the others; it is recorded in its state with
the next attempt time (backoff, Retry-After) and reported.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..config import CertSpec, Settings
from ..deploy.batch import DeployResult, deploy, deployment_of
from ..deploy.reloaders import Deployment
from ..errors import CAUnreachable, CertmanError, PartialFailure, RateLimited, UsageError
from ..keystore import FileKeystore, ca_id, locks
from . import rules as renewal
from .declared import declared_specs
from .rules import format_time, parse_time

if TYPE_CHECKING:  # the ACME stack is imported only when a certificate needs work
    from ..ca.accounts import AccountSettings
    from ..ca.session import AcmeSession

log = logging.getLogger(__name__)

DEFAULT_JOBS = 4
STATE_FORMAT = 1
# After a failed ARI fetch, fall back to the lifetime rule and ask again in an hour.
ARI_RETRY_AFTER_ERROR = datetime.timedelta(hours=1)
ARI_RECHECK_UNSUPPORTED = datetime.timedelta(days=1)

ISSUE = "issue"
RUN_LOCK = "renew.lock"


@dataclass(frozen=True)
class CertResult:
    """What the run did with one certificate. ``action`` is one of renewed, issued,
    deployed, skipped, failed (and due / not-due under ``--check``)."""

    name: str
    action: str
    reason: str
    serial: str | None = None
    not_after: datetime.datetime | None = None
    next_renewal: datetime.datetime | None = None
    error: str | None = None
    hint: str | None = None
    last_success: datetime.datetime | None = None
    last_failure: datetime.datetime | None = None
    consecutive_failures: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "reason": self.reason,
            "serial": self.serial,
            "not_after": format_time(self.not_after),
            "next_renewal": format_time(self.next_renewal),
            "error": self.error,
            "hint": self.hint,
            "last_success": format_time(self.last_success),
            "last_failure": format_time(self.last_failure),
            "consecutive_failures": self.consecutive_failures,
        }


@dataclass(frozen=True)
class RenewReport:
    results: tuple[CertResult, ...]
    checked_at: datetime.datetime
    # The batch deploy: every reloader call and verify check of this run.
    deploy: DeployResult = field(default_factory=lambda: DeployResult({}))

    @property
    def failed(self) -> list[CertResult]:
        return [r for r in self.results if not r.ok]

    @property
    def exit_code(self) -> int:
        return PartialFailure.exit_code if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at": format_time(self.checked_at),
            "exit_code": self.exit_code,
            "certificates": [r.to_dict() for r in self.results],
            "deploy": self.deploy.to_dict(),
        }


@dataclass
class _Plan:
    name: str
    action: str
    reason: str
    entry: Mapping[str, Any] | None
    state: dict[str, Any]
    spec: CertSpec | None = None
    renew_at: datetime.datetime | None = None
    check_ari: bool = False
    deployment: tuple[CertSpec, Deployment] | None = field(default=None, repr=False)


def renew(
    keystore: FileKeystore,
    settings: Settings,
    *,
    names: Iterable[str] = (),
    force: bool = False,
    check: bool = False,
    jobs: int = DEFAULT_JOBS,
    now: datetime.datetime | None = None,
    account: AccountSettings | None = None,
    deploy_timeout: float = 120.0,
) -> RenewReport:
    """What `certman renew` does: renew what is due among ``names`` (default: every stored
    and declared certificate), then deploy each distinct reloader once for the batch.

    A keystore left by a run killed mid-store is repaired first. ``report.deploy`` holds
    the reloader calls and verify checks; a certificate's failure is in its ``CertResult``
    and ``report.exit_code`` (7), never raised.
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}")
    if keystore.crashed():
        # A run killed between moving live/ and the index leaves the index stale; the
        # plan comes from the index, so repair it first.
        keystore.repair_index()
    now = now or datetime.datetime.now(datetime.UTC)
    index = keystore.read_index()
    declared = declared_specs(settings)
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in index and n not in declared]
    if unknown:
        raise UsageError(
            f"no certificate named {', '.join(repr(n) for n in unknown)} in {keystore.root} or certman.toml",
            "see `certman list` for the names",
        )
    selected = names or sorted(set(index) | set(declared))
    plans, unplanned = _plan_each(keystore, selected, index, declared, now, force)
    if check:
        checked = {p.name: _check_result(p, now) for p in plans}
        return RenewReport(tuple({**unplanned, **checked}[n] for n in selected), now)

    busy = [p for p in plans if p.action != renewal.SKIP or p.check_ari]
    results: dict[str, CertResult] = {p.name: _skip_result(p) for p in plans if p not in busy}
    results.update(unplanned)
    deployed = DeployResult({})
    if busy:
        # One renew run at a time: a second one (a timer firing while an operator runs
        # `certman renew`) waits, then decides again on fresh state, never issuing twice.
        with locks.hold(keystore.layout.locks / RUN_LOCK, timeout=keystore.lock_timeout, what="certman renew"):
            fresh, unplanned = _replan(keystore, busy, now, force, declared)
            results.update(unplanned)
            runner = _Runner(keystore, settings, account, now)
            with concurrent.futures.ThreadPoolExecutor(
                max_workers=min(jobs, len(busy)), thread_name_prefix="renew"
            ) as pool:
                for plan, result in zip(fresh, pool.map(runner.run, fresh), strict=True):
                    results[plan.name] = result
            deployed = _deploy_all(keystore, fresh, results, now, deploy_timeout)
    return RenewReport(tuple(results[n] for n in selected), now, deployed)


def _plan_each(
    keystore: FileKeystore,
    names: list[str],
    index: Mapping[str, Mapping[str, Any]],
    declared: Mapping[str, CertSpec],
    now: datetime.datetime,
    force: bool,
) -> tuple[list[_Plan], dict[str, CertResult]]:
    """A plan per certificate; one that cannot be planned (say, a corrupt state.json)
    becomes a failed result of its own instead of stopping the whole batch."""
    try:
        states: Mapping[str, dict[str, Any]] | None = keystore.read_states(names)
    except CertmanError:
        # Some state file is unreadable: read them one by one so only its certificate fails.
        states = None
    plans: list[_Plan] = []
    unplanned: dict[str, CertResult] = {}
    for name in names:
        try:
            state = states[name] if states is not None else keystore.read_state(name)
            plans.append(_plan(keystore, name, index.get(name), state, declared.get(name), now, force))
        except CertmanError as exc:
            unplanned[name] = CertResult(
                name, "failed", "could not decide whether to renew", error=exc.message, hint=exc.hint
            )
        except (TypeError, ValueError, AttributeError) as exc:
            # Only stored data can carry wrong types here: a hand-edited or corrupt state file.
            log.debug("planning %s failed", name, exc_info=True)
            unplanned[name] = CertResult(
                name,
                "failed",
                "could not decide whether to renew",
                error=f"malformed renewal state in {keystore.layout.state(name)}: {exc}",
                hint="fix or remove that state.json: it holds renewal bookkeeping (retries, ARI, "
                "pending deploys), not the certificate",
            )
    return plans, unplanned


def _replan(
    keystore: FileKeystore, plans: list[_Plan], now: datetime.datetime, force: bool, declared: Mapping[str, CertSpec]
) -> tuple[list[_Plan], dict[str, CertResult]]:
    """The plans again from the index and states as they are now that we hold the run lock."""
    return _plan_each(keystore, [p.name for p in plans], keystore.read_index(), declared, now, force)


def _plan(
    keystore: FileKeystore,
    name: str,
    entry: Mapping[str, Any] | None,
    state: dict[str, Any],
    declared: CertSpec | None,
    now: datetime.datetime,
    force: bool,
) -> _Plan:
    if entry is None or declared is not None and _declaration_changed(keystore, declared):
        reason = "declared in certman.toml, not yet issued" if entry is None else "its declaration changed"
        failures = int(state.get("consecutive_failures") or 0)
        next_attempt = parse_time(state.get("next_attempt"))
        if failures and next_attempt is not None and now < next_attempt and not force:
            return _Plan(
                name,
                renewal.SKIP,
                f"{reason}; backing off after {failures} failure(s) until {format_time(next_attempt)}",
                entry,
                state,
                declared,
                next_attempt,
            )
        return _Plan(name, ISSUE, reason, entry, state, declared, now)
    marked = (
        not force and entry.get("revoked_serial") is not None and entry.get("revoked_serial") == entry.get("serial")
    )
    revoked = keystore.read_revocation(name, str(entry.get("serial"))) if marked else None
    if revoked is not None:
        return _Plan(
            name,
            renewal.SKIP,
            f"revoked ({revoked.get('reason', 'unspecified')}) on "
            f"{revoked.get('revoked_at', 'an unknown date')}; `certman renew --force {name}` or "
            "`certman issue` renews it",
            entry,
            state,
            declared,
        )
    decision = renewal.decide(name, entry, state, now, force=force)
    check_ari = decision.action == renewal.SKIP and renewal.ari_check_due(entry, state, now)
    return _Plan(name, decision.action, decision.reason, entry, state, declared, decision.renew_at, check_ari)


def next_step(
    keystore: FileKeystore,
    name: str,
    entry: Mapping[str, Any] | None,
    state: dict[str, Any],
    declared: CertSpec | None,
    now: datetime.datetime,
) -> renewal.Decision:
    """What the next `certman renew` (without --force) does with ``name``, and why.

    The one place `explain` and `show` ask, so that they can never drift from renew.
    """
    plan = _plan(keystore, name, entry, state, declared, now, False)
    return renewal.Decision(renewal.RENEW if plan.action == ISSUE else plan.action, plan.reason, plan.renew_at)


def _declaration_changed(keystore: FileKeystore, declared: CertSpec) -> bool:
    return keystore.read_spec(declared.name).to_dict() != declared.storable().to_dict()


def _check_result(plan: _Plan, now: datetime.datetime) -> CertResult:
    action = "not-due" if plan.action == renewal.SKIP else "due"
    reason = plan.reason
    if plan.check_ari:
        reason += " (the CA's ARI window will be checked first)"
    return replace(_skip_result(plan), action=action, reason=reason)


def _skip_result(plan: _Plan) -> CertResult:
    entry = plan.entry or {}
    state = plan.state
    return CertResult(
        plan.name,
        "skipped",
        plan.reason,
        serial=entry.get("serial"),
        not_after=parse_time(entry.get("not_after")),
        next_renewal=plan.renew_at,
        error=state.get("last_error") if state.get("consecutive_failures") else None,
        last_success=parse_time(state.get("last_success")),
        last_failure=parse_time(state.get("last_failure")),
        consecutive_failures=int(state.get("consecutive_failures") or 0),
    )


class _Runner:
    """The per-certificate work of one run; shares one ACME session per CA across threads."""

    def __init__(
        self, keystore: FileKeystore, settings: Settings, account: AccountSettings | None, now: datetime.datetime
    ) -> None:
        self.keystore = keystore
        self.settings = settings
        self.account = account
        self.now = now
        self._sessions: dict[str, AcmeSession | None] = {}
        self._lock = threading.Lock()

    def run(self, plan: _Plan) -> CertResult:
        try:
            if plan.check_ari:
                self._refresh_ari(plan)
            if plan.action in (renewal.RENEW, ISSUE):
                return self._issue(plan)
            if plan.action == renewal.DEPLOY:
                spec = plan.spec or self.keystore.read_spec(plan.name)
                serial = str((plan.entry or {}).get("serial", ""))
                plan.deployment = (spec, deployment_of(self.keystore, spec, serial))
                return replace(_skip_result(plan), action="deployed")
            return _skip_result(plan)
        except CertmanError as exc:
            return self._record_failure(plan, exc.message, exc.hint, exc)
        except Exception as exc:  # one certificate's bug must not stop the batch
            log.debug("renewing %s failed", plan.name, exc_info=True)
            return self._record_failure(
                plan, f"internal error: {type(exc).__name__}: {exc}", "run with -vv and report it", exc
            )

    def _session(self, spec: CertSpec) -> AcmeSession | None:
        """A session for ARI requests, or None when we hold no account at this CA or it is down."""
        from ..ca.accounts import account_jwk
        from ..ca.session import AcmeSession

        url = spec.directory_url
        with self._lock:
            if url not in self._sessions:
                stored = self.keystore.load_account(ca_id(url))
                session = None
                if stored is not None:
                    try:
                        session = AcmeSession(
                            url, account_jwk(stored[0]), ca_bundle=spec.ca_bundle, timeout=self.settings.timeout
                        )
                    except CertmanError as exc:
                        log.warning("cannot reach %s for renewal information: %s", url, exc)
                self._sessions[url] = session
            return self._sessions[url]

    def _refresh_ari(self, plan: _Plan) -> None:
        entry = plan.entry or {}
        cert_id = str(entry["ari_cert_id"])
        spec = plan.spec or self.keystore.read_spec(plan.name)
        session = self._session(spec)
        now = self.now
        if session is None or not session.supports_ari:
            plan.state["ari"] = {
                "cert_id": cert_id,
                "unsupported": True,
                "next_check": format_time(now + ARI_RECHECK_UNSUPPORTED),
            }
        else:
            try:
                info = session.renewal_info(cert_id)
            except CertmanError as exc:
                log.warning("renewal information for %s: %s; using the lifetime rule", plan.name, exc)
                plan.state["ari"] = {
                    **(plan.state.get("ari") or {}),
                    "next_check": format_time(now + ARI_RETRY_AFTER_ERROR),
                    "last_error": exc.message,
                }
            else:
                chosen = renewal.ari_renew_at(cert_id, info.window_start, info.window_end)
                plan.state["ari"] = {
                    "cert_id": cert_id,
                    "window_start": format_time(info.window_start),
                    "window_end": format_time(info.window_end),
                    "explanation_url": info.explanation_url,
                    "chosen": format_time(chosen),
                    "fetched_at": format_time(now),
                    "next_check": format_time(renewal.ari_next_check(now, info.retry_after)),
                }
        self._write_state(plan.name, plan.state)
        decision = renewal.decide(plan.name, entry, plan.state, now)
        plan.action, plan.reason, plan.renew_at = decision.action, decision.reason, decision.renew_at

    def _issue(self, plan: _Plan) -> CertResult:
        from ..ca.accounts import AccountSettings
        from ..issuance.issue import obtain

        spec = plan.spec or self.keystore.read_spec(plan.name)
        replaces = None
        if plan.action == renewal.RENEW and plan.entry and plan.entry.get("ari_cert_id"):
            session = self._session(spec)
            if session is not None and session.supports_ari:
                replaces = str(plan.entry["ari_cert_id"])
        now = self.now
        account = self.account or AccountSettings(self.settings.email, self.settings.agree_tos)
        result = obtain(
            spec, self.keystore, account=account, timeout=self.settings.timeout, clock=lambda: now, replaces=replaces
        )
        state = plan.state
        state.update(
            {
                "last_attempt": format_time(now),
                "last_success": format_time(now),
                "consecutive_failures": 0,
                "last_error": None,
                "next_attempt": None,
                "retry_after": None,
                "ari": None,
                "deploy": {"pending": bool(spec.reloaders), "serial": result.serial, "error": None},
            }
        )
        self._write_state(plan.name, state)
        if spec.reloaders:
            plan.deployment = (spec, deployment_of(self.keystore, spec, result.serial))
        entry = {
            "not_before": format_time(result.not_before),
            "not_after": format_time(result.not_after),
            "serial": result.serial,
            "renew_before_days": spec.renew_before_days,
        }
        return CertResult(
            plan.name,
            "issued" if plan.action == ISSUE else "renewed",
            plan.reason,
            serial=result.serial,
            not_after=result.not_after,
            next_renewal=renewal.lifetime_renew_at(plan.name, entry),
            last_success=now,
            last_failure=parse_time(state.get("last_failure")),
        )

    def _record_failure(self, plan: _Plan, message: str, hint: str | None, exc: BaseException) -> CertResult:
        now = self.now
        state = plan.state
        failures = int(state.get("consecutive_failures") or 0) + 1
        # A rate limit, or a 503 that said when to come back: honoured across runs.
        retry_after = exc.retry_after if isinstance(exc, RateLimited | CAUnreachable) else None
        next_attempt = renewal.next_attempt_after_failure(now, failures, retry_after)
        state.update(
            {
                "last_attempt": format_time(now),
                "last_failure": format_time(now),
                "consecutive_failures": failures,
                "last_error": message,
                "retry_after": format_time(retry_after),
                "next_attempt": format_time(next_attempt),
            }
        )
        try:
            self._write_state(plan.name, state)
        except CertmanError as write_error:
            log.error("cannot record the failure of %s: %s", plan.name, write_error)
        entry = plan.entry or {}
        log.info("%s failed: %s", plan.name, message)
        return CertResult(
            plan.name,
            "failed",
            plan.reason,
            serial=entry.get("serial"),
            not_after=parse_time(entry.get("not_after")),
            next_renewal=next_attempt,
            error=message,
            hint=hint,
            last_success=parse_time(state.get("last_success")),
            last_failure=now,
            consecutive_failures=failures,
        )

    def _write_state(self, name: str, state: dict[str, Any]) -> None:
        state["format"] = STATE_FORMAT
        self.keystore.write_state(name, state)


def _deploy_all(
    keystore: FileKeystore, plans: list[_Plan], results: dict[str, CertResult], now: datetime.datetime, timeout: float
) -> DeployResult:
    items = [p.deployment for p in plans if p.deployment is not None and results[p.name].ok]
    if not items:
        return DeployResult({})
    outcome = deploy(items, timeout=timeout)
    for plan in plans:
        if plan.deployment is None or plan.name not in outcome.errors:
            continue
        error = outcome.errors[plan.name]
        serial = plan.deployment[1].serial
        plan.state["deploy"] = {
            "pending": error is not None,
            "serial": serial,
            "error": error.message if error else None,
            "attempted_at": format_time(now),
        }
        plan.state["format"] = STATE_FORMAT
        keystore.write_state(plan.name, plan.state)
        if error is not None:
            results[plan.name] = replace(
                results[plan.name],
                error=f"issued, not deployed: {error.message}",
                hint=error.hint or "the next run retries the reload without issuing",
            )
    return outcome
