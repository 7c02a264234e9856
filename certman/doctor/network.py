"""The CAs and proxies a run talks to: reachable, trusted, serving what it should."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

from ..config import check_ca_bundle, resolve_server
from ..errors import CertmanError
from .accounts import check_account
from .report import Check
from .scope import Scope

PROBE_TIMEOUT = 5.0


def ca_checks(scope: Scope) -> Iterator[Check]:
    """Every CA a run may use: the run-wide server, and each certificate's server and fallbacks;
    after each CA that answers, the account stored for it (``accounts.check_account``).

    The run-wide server goes through ``resolve_server`` as ``certman issue`` does, so a
    misspelt alias is a FAIL naming it. A certificate's CA bundle must be an absolute
    path: the timer runs certman from ``/``.
    """
    bundles: dict[str, str | None] = {}
    relative: dict[str, Check] = {}
    try:
        bundles[resolve_server(scope.settings.server)] = scope.settings.ca_bundle
    except CertmanError as exc:
        yield Check(f"CA {scope.settings.server}", False, exc.message, exc.hint)
    for name, spec in scope.certificates.items():
        cas = [(spec.server, spec.ca_bundle)] + [(e["server"], e.get("ca_bundle")) for e in spec.fallback]
        for server, bundle in cas:
            url = resolve_server(server)  # a spec's servers were resolved when it was read
            bundles.setdefault(url, bundle)
            if bundle and not Path(bundle).is_absolute():
                relative.setdefault(
                    url,
                    Check(
                        f"CA {url}",
                        False,
                        f"certificate {name}: CA bundle {bundle} is a relative path, "
                        "which a renewal started from / would not find",
                        f"record the absolute path of {bundle}",
                    ),
                )
    for url, bundle in bundles.items():
        reached = relative.get(url) or check_ca(url, bundle)
        yield reached
        # The account is asked about only at a CA this run just reached.
        account = check_account(scope.settings.keystore, url, bundle) if reached.ok else None
        if account is not None:
            yield account


def check_ca(directory_url: str, ca_bundle: str | None) -> Check:
    """The directory answers over https, with a certificate we trust."""
    import requests

    name = f"CA {directory_url}"
    try:
        response = requests.get(directory_url, verify=ca_bundle or True, timeout=PROBE_TIMEOUT, allow_redirects=False)
    except requests.exceptions.SSLError:
        return Check(
            name,
            False,
            "its TLS certificate is not trusted",
            "pass --ca-bundle with the CA that signed the server's certificate",
        )
    except requests.exceptions.RequestException as exc:
        reason = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "connection failed"
        return Check(name, False, f"unreachable ({reason})", "check the URL, DNS, firewall and proxy settings")
    except OSError as exc:
        # requests raises a bare OSError when the CA bundle cannot be loaded.
        try:
            check_ca_bundle(ca_bundle)
        except CertmanError as bad_bundle:
            return Check(name, False, bad_bundle.message, bad_bundle.hint)
        return Check(name, False, f"cannot connect: {exc}", "check --ca-bundle and the network settings")
    try:
        directory = response.json()
        ok = response.status_code == 200 and isinstance(directory, dict) and "newNonce" in directory
    except ValueError:
        ok = False
    if not ok:
        return Check(
            name,
            False,
            f"answered HTTP {response.status_code} without an ACME directory",
            "check that the URL is the CA's directory",
        )
    return Check(name, True, "reachable, TLS trusted, ACME directory served")


def check_proxy(reloader: str, endpoint: tuple[str, int]) -> Check:
    """The proxy a reloader verifies accepts TCP connections."""
    host, port = endpoint
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
    except OSError as exc:
        return Check(
            f"proxy {reloader}",
            False,
            f"{host}:{port} unreachable: {exc.strerror or exc}",
            "start the proxy, or fix the reloader's verify address",
        )
    return Check(f"proxy {reloader}", True, f"{host}:{port} accepts connections")
