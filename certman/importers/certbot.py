"""Import certbot's lineages and ACME accounts into a certman keystore.

certbot keeps, under its config dir (``/etc/letsencrypt``):

    accounts/<host[:port]>/<path>/<id>/private_key.json   the account key as a JWK
    accounts/<host[:port]>/<path>/<id>/regr.json          {"uri": account URL, ...}
    archive/<name>/{cert,chain,fullchain,privkey}N.pem    every version
    live/<name>/*.pem                                     symlinks to the current version
    renewal/<name>.conf                                   server, account, key type, authenticator, hooks

Each lineage becomes a certificate with every archive version (the one live in
certbot last, so it is live here too) and a spec built from its renewal conf. The
account comes along with its URL, so renewals continue under the same account (ARI's
``replaces`` needs that). Importing again only adds what is new; certbot's files are
only read.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import CertSpec, SolverSpec, resolve_server
from ..errors import CertmanError, ConfigError, UsageError
from ..keystore import AccountRecord, FileKeystore, VersionMeta, ca_id
from ..keystore.times import Clock, utc_now
from ..names import normalise_all
from . import renewal_conf

log = logging.getLogger(__name__)

DEFAULT_CONFIG_DIR = Path("/etc/letsencrypt")
_VERSION_FILE = re.compile(r"^cert(\d+)\.pem$")
_CURVES = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}


@dataclass
class ImportResult:
    """What one import did: per certificate and per account, and what it could not carry over."""

    certificates_imported: dict[str, list[str]] = field(default_factory=dict)  # name -> new versions
    certificates_unchanged: list[str] = field(default_factory=list)
    accounts_imported: list[str] = field(default_factory=list)  # account URLs
    accounts_unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # what -> why
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "certificates_imported": self.certificates_imported,
            "certificates_unchanged": self.certificates_unchanged,
            "accounts_imported": self.accounts_imported,
            "accounts_unchanged": self.accounts_unchanged,
            "skipped": self.skipped,
            "warnings": self.warnings,
        }


def import_certbot(
    keystore: FileKeystore,
    config_dir: Path = DEFAULT_CONFIG_DIR,
    *,
    ca_bundle: str | None = None,
    clock: Clock = utc_now,
) -> ImportResult:
    """Import every account and lineage of the certbot ``config_dir`` into ``keystore``."""
    config_dir = Path(config_dir)
    if not (config_dir / "renewal").is_dir() and not (config_dir / "accounts").is_dir():
        raise UsageError(
            f"{config_dir} is not a certbot config directory (no renewal/ or accounts/)",
            "pass --config-dir with the directory certbot was run with",
        )
    now = clock()
    result = ImportResult()
    for account_dir in sorted((config_dir / "accounts").glob("*/**/regr.json")):
        _import_account(keystore, config_dir, account_dir.parent, result, now)
    for conf in sorted((config_dir / "renewal").glob("*.conf")):
        name = conf.name[: -len(".conf")]
        try:
            _import_lineage(keystore, config_dir, name, conf, ca_bundle, result, now)
        except CertmanError as exc:
            result.skipped[f"certificate {name}"] = exc.message
    return result


def _import_account(
    keystore: FileKeystore, config_dir: Path, directory: Path, result: ImportResult, now: datetime.datetime
) -> None:
    from josepy import errors as jose_errors
    from josepy import jwk

    from ..keys import key_to_pem

    relative = directory.relative_to(config_dir / "accounts").parts
    server = "https://" + "/".join(relative[:-1])
    try:
        uri = json.loads((directory / "regr.json").read_text())["uri"]
        account_key = jwk.JWK.json_loads((directory / "private_key.json").read_text())
    except (OSError, ValueError, KeyError, jose_errors.DeserializationError) as exc:
        result.skipped[f"account {directory}"] = f"unreadable: {exc}"
        return
    ca = ca_id(server)
    existing = keystore.load_account(ca)
    if existing is not None:
        if existing[1].uri == uri:
            result.accounts_unchanged.append(uri)
        else:
            result.skipped[f"account {uri}"] = (
                f"certman already has another account for {server} ({existing[1].uri}); not replaced"
            )
        return
    with keystore.lock_keystore():
        keystore.save_account(
            ca,
            key_to_pem(account_key.key),
            AccountRecord(uri=uri, directory=server, created_at=now, imported_from=str(directory)),
        )
    result.accounts_imported.append(uri)


def _import_lineage(
    keystore: FileKeystore,
    config_dir: Path,
    name: str,
    conf_path: Path,
    ca_bundle: str | None,
    result: ImportResult,
    now: datetime.datetime,
) -> None:
    try:
        text = conf_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{conf_path} is not UTF-8 text") from None
    except OSError as exc:
        # e.g. a directory named x.conf: skip that lineage, import the others.
        raise ConfigError(f"cannot read {conf_path}: {exc.strerror}") from None
    conf = renewal_conf.parse(text, str(conf_path))
    params = conf.get("renewalparams", {})
    # Paths under the given config dir win over the absolute ones in the conf, so a
    # copy of /etc/letsencrypt imports from the copy.
    archive = config_dir / "archive" / name
    if not archive.is_dir() and conf.get("archive_dir"):
        archive = Path(conf["archive_dir"])
    versions = _archive_versions(archive)
    if not versions:
        raise ConfigError(f"no certificates in {archive}")
    live_cert = config_dir / "live" / name / "cert.pem"
    live_number = _live_number(live_cert if os.path.lexists(live_cert) else Path(conf.get("cert", "")))
    order = [n for n in versions if n != live_number] + ([live_number] if live_number in versions else [])
    stored = _stored_metas(keystore, name)
    if stored and not any(m.imported_from for m in stored):
        raise UsageError(
            f"certman already manages a certificate named {name!r}; certbot's lineage is not mixed in",
            f"`certman remove {name}` first to take certbot's instead",
        )
    known = {str(m.serial) for m in stored}
    spec: CertSpec | None = None
    added: list[str] = []
    for number in order:
        key_pem, leaf_pem, chain_pem, facts = _read_version(archive, number)
        if facts.serial in known:
            continue
        if spec is None:
            spec = _existing_spec(keystore, name) or _spec_from_conf(name, params, facts.identifiers, ca_bundle, result)
        meta = VersionMeta.of(
            facts, issued_at=facts.not_before, imported_at=now, imported_from=str(archive / f"cert{number}.pem")
        )
        with keystore.lock_cert(name):
            version = keystore.store_version(spec, key_pem, leaf_pem, chain_pem, meta)
        added.append(version.version)
    if added:
        result.certificates_imported[name] = added
    else:
        result.certificates_unchanged.append(name)


def _archive_versions(archive: Path) -> list[int]:
    try:
        entries = os.listdir(archive)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for e in entries if (m := _VERSION_FILE.match(e)))


def _live_number(live_cert: Path) -> int | None:
    try:
        match = re.search(r"cert(\d+)\.pem$", os.readlink(live_cert))
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _read_version(archive: Path, number: int) -> tuple[bytes, bytes, bytes, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from ..keys import CertFacts, key_to_pem, load_key, public_keys_match

    try:
        certs = x509.load_pem_x509_certificates((archive / f"fullchain{number}.pem").read_bytes())
        key = load_key((archive / f"privkey{number}.pem").read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"version {number} in {archive} is unreadable: {exc}") from exc
    if not certs or not public_keys_match(key, certs[0]):
        raise ConfigError(f"version {number} in {archive}: the key does not match the certificate")
    chain = b"".join(c.public_bytes(Encoding.PEM) for c in certs[1:])
    return key_to_pem(key), certs[0].public_bytes(Encoding.PEM), chain, CertFacts.of(certs[0])


def _stored_metas(keystore: FileKeystore, name: str) -> list[VersionMeta]:
    metas = []
    for version in keystore.versions(name):
        try:
            meta = keystore.read_meta(name, version)
        except CertmanError:
            continue
        if meta is not None:
            metas.append(meta)
    return metas


def _existing_spec(keystore: FileKeystore, name: str) -> CertSpec | None:
    # An operator may have edited the spec since the first import: keep theirs.
    try:
        return keystore.read_spec(name)
    except UsageError:
        return None


def _spec_from_conf(
    name: str, params: dict[str, Any], identifiers: tuple[str, ...], ca_bundle: str | None, result: ImportResult
) -> CertSpec:
    server = params.get("server") or "https://acme-v02.api.letsencrypt.org/directory"
    resolve_server(server)
    for hook in ("pre_hook", "post_hook"):
        if params.get(hook):
            result.warnings.append(
                f"{name}: certbot {hook.replace('_', '-')} {params[hook]!r} was not imported; "
                "certman runs reloaders after storing, add a command reloader if needed"
            )
    reloaders: tuple[dict[str, Any], ...] = ()
    if params.get("renew_hook"):
        # certbot runs hooks through a shell; the command reloader takes argv, so say so explicitly.
        reloaders = ({"name": "command", "argv": ["/bin/sh", "-c", params["renew_hook"]]},)
    return CertSpec(
        name=name,
        identifiers=normalise_all(list(identifiers)),
        server=server,
        solvers=_solvers(name, params),
        key_type=_key_type(params),
        ca_bundle=ca_bundle,
        reloaders=reloaders,
    )


def _key_type(params: dict[str, Any]) -> str:
    if params.get("key_type", "rsa") == "ecdsa":
        curve = params.get("elliptic_curve", "secp256r1")
        if curve not in _CURVES:
            raise ConfigError(
                f"certbot elliptic curve {curve!r} is not supported by certman",
                f"certman supports {', '.join(_CURVES)}",
            )
        return _CURVES[curve]
    return f"rsa{params.get('rsa_key_size', '2048')}"


def _solvers(name: str, params: dict[str, Any]) -> tuple[SolverSpec, ...]:
    authenticator = params.get("authenticator", "")
    if authenticator == "standalone":
        return (
            SolverSpec(
                "standalone", {"address": params.get("http01_address", ""), "port": int(params.get("http01_port", 80))}
            ),
        )
    if authenticator == "webroot":
        by_path: dict[str, list[str]] = {}
        for domain, path in (params.get("webroot_map") or {}).items():
            by_path.setdefault(path, []).append(domain)
        paths = renewal_conf.as_list(params.get("webroot_path"))
        default = paths[0] if paths else None
        # Names mapped to the default path need no solver of their own.
        solvers = [
            SolverSpec("webroot", {"path": path}, match=tuple(domains))
            for path, domains in by_path.items()
            if path != default
        ]
        if default:
            solvers.append(SolverSpec("webroot", {"path": default}))
        if not solvers:
            raise ConfigError(f"certbot lineage {name} uses webroot without a path")
        return tuple(solvers)
    raise UsageError(
        f"certbot authenticator {authenticator or '(none)'!r} has no certman equivalent to import",
        "issue this certificate with certman and a solver of your choice instead",
    )
