"""One registry for solvers, DNS providers and reloaders.

Built-ins are listed as "module:attribute" strings and imported only when used, so
``certman --help`` stays instant and a source checkout works without installed
metadata. Third parties register through the entry-point groups ``certman.solvers``,
``certman.dns_providers`` and ``certman.reloaders``; those are read only when a name
is not built in, or when listing.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

import msgspec

from ..errors import ConfigError, UsageError

GROUPS = {
    "solvers": "certman.solvers",
    "dns_providers": "certman.dns_providers",
    "reloaders": "certman.reloaders",
}

BUILTIN: dict[str, dict[str, str]] = {
    "solvers": {
        "standalone": "certman.solvers.http01.standalone:StandaloneSolver",
        "webroot": "certman.solvers.http01.webroot:WebrootSolver",
        "tls-alpn-01": "certman.solvers.tlsalpn01:TLSALPN01Solver",
        "dns-01": "certman.solvers.dns01:DNS01Solver",
    },
    "dns_providers": {
        "rfc2136": "certman.solvers.dns01.rfc2136:RFC2136Provider",
        "exec": "certman.solvers.dns01.exec:ExecProvider",
        "lexicon": "certman.solvers.dns01.lexicon:LexiconProvider",
    },
    "reloaders": {
        "nginx": "certman.deploy.reloaders.nginx:NginxReloader",
        "haproxy": "certman.deploy.reloaders.haproxy:HAProxyReloader",
        "caddy": "certman.deploy.reloaders.caddy:CaddyReloader",
        "traefik": "certman.deploy.reloaders.traefik:TraefikReloader",
        "command": "certman.deploy.reloaders.command:CommandReloader",
    },
}


class PluginRef(msgspec.Struct, frozen=True):
    kind: str
    name: str
    target: str
    distribution: str

    def load(self) -> Any:
        module_name, _, attr = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"{self.kind[:-1].replace('_', ' ')} plugin {self.name!r} "
                f"from {self.distribution} failed to load: {exc}",
                f"reinstall {self.distribution}",
            ) from exc
        return obj


def available(kind: str) -> dict[str, PluginRef]:
    """Every plugin of ``kind`` by name; a name claimed twice is an error naming both."""
    refs = {name: PluginRef(kind, name, target, "certman") for name, target in BUILTIN[kind].items()}
    for ep in metadata.entry_points(group=GROUPS[kind]):
        dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
        if ep.name in refs:
            if refs[ep.name].target == ep.value:
                continue
            raise ConfigError(
                f"{kind[:-1].replace('_', ' ')} plugin name {ep.name!r} is claimed by both "
                f"{refs[ep.name].distribution} and {dist}",
                f"uninstall one of {refs[ep.name].distribution} and {dist}",
            )
        refs[ep.name] = PluginRef(kind, ep.name, ep.value, dist)
    return refs


def lookup(kind: str, name: str) -> Any:
    """The plugin class (or factory) registered as ``name``."""
    target = BUILTIN[kind].get(name)
    if target is not None:
        return PluginRef(kind, name, target, "certman").load()
    refs = available(kind)
    if name not in refs:
        raise UsageError(
            f"unknown {kind[:-1].replace('_', ' ')} {name!r}",
            f"choose one of: {', '.join(sorted(refs)) or '(none installed)'}",
        )
    return refs[name].load()
