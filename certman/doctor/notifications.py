"""Whether notifications can reach the operator: URLs, the apprise extra, the last delivery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import CertmanError
from ..notify import configured_urls, extra_installed, last_delivery_failed, shown
from .report import Check
from .scope import Scope


def notify_checks(scope: Scope) -> Iterator[Check]:
    try:
        urls = configured_urls(scope.settings, scope.env)
    except CertmanError as exc:
        yield Check("notify", False, exc.message, exc.hint)
        return
    if not urls:
        return  # notifications are off: nothing to check
    if not extra_installed():
        yield Check("notify", False, "apprise is not installed", "pip install 'certman[notify]'")
        return
    yield Check("notify", True, ", ".join(shown(u) for u in urls))
    failed = last_delivery_failed(Path(scope.settings.keystore))
    if failed is not None:
        yield Check(
            "notify delivery",
            False,
            f"the last notification, at {failed.at}, was not delivered: {failed.error}",
            "fix the URL, then `certman notify --test`; the next renew sends it again",
        )
