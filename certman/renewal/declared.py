"""Certificates declared in certman.toml (``[[certificate]]`` tables) as CertSpecs.

[[certificate]]
names = ["example.org", "www.example.org"]   # required
name = "example"                              # default: the first name
key_type = "ecdsa-p384"                       # default: the run-wide key_type
server = "letsencrypt"                        # default: the run-wide server
renew_before_days = 30                        # default: the lifetime rule
dry_run_server = "https://staging.example/dir"  # default: the run-wide one, or the CA's twin
[[certificate.solver]]                        # default: the run-wide solver
name = "webroot"
path = "/var/www/html"
[[certificate.reloader]]
name = "command"
argv = ["systemctl", "reload", "nginx"]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..config import CertSpec, Settings, solver_from_settings
from ..errors import CertmanError, ConfigError, UsageError
from ..names import check_cert_name, default_cert_name, normalise_all
from ..recording import recorded_spec

if TYPE_CHECKING:
    from ..keystore.contract import Keystore

KNOWN_KEYS = {
    "names",
    "name",
    "key_type",
    "server",
    "ca_bundle",
    "profile",
    "renew_before_days",
    "solver",
    "reloader",
    "dry_run_server",
}


def declared_spec(table: Mapping[str, Any], settings: Settings, index: int) -> CertSpec:
    origin = f"certman.toml [[certificate]] #{index + 1}"
    unknown = set(table) - KNOWN_KEYS
    if unknown:
        raise ConfigError(
            f"{origin}: unknown key(s) {', '.join(sorted(unknown))}", f"known keys: {', '.join(sorted(KNOWN_KEYS))}"
        )
    names = table.get("names")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names:
        raise ConfigError(f"{origin}: names must be a non-empty list of domain names")
    try:
        identifiers = normalise_all(names)
        name = check_cert_name(str(table["name"])) if table.get("name") else default_cert_name(identifiers)
    except UsageError as exc:
        raise ConfigError(f"{origin}: {exc.message}", exc.hint) from None
    if "solver" in table:
        solvers = table["solver"]
    elif settings.solvers:
        solvers = [dict(t) for t in settings.solvers]
    else:
        default = solver_from_settings(settings)
        solvers = [{"name": default.name, **dict(default.options)}]
    data = {
        "name": name,
        "identifiers": [i.value for i in identifiers],
        "server": table.get("server", settings.server),
        "key_type": table.get("key_type", settings.key_type),
        "ca_bundle": table.get("ca_bundle", settings.ca_bundle),
        "profile": table.get("profile"),
        "renew_before_days": table.get("renew_before_days"),
        "solver": solvers,
        "reloader": table.get("reloader", []),
    }
    spec = CertSpec.from_dict(data, origin)
    # Store the resolved URL, as `certman issue` does, so that a declaration compares
    # equal to what was stored from it.
    # Record it too (absolute paths, resolved programs), for the same reason.
    return recorded_spec(CertSpec.from_dict({**spec.to_dict(), "server": spec.directory_url}, origin))


def declared_specs(settings: Settings, keystore: Keystore | None = None) -> dict[str, CertSpec]:
    """Every declared certificate by keystore name; a name declared twice is an error.

    With ``keystore``, a declaration that names no CA bundle keeps the one recorded for
    the same server: trust that came from REQUESTS_CA_BUNDLE at the first run by hand
    stays for the timer, whose environment lacks it.
    """
    specs: dict[str, CertSpec] = {}
    for index, table in enumerate(settings.certificates):
        spec = declared_spec(table, settings, index)
        if keystore is not None and spec.ca_bundle is None:
            spec = _with_recorded_trust(spec, keystore)
        if spec.name in specs:
            raise ConfigError(
                f"certificate {spec.name!r} is declared twice in certman.toml", "give one of them another name = ..."
            )
        specs[spec.name] = spec
    return specs


def _with_recorded_trust(spec: CertSpec, keystore: Keystore) -> CertSpec:
    try:
        stored = keystore.read_spec(spec.name) if keystore.has(spec.name) else None
    except CertmanError:
        return spec  # the plan reports an unreadable record
    if stored is None or not stored.ca_bundle or stored.server != spec.server:
        return spec
    return replace(spec, ca_bundle=stored.ca_bundle)


def declared_dry_run_servers(settings: Settings) -> dict[str, str]:
    """Per declared certificate name, the ``dry_run_server`` its table sets (not inherited)."""
    servers: dict[str, str] = {}
    for index, table in enumerate(settings.certificates):
        server = table.get("dry_run_server")
        if server is None:
            continue
        if not isinstance(server, str):
            raise ConfigError(
                f"certman.toml [[certificate]] #{index + 1}: dry_run_server must be a directory URL or alias"
            )
        servers[declared_spec(table, settings, index).name] = server
    return servers
