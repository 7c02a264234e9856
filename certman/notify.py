"""Notifications: a failed renewal, or a certificate close to expiry that is not renewing,
reaches the operator through apprise (email, Slack, Matrix, ntfy, Telegram, webhooks...).

The URLs carry tokens, so they come from ``notify_file`` (mode 0600, no more) or from
``CERTMAN_NOTIFY_URLS`` / ``CERTMAN_NOTIFY_URLS_FILE``, one per line, never from
certman.toml; every URL shown anywhere is apprise's privacy rendering, query cut off.
``apprise`` is the optional extra ``certman[notify]``, imported only to send.

Each run's problems are compared with those of the last notification
(``<keystore>/notify.json``): a new problem is sent once, a solved one once as
recovered, an unchanged one not at all, so a twice-daily timer does not repeat itself.
A failed delivery is recorded (doctor shows it) and retried by the next run.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from .errors import CertmanError, ConfigError, UsageError
from .keystore.times import encode_time, utc_now
from .log import register_secret
from .when import days_left

log = logging.getLogger(__name__)

URLS_VAR = "CERTMAN_NOTIFY_URLS"
STATE_FILE = "notify.json"
_EXTRA_HINT = "install the notify extra: pip install 'certman[notify]'"


def configured_urls(settings: Any, env: Mapping[str, str] | None = None) -> list[str]:
    """The apprise URLs of ``notify_file`` and the environment (none: notifications off).
    ``ConfigError`` for a file others may read, or that cannot be read."""
    from .credentials import read_secret

    found: list[str] = []
    if settings.notify_file:
        found += _lines(_read_private(Path(settings.notify_file)))
    found += _lines(read_secret(URLS_VAR, env) or "")
    for url in found:
        for secret in (url, *_tokens(url)):
            register_secret(secret)
    return found


def _tokens(url: str) -> list[str]:
    """The parts of ``url`` that may be tokens: the password, path segments and query values
    of 8 characters or more, and a "host" that is no host name (tgram://TOKEN/CHAT)."""
    from urllib.parse import parse_qsl

    rest = url.split("://", 1)[-1]
    netloc, _, path = rest.partition("/")
    path, _, query = path.partition("?")
    userinfo, _, host = netloc.rpartition("@")
    candidates = [userinfo.partition(":")[2], *path.split("/"), *(v for _, v in parse_qsl(query))]
    if "." not in host:
        candidates.append(host)
    return [c for c in candidates if len(c) >= 8]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip() and not line.startswith("#")]


def _read_private(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"notify_file: cannot read {path}: {exc.strerror}", "create it with mode 0600") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"notify_file: {path} is readable by others (its URLs carry tokens)", f"chmod 600 {path}")
    return data.decode("utf-8", "replace")


def _apprise() -> Any:
    try:
        import apprise
    except ImportError:
        raise UsageError("notifications need the apprise library, which is not installed", _EXTRA_HINT) from None
    return apprise


def extra_installed() -> bool:
    try:
        import apprise  # noqa: F401
    except ImportError:
        return False
    return True


def shown(url: str) -> str:
    """``url`` as it may be shown: apprise's privacy rendering without the query (which can
    hold header tokens), and the tokens ``configured_urls`` registered redacted;
    ``(unrecognised URL)`` when apprise cannot read it."""
    service = _apprise().Apprise.instantiate(url)
    if not service:
        return "(unrecognised URL)"
    text = str(service.url(privacy=True)).split("?", 1)[0]
    # Apprise hides what it knows to be secret; a token in a webhook's path it shows.
    for token in sorted(_tokens(url), key=len, reverse=True):
        text = text.replace(token, "[redacted]")
    return text


def send(urls: Iterable[str], title: str, body: str, *, failure: bool) -> str | None:
    """Deliver to every URL; None when all took it, else what went wrong (no secrets)."""
    apprise = _apprise()
    bundle = apprise.Apprise()
    bad = [shown(u) for u in urls if not bundle.add(u)]
    if bad:
        return f"unrecognised URL(s): {', '.join(bad)}"
    kind = apprise.NotifyType.FAILURE if failure else apprise.NotifyType.SUCCESS
    if not bundle.notify(title=title, body=body, notify_type=kind):
        return "apprise could not deliver to every URL (run with -v for the details)"
    return None


