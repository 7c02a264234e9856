"""Typed settings: certman.toml, then CERTMAN_* environment, then flags (flags win).

``Settings`` holds the run-wide choices; ``CertSpec`` is what one certificate is
and how to (re)issue it, stored as ``spec.toml`` beside its versions.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .ca.policy import LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING, check_solver_fits
from .config_forms import coerce
from .errors import ConfigError, UsageError
from .fleet.conninfo import check_store
from .names import Identifier, check_cert_name, default_cert_name, normalise_all
from .paths import absolute, default_config_path, default_keystore, trust_from_environment
from .recording import PATH_SETTINGS, config_relative

SERVER_ALIASES = {"letsencrypt": LETS_ENCRYPT_PRODUCTION, "letsencrypt-staging": LETS_ENCRYPT_STAGING}
DEFAULT_SERVER = "letsencrypt"
KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "rsa2048", "rsa3072", "rsa4096")
DEFAULT_KEY_TYPE = "ecdsa-p256"


def resolve_server(value: str) -> str:
    """Expand an alias and insist on https: a downgrade would expose every request to tampering."""
    url = SERVER_ALIASES.get(value, value)
    if not url.startswith("https://"):
        raise UsageError(
            f"ACME server {value!r} is not an https:// directory URL",
            f"use an https URL or one of: {', '.join(SERVER_ALIASES)}",
        )
    return url


_CA_BUNDLE_HINT = "set --ca-bundle (or ca_bundle) to the PEM file of the CA that signed the server's certificate"


def check_ca_bundle(path: str | None, origin: str = "CA bundle") -> str | None:
    """Insist that a CA bundle is a readable file of PEM certificates, before any request needs it."""
    if path is None:
        return None
    try:
        with open(path, "rb") as bundle:
            if b"-----BEGIN CERTIFICATE-----" not in bundle.read():
                raise ConfigError(f"{origin} {path} holds no PEM certificate", _CA_BUNDLE_HINT)
    except IsADirectoryError:
        raise ConfigError(f"{origin} {path} is a directory, not a file of CA certificates", _CA_BUNDLE_HINT) from None
    except OSError as exc:
        raise ConfigError(f"{origin} {path} cannot be read: {exc.strerror}", _CA_BUNDLE_HINT) from None
    return path


def check_key_type(value: str) -> str:
    if value not in KEY_TYPES:
        raise UsageError(f"unknown key type {value!r}", f"choose one of: {', '.join(KEY_TYPES)}")
    return value


@dataclass(frozen=True)
class Settings:
    """Run-wide settings. Every field can come from certman.toml, CERTMAN_<FIELD> or a flag."""

    server: str = DEFAULT_SERVER
    ca_bundle: str | None = None
    email: str | None = None
    agree_tos: bool = False
    keystore: Path = field(default_factory=default_keystore)
    key_type: str = DEFAULT_KEY_TYPE
    solver: str = "standalone"
    http_address: str = ""
    http_port: int = 80
    webroot: str | None = None
    lock_timeout: float = 30.0
    timeout: float = 90.0
    # The DNS provider of the dns-01 solver (--dns-provider); its own settings come
    # from CERTMAN_<PROVIDER>_* (see `certman plugins NAME`).
    dns_provider: str | None = None
    # Solvers per name pattern ([[solver]] tables: name, match = [...], options), kept raw.
    solvers: tuple[Mapping[str, Any], ...] = ()
    profile: str | None = None
    preferred_chain: str | None = None
    tls_address: str = ""
    tls_port: int = 443
    # Where `--dry-run` finalizes: a staging CA standing in for ``server`` (certman.ca.twins).
    dry_run_server: str | None = None
    # Declared certificates ([[certificate]] tables), kept raw for the renewal job.
    certificates: tuple[Mapping[str, Any], ...] = ()
    # The run log (certman.log_file): None is <keystore>/logs/certman.log, "" none at all.
    log_file: str | None = None
    log_retention_days: int = 30
    # Apprise URLs (they carry tokens) in a 0600 file, never inline (certman.notify).
    notify_file: str | None = None
    # Notify when a certificate has fewer days left than this and is not renewing.
    notify_days: int = 7
    # Fleet mode (docs/fleet.md): store's libpq conninfo, this host's name, fleet key file, lease seconds.
    store: str | None = None
    host_id: str | None = None
    store_key_file: str | None = None
    lease_ttl: float = 600.0

    @property
    def directory_url(self) -> str:
        return resolve_server(self.server)


_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}
_FIELD_DEFAULTS = {f.name: f.default for f in fields(Settings)}


def _coerce(key: str, value: Any, origin: str, written: str | None = None) -> Any:
    return coerce(key, value, origin, kind=str(_FIELD_TYPES[key]), default=_FIELD_DEFAULTS[key], written=written)


def load_settings(
    config_path: Path | None = None, *, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Merge defaults < certman.toml < CERTMAN_* env < ``overrides`` (flags; None means unset)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    explicit = config_path or (Path(env["CERTMAN_CONFIG"]) if env.get("CERTMAN_CONFIG") else None)
    path = explicit or default_config_path()
    if explicit is not None or path.exists():
        values.update(_read_config_file(path))
    given = {f"CERTMAN_{k.upper()}": k for k in _FIELD_TYPES if k not in ("certificates", "solvers")}
    for var, key in given.items():
        if env.get(var):
            values[key] = _at_cwd(key, _coerce(key, env[var], "environment", var))
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _at_cwd(key, _coerce(key, value, f"option --{key.replace('_', '-')}"))
    values.setdefault("keystore", Path(absolute(default_keystore(env))))
    # Trust the environment chose is recorded like a flag's, so renewals keep it (docs/renewal.md).
    trust = None if "ca_bundle" in values else trust_from_environment(env)
    if trust is not None:
        values["ca_bundle"] = trust[1]
    settings = Settings(**values)
    check_key_type(settings.key_type)
    return settings


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist", "create it, or drop --config / CERTMAN_CONFIG"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}",
            "make it readable by this user, or point --config elsewhere",
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start})",
            "TOML files are UTF-8: save it as UTF-8, e.g. iconv -f latin1 -t utf-8",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not valid TOML: {exc}",
            'strings need quotes (email = "ops@example.com"); tables repeat as [[certificate]]',
        ) from None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = {"certificate": "certificates", "solver": "solvers"}.get(key, key.replace("-", "_"))
        name = "solver" if name == "solvers" and isinstance(value, str) else name  # solver = "x", not [[solver]]
        if name not in _FIELD_TYPES:
            raise ConfigError(
                f"config file {path}: unknown setting {key!r}",
                f"known settings: {', '.join(sorted(k for k in _FIELD_TYPES if k not in ('certificates', 'solvers')))}",
            )
        values[name] = _coerce(name, value, f"config file {path}", key)
    if values.get("store") is not None:  # certman.toml is often world-readable: no password in it
        check_store(values["store"], f"config file {path}")
    return config_relative(values, path.parent)


def _at_cwd(key: str, value: Any) -> Any:
    return (Path if key == "keystore" else str)(absolute(value)) if key in PATH_SETTINGS and value != "" else value


@dataclass(frozen=True)
class SolverSpec:
    """A solver plugin, its options, and the identifiers it answers for (empty: all the others)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    match: tuple[str, ...] = ()

    def matches(self, identifier: Identifier) -> bool:
        return any(fnmatch.fnmatchcase(identifier.value, pattern) for pattern in self.match)


