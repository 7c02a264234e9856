"""DNS-01: the adapter that does all the DNS work once, over providers that only add and remove TXT values.

    present(batch)     record name _acme-challenge.<name> ("*.example.com" -> example.com),
                       CNAME followed on the authoritative servers, then every value of
                       the order added through the provider
    wait_ready(batch)  one propagation wait for the whole batch (propagation.py)
    cleanup(batch)     removes exactly the values this solver tried to add; other TXT
                       values at the same name (another order, another client) stay

A provider is a small object registered under ``certman.dns_providers``:

    add_txt(fqdn, value)     MUST add ``value`` next to any TXT values already at ``fqdn``
                             (a wildcard and its apex share one name), or raise SolverError.
    remove_txt(fqdn, value)  MUST remove only ``value``; removing a value that is not
                             there is not an error (cleanup runs after a failed present).
    from_options(options, env)  builds it from its settings dataclass (plugin_settings).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

from ...errors import ConfigError, SolverError
from ...plugins import registry as plugins
from ...plugins.settings import setting, settings_from
from .. import ChallengeBatch
from .propagation import DNSLookup, PropagationSettings, Zone

log = logging.getLogger(__name__)

CHALLENGE_LABEL = "_acme-challenge"


@runtime_checkable
class DNSProvider(Protocol):
    def add_txt(self, fqdn: str, value: str) -> None: ...

    def remove_txt(self, fqdn: str, value: str) -> None: ...


@dataclass(frozen=True)
class DNS01Settings:
    provider: str = setting(
        help="DNS provider that writes the TXT records (see `certman plugins`).", env="CERTMAN_DNS_PROVIDER"
    )
    follow_cname: bool = setting(
        help="Follow a CNAME on _acme-challenge.<name> and write the record at its target.",
        env="CERTMAN_DNS01_FOLLOW_CNAME",
        default=True,
    )


def record_name(identifier_value: str) -> str:
    """The TXT owner name for an identifier (RFC 8555 §8.4); a wildcard uses its base name."""
    base = identifier_value[2:] if identifier_value.startswith("*.") else identifier_value
    return f"{CHALLENGE_LABEL}.{base.rstrip('.')}."


class DNS01Solver:
    """Presents every TXT value of an order through one provider and waits for propagation once."""

    challenge_type: ClassVar[str] = "dns-01"
    settings_classes: ClassVar[tuple[type, ...]] = (DNS01Settings, PropagationSettings)

    def __init__(
        self,
        provider: DNSProvider,
        propagation: PropagationSettings = PropagationSettings(),
        *,
        follow_cname: bool = True,
        lookup: DNSLookup | None = None,
    ) -> None:
        self.provider = provider
        self.follow_cname = follow_cname
        self.lookup = lookup or DNSLookup(propagation)
        self._records: dict[str, tuple[Zone, frozenset[str]]] = {}
        self._added: list[tuple[str, str]] = []
        self._uncertain: list[tuple[str, str]] = []

    @classmethod
    def from_options(cls, options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> DNS01Solver:
        """Split ``options`` into adapter, propagation and provider settings; build the provider by name."""
        own = {f.name for f in fields(DNS01Settings)} | {f.name for f in fields(PropagationSettings)}
        adapter_opts = {k: v for k, v in options.items() if k in {f.name for f in fields(DNS01Settings)}}
        propagation_opts = {k: v for k, v in options.items() if k in {f.name for f in fields(PropagationSettings)}}
        provider_opts = {k: v for k, v in options.items() if k not in own}
        if "provider" not in adapter_opts and not (os.environ if env is None else env).get("CERTMAN_DNS_PROVIDER"):
            raise ConfigError(
                "the dns-01 solver needs a DNS provider",
                "pass --dns-provider rfc2136 (or exec, lexicon; see `certman plugins`), "
                "or set provider in its [[solver]] table",
            )
        settings = settings_from(DNS01Settings, adapter_opts, plugin="dns-01 solver", env=env)
        propagation = settings_from(PropagationSettings, propagation_opts, plugin="dns-01 solver", env=env)
        provider_cls = plugins.lookup("dns_providers", settings.provider)
        provider: DNSProvider = provider_cls.from_options(provider_opts, env)
        return cls(provider, propagation, follow_cname=settings.follow_cname)

    def present(self, batch: ChallengeBatch) -> None:
        wanted: dict[str, tuple[Zone, set[str]]] = {}
        targets: dict[str, tuple[str, Zone]] = {}
        for challenge in batch:
            name = record_name(challenge.identifier.value)
            if name not in targets:
                zone = self.lookup.zone_of(name.split(".", 1)[1])
                targets[name] = self.lookup.challenge_target(name, zone) if self.follow_cname else (name, zone)
            fqdn, zone = targets[name]
            wanted.setdefault(fqdn, (zone, set()))[1].add(challenge.validation)
        self._records = {fqdn: (zone, frozenset(values)) for fqdn, (zone, values) in wanted.items()}
        for fqdn, (_, values) in self._records.items():
            for value in sorted(values):
                try:
                    self.provider.add_txt(fqdn, value)
                except BaseException:
                    # A failed add may still have landed (a timeout after the server applied it).
                    self._uncertain.append((fqdn, value))
                    raise
                self._added.append((fqdn, value))
                log.info("added TXT %s (zone %s)", fqdn, self._records[fqdn][0].name)

    def wait_ready(self, batch: ChallengeBatch) -> None:
        self.lookup.wait_served(self._records)

    def cleanup(self, batch: ChallengeBatch) -> None:
        failures = []
        for fqdn, value in self._added:
            try:
                self.provider.remove_txt(fqdn, value)
            except SolverError as exc:
                failures.append(f"{fqdn}: {exc.message}")
        for fqdn, value in self._uncertain:
            try:
                self.provider.remove_txt(fqdn, value)
            except SolverError as exc:
                log.debug("removing %s after its failed add also failed: %s", fqdn, exc.message)
        self._added.clear()
        self._uncertain.clear()
        if failures:
            raise SolverError(
                f"could not remove {len(failures)} challenge TXT value(s): {'; '.join(failures)}",
                "remove them by hand; they are harmless but clutter the zone",
            )