class Delivery(msgspec.Struct, frozen=True):
    """The last delivery attempt, as ``notify.json`` keeps it."""

    at: str | None
    error: str | None


def read_state(keystore: Path) -> tuple[dict[str, str], Delivery | None]:
    """The problems last notified (key -> text) and the last delivery."""
    try:
        raw = json.loads((keystore / STATE_FILE).read_text())
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError):
        return {}, None  # a damaged file only means notifying once more
    problems = raw.get("problems") if isinstance(raw, dict) else None
    delivery = raw.get("last_delivery") if isinstance(raw, dict) else None
    return (
        {str(k): str(v) for k, v in problems.items()} if isinstance(problems, dict) else {},
        Delivery(delivery.get("at"), delivery.get("error")) if isinstance(delivery, dict) else None,
    )


def _write_state(keystore: Path, problems: Mapping[str, str], delivery: Delivery) -> None:
    from .keystore import files
    from .keystore.index import dump_json
    from .keystore.layout import SECRET_MODE

    data = {"problems": dict(problems), "last_delivery": {"at": delivery.at, "error": delivery.error}}
    files.write_file(keystore / STATE_FILE, dump_json(data), SECRET_MODE)


def problems_of(report: Any, notify_days: int) -> dict[str, str]:
    """What is wrong after a renew run: each failed certificate, and each one with less than
    ``notify_days`` left that this run did not renew."""
    now = report.checked_at
    found: dict[str, str] = {}
    for result in report.results:
        if result.error is not None:
            found[f"failing:{result.name}"] = f"{result.name}: renewal failed: {result.error}"
        renewed = result.action in ("renewed", "issued")
        if not renewed and result.not_after is not None and days_left(result.not_after, now) < notify_days:
            left = days_left(result.not_after, now)
            found[f"expiring:{result.name}"] = f"{result.name}: {left} day(s) left and not renewed"
    return found


def after_renew(keystore: Any, settings: Any, report: Any) -> str | None:
    """Notify what changed since the last notification; the delivery error, if any.
    Never raises for a delivery: a notification must not fail the run it reports."""
    try:
        urls = configured_urls(settings)
    except CertmanError as exc:
        log.warning("not notifying: %s", exc.message)
        return exc.message
    if not urls:
        return None
    with keystore.lock_keystore():
        before, _ = read_state(keystore.root)
        now_problems = problems_of(report, settings.notify_days)
        new = {k: v for k, v in now_problems.items() if before.get(k) != v and k not in before}
        solved = {k: v for k, v in before.items() if k not in now_problems}
        if not new and not solved:
            return None
        lines = [f"PROBLEM {v}" for v in new.values()] + [f"RECOVERED {v}" for v in solved.values()]
        title = f"certman on {socket.gethostname()}: " + (
            f"{len(new)} problem(s)" if new else f"{len(solved)} recovered"
        )
        try:
            error = send(urls, title, "\n".join(lines), failure=bool(new))
        except CertmanError as exc:
            error = exc.message
        delivery = Delivery(encode_time(utc_now()), error)
        # Only what reached the operator counts as notified; the rest is tried again.
        _write_state(keystore.root, now_problems if error is None else before, delivery)
    if error:
        log.warning("notification not delivered: %s", error)
    return error


def send_test(settings: Any) -> list[str]:
    """`certman notify --test`: a test message to every URL; the URLs as shown.
    ``UsageError`` without URLs or without apprise, ``CertmanError`` when delivery fails."""
    urls = configured_urls(settings)
    if not urls:
        raise UsageError("no notification URLs configured", f"set notify_file in certman.toml, or {URLS_VAR}")
    error = send(urls, f"certman on {socket.gethostname()}: test", "A test notification from certman.", failure=False)
    if error:
        raise CertmanError(f"test notification not delivered: {error}", "check the URLs with `certman doctor`")
    return [shown(u) for u in urls]


def last_delivery_failed(keystore: Path) -> Delivery | None:
    """The last delivery if it failed (doctor reports it)."""
    _, delivery = read_state(keystore)
    if delivery is None or delivery.error is None:
        return None
    return delivery
