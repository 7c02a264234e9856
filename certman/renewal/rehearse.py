"""`certman renew --dry-run`: rehearse every selected certificate, due or not, changing nothing.

As certbot's ``renew --dry-run``, every certificate is rehearsed whether it is due or
not, so the run answers "would each renewal work now?" (``issuance.rehearsal``). No
state is read to decide and none is written: no failure, backoff, ARI window or deploy
mark, no repaired ``live/`` link, no renewal lock. A failed rehearsal is a failed
result (exit 7), as a failed renewal is.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from msgspec import structs

from ..config import CertSpec, Settings
from ..errors import CertmanError
from ..keystore import FileKeystore
from ..keystore.records import IndexEntry
from .declared import declared_dry_run_servers
from .report import CertResult, RenewReport

if TYPE_CHECKING:
    from ..ca.accounts import AccountSettings

log = logging.getLogger(__name__)


def rehearse_each(
    keystore: FileKeystore,
    settings: Settings,
    names: list[str],
    index: Mapping[str, IndexEntry],
    declared: Mapping[str, CertSpec],
    now: datetime.datetime,
    *,
    jobs: int,
    account: AccountSettings | None = None,
) -> RenewReport:
    """A ``RenewReport`` (``dry_run`` set) with one rehearsal per name, ``jobs`` at a time.

    A certificate's dry-run server is its ``[[certificate]]`` table's ``dry_run_server``,
    else the run-wide one, else its CA's known staging twin. Never raises for one
    certificate: its error is its result.
    """
    from ..ca.accounts import AccountSettings

    own = declared_dry_run_servers(settings)
    signer = account or AccountSettings(settings.email, settings.agree_tos)

    def one(name: str) -> CertResult:
        entry = index.get(name)
        base = CertResult(
            name,
            "failed",
            "dry run",
            serial=entry.serial if entry else None,
            not_after=entry.not_after if entry else None,
            dry_run=True,
        )
        try:
            return _rehearse(keystore, settings, declared.get(name) or keystore.read_spec(name), own, signer, base)
        except CertmanError as exc:
            return structs.replace(base, error=exc.message, hint=exc.hint)
        except Exception as exc:  # one certificate's bug must not stop the batch
            log.debug("rehearsing %s failed", name, exc_info=True)
            error = f"internal error: {type(exc).__name__}: {exc}"
            return structs.replace(base, error=error, hint="run with -vv and report it")

    workers = min(jobs, len(names) or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dry-run") as pool:
        results = tuple(pool.map(one, names))
    return RenewReport(results, now, dry_run=True)


def _rehearse(
    keystore: FileKeystore,
    settings: Settings,
    spec: CertSpec,
    own: Mapping[str, str],
    account: AccountSettings,
    base: CertResult,
) -> CertResult:
    from ..issuance.rehearsal import rehearse

    server = own.get(spec.name) or settings.dry_run_server
    result = rehearse(spec, keystore, account=account, dry_run_server=server, timeout=settings.timeout)
    reason = "; ".join([result.summary(), *result.reloaders])
    error = result.reload_error
    if error is not None:
        return structs.replace(base, reason=reason, error=error.message, hint=error.hint)
    return structs.replace(base, action="rehearsed", reason=reason)