# The longest validity the CA/Browser Forum has allowed since 2020, in days.
MAX_RENEW_BEFORE_DAYS = 398


@dataclass(frozen=True)
class CertSpec:
    """One certificate: what it covers and how to (re)issue it."""

    name: str
    identifiers: tuple[Identifier, ...]
    server: str
    solvers: tuple[SolverSpec, ...]
    key_type: str = DEFAULT_KEY_TYPE
    ca_bundle: str | None = None
    reloaders: tuple[Mapping[str, Any], ...] = ()
    profile: str | None = None
    # Renew this many days before expiry instead of the lifetime rule (docs/renewal.md).
    renew_before_days: float | None = None
    # Issuer CN of the chain to prefer when the CA offers alternates.
    preferred_chain: str | None = None
    # CAs tried in order when ``server`` fails: {"server": url, "ca_bundle": path (optional)}.
    fallback: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        check_cert_name(self.name)
        check_key_type(self.key_type)
        resolve_server(self.server)
        for entry in self.fallback:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("server"), str):
                raise UsageError(f"certificate {self.name}: a fallback CA needs a 'server' URL")
            resolve_server(entry["server"])
        if not self.solvers:
            raise UsageError(f"certificate {self.name}: no solver configured")
        if self.renew_before_days is not None and not 0 < self.renew_before_days <= MAX_RENEW_BEFORE_DAYS:
            raise UsageError(
                f"certificate {self.name}: renew_before_days = {self.renew_before_days} is not a number of days "
                f"above 0 and at most {MAX_RENEW_BEFORE_DAYS}",
                "e.g. renew_before_days = 30, or leave it out: then renewal starts with 1/3 of the lifetime left",
            )
        for ident in self.identifiers:
            check_solver_fits(self.solver_for(ident).name, ident)

    def solver_for(self, identifier: Identifier) -> SolverSpec:
        for spec in self.solvers:
            if spec.matches(identifier):
                return spec
        for spec in self.solvers:
            if not spec.match:
                return spec
        raise UsageError(
            f"certificate {self.name}: no solver matches {identifier}", "add a solver without 'match' as the default"
        )

    @property
    def directory_url(self) -> str:
        return resolve_server(self.server)

    def storable(self) -> CertSpec:
        """This spec without inline secrets: spec.toml records how to re-issue, never a secret."""
        from .plugins.settings import secret_option_names

        solvers = tuple(
            replace(
                s,
                options={
                    k: v for k, v in s.options.items() if k not in secret_option_names("solvers", s.name, s.options)
                },
            )
            for s in self.solvers
        )
        return replace(self, solvers=solvers)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "identifiers": [i.value for i in self.identifiers],
            "server": self.server,
            "key_type": self.key_type,
        }
        if self.ca_bundle:
            data["ca_bundle"] = self.ca_bundle
        if self.profile:
            data["profile"] = self.profile
        if self.preferred_chain:
            data["preferred_chain"] = self.preferred_chain
        if self.fallback:
            data["fallback"] = [dict(f) for f in self.fallback]
        data["solver"] = [
            {"name": s.name, **({"match": list(s.match)} if s.match else {}), **dict(s.options)} for s in self.solvers
        ]
        if self.reloaders:
            data["reloader"] = [dict(r) for r in self.reloaders]
        if self.renew_before_days is not None:
            data["renew_before_days"] = self.renew_before_days
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str) -> CertSpec:
        try:
            solvers = tuple(
                SolverSpec(
                    name=str(s["name"]),
                    match=tuple(s.get("match", ())),
                    options={k: v for k, v in s.items() if k not in ("name", "match")},
                )
                for s in data["solver"]
            )
            return cls(
                name=str(data["name"]),
                identifiers=normalise_all(data["identifiers"]),
                server=str(data["server"]),
                solvers=solvers,
                key_type=str(data.get("key_type", DEFAULT_KEY_TYPE)),
                ca_bundle=data.get("ca_bundle"),
                reloaders=tuple(data.get("reloader", ())),
                profile=data.get("profile"),
                renew_before_days=(
                    float(data["renew_before_days"]) if data.get("renew_before_days") is not None else None
                ),
                preferred_chain=data.get("preferred_chain"),
                fallback=tuple(data.get("fallback", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{origin}: missing or malformed field {exc}") from None
        except UsageError as exc:
            raise ConfigError(f"{origin}: {exc.message}", exc.hint) from None


def solver_from_settings(settings: Settings) -> SolverSpec:
    """The solver the run-wide settings describe (flags such as --solver, --http-port)."""
    if settings.solver == "standalone":
        return SolverSpec("standalone", {"address": settings.http_address, "port": settings.http_port})
    if settings.solver == "webroot":
        if not settings.webroot:
            raise UsageError("the webroot solver needs a directory", "pass --webroot /var/www/html")
        return SolverSpec("webroot", {"path": settings.webroot})
    if settings.solver == "dns-01":
        return SolverSpec("dns-01", {"provider": settings.dns_provider} if settings.dns_provider else {})
    if settings.solver == "tls-alpn-01":
        return SolverSpec("tls-alpn-01", {"address": settings.tls_address, "port": settings.tls_port})
    return SolverSpec(settings.solver)


def solvers_from_tables(tables: tuple[Mapping[str, Any], ...], origin: str) -> tuple[SolverSpec, ...]:
    """``[[solver]]`` tables (name, optional match patterns, the solver's options) as SolverSpecs."""
    specs = []
    for table in tables:
        if not isinstance(table.get("name"), str):
            raise ConfigError(f"{origin}: every [[solver]] needs a name", 'e.g. name = "dns-01"')
        match = table.get("match", ())
        if not isinstance(match, (list, tuple)) or not all(isinstance(m, str) for m in match):
            raise ConfigError(
                f"{origin}: [[solver]] {table['name']}: match must be a list of name patterns",
                'e.g. match = ["*.example.com"]',
            )
        specs.append(
            SolverSpec(table["name"], {k: v for k, v in table.items() if k not in ("name", "match")}, tuple(match))
        )
    return tuple(specs)


def spec_from_settings(
    names: list[str] | tuple[str, ...], settings: Settings, *, name: str | None = None, use_solver_tables: bool = True
) -> CertSpec:
    """Build the CertSpec that ``certman issue NAME...`` asks for.

    ``[[solver]]`` tables, when configured, choose the solver per name, unless the
    caller says a --solver flag overrides them (``use_solver_tables=False``).
    """
    identifiers = normalise_all(names)
    if use_solver_tables and settings.solvers:
        solvers = solvers_from_tables(settings.solvers, "config")
    else:
        solvers = (solver_from_settings(settings),)
    return CertSpec(
        name=check_cert_name(name) if name else default_cert_name(identifiers),
        identifiers=identifiers,
        server=resolve_server(settings.server),
        solvers=solvers,
        key_type=settings.key_type,
        ca_bundle=check_ca_bundle(settings.ca_bundle),
        profile=settings.profile,
        preferred_chain=settings.preferred_chain,
    )
