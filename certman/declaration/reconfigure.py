"""Changing a stored certificate's settings without ordering one (`certman reconfigure`).

reconfigure(keystore, name, change)
  -> plan_reconfigure: the record with ``change`` applied, checked by the code issue
     runs before its first request (``check_spec``); nothing written (a --dry-run seam)
  -> write_reconfiguration: under the certificate lock, the new record and a cleared
     backoff; then, if the reloaders changed, the live certificate is redeployed
  -> ReconfigureResult

A name declared in certman.toml is owned by its ``[[certificate]]`` table: neither
``issue`` nor ``reconfigure`` changes it (``check_not_declared``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
from msgspec import structs

from ..config import CertSpec, Settings
from ..deploy.outcome import DeployResult, not_deployed
from ..errors import CertmanError, ConfigError, KeystoreError, UsageError
from ..keystore import FileKeystore
from ..keystore.state_records import RenewalState
from ..keystore.times import Clock, utc_now
from ..names import check_cert_name, default_cert_name, normalise_all
from ..solvers.shared import Rendezvous
from .change import SpecChange, apply_change
from .checks import check_spec
from .diff import SpecDiff, diff_specs

log = logging.getLogger(__name__)


class Reconfiguration(msgspec.Struct, frozen=True):
    """A certificate's record before and after a change, and what differs; nothing written yet."""

    before: CertSpec
    after: CertSpec
    diff: SpecDiff


class ReconfigureResult(msgspec.Struct, frozen=True):
    """What `certman reconfigure` did: the change, whether a backoff was cleared, the redeploy."""

    name: str
    diff: SpecDiff
    backoff_cleared: bool
    deploy: DeployResult = msgspec.field(default_factory=lambda: DeployResult({}))

    def raise_for_deploy(self) -> None:
        """Raise ``ReloadError`` (exit 6) if the reloaders did not take the live certificate."""
        error = not_deployed(self.name, self.deploy)
        if error is not None:
            raise error

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.diff.to_dict(),
            "ordered": False,
            "backoff_cleared": self.backoff_cleared,
            "deploy": self.deploy.to_dict(),
        }


def declared_names(settings: Settings) -> set[str]:
    """The keystore names of the ``[[certificate]]`` tables in ``settings`` (bad tables skipped:
    renew and doctor report those)."""
    names = set()
    for table in settings.certificates:
        try:
            given = table.get("names")
            identifiers = normalise_all([given] if isinstance(given, str) else list(given or ()))
            names.add(check_cert_name(str(table["name"])) if table.get("name") else default_cert_name(identifiers))
        except (CertmanError, TypeError):
            continue
    return names


def check_not_declared(name: str, settings: Settings | None, config_file: Path | str | None) -> None:
    """``UsageError`` (exit 2) if ``name`` is declared in certman.toml, whose table owns its settings."""
    if settings is None or name not in declared_names(settings):
        return
    where = str(config_file or "certman.toml")
    raise UsageError(
        f"certificate {name} is declared in {where}: its [[certificate]] table owns its settings",
        f"edit that table in {where}; the next `certman renew` applies it",
    )


def spec_to_issue(keystore: FileKeystore, new: CertSpec, change: SpecChange) -> tuple[CertSpec, SpecDiff | None]:
    """What `certman issue` orders: ``new`` for a certificate without a record, else the
    record with ``change`` applied, so every setting not given is kept; and what changed.

    An unreadable record is replaced by ``new``: issuing again is how it is repaired.
    """
    try:
        stored = keystore.read_spec(new.name)
    except UsageError:
        return new, None
    except (KeystoreError, ConfigError) as exc:
        log.warning("%s; issuing with the settings given now, which replace it", exc.message)
        return new, None
    after = apply_change(stored, change)
    return after, diff_specs(stored, after)


def plan_reconfigure(
    keystore: FileKeystore,
    name: str,
    change: SpecChange,
    *,
    settings: Settings | None = None,
    config_file: Path | str | None = None,
) -> Reconfiguration:
    """The record of ``name`` with ``change`` applied and checked; nothing is written.

    ``settings``: to refuse a name declared in certman.toml (``config_file`` is named in
    the message). Raises ``UsageError``/``ConfigError`` (exit 2) for an unknown name or
    a bad setting, ``KeystoreError`` (exit 3) for an unreadable record.
    """
    check_not_declared(name, settings, config_file)
    if change.identifiers is not None:
        raise UsageError(
            "reconfigure keeps a certificate's names", f"`certman issue --name {name} NAME...` changes them"
        )
    before = keystore.read_spec(name)
    rendezvous = Rendezvous.under(keystore.root, timeout=keystore.lock_timeout)
    after = check_spec(apply_change(before, change), rendezvous=rendezvous)
    return Reconfiguration(before, after, diff_specs(before, after))


def write_reconfiguration(
    keystore: FileKeystore, plan: Reconfiguration, *, clock: Clock = utc_now, deploy_timeout: float = 120.0
) -> ReconfigureResult:
    """Record ``plan.after``, clear the backoff, and redeploy if the reloaders changed.

    No certificate is ordered: a change that needs one (``plan.diff.reissue``) takes
    effect at the next renewal. Failures and the next-attempt time are cleared, so the
    next `certman renew` tries the new settings; a Retry-After the CA sent stays.
    ``deploy_timeout`` bounds each reloader (seconds). A failed redeploy is in
    ``result.deploy`` (``raise_for_deploy``: exit 6), not raised.
    """
    name, spec = plan.after.name, plan.after
    with keystore.lock_cert(name):
        if plan.diff.changes:
            keystore.write_spec(spec)
        state = keystore.read_state(name)
        cleared = _without_backoff(state, bool(spec.reloaders))
        if cleared != state:
            keystore.write_state(name, cleared)
    deployed = DeployResult({})
    entry = keystore.read_index().get(name)
    if plan.diff.reloaders_changed and spec.reloaders and entry is not None and entry.serial:
        from ..deploy.batch import deploy_issued

        deployed = deploy_issued(keystore, spec, entry.serial, timeout=deploy_timeout, clock=clock)
    backoff = state.consecutive_failures > 0 or state.next_attempt is not None
    return ReconfigureResult(name, plan.diff, backoff, deployed)


def reconfigure(
    keystore: FileKeystore,
    name: str,
    change: SpecChange,
    *,
    settings: Settings | None = None,
    config_file: Path | str | None = None,
    clock: Clock = utc_now,
    deploy_timeout: float = 120.0,
) -> ReconfigureResult:
    """What `certman reconfigure NAME` does: ``plan_reconfigure``, then ``write_reconfiguration``.

    Never orders a certificate. Raises what those raise.
    """
    plan = plan_reconfigure(keystore, name, change, settings=settings, config_file=config_file)
    return write_reconfiguration(keystore, plan, clock=clock, deploy_timeout=deploy_timeout)


def _without_backoff(state: RenewalState, has_reloaders: bool) -> RenewalState:
    # A pending deploy for reloaders that are all gone would be retried for nothing.
    deploy = state.deploy if has_reloaders else None
    return structs.replace(state, consecutive_failures=0, next_attempt=None, deploy=deploy)
