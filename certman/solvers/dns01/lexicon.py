"""dns-lexicon's providers (Cloudflare, Route 53, OVH, a local zone file, ...) as one DNS provider.

Optional: ``pip install 'certman[lexicon]'`` (some lexicon providers need their own
extra, e.g. ``dns-lexicon[route53]``). Lexicon is imported only when this provider is
used. Credentials come from ``options`` or from lexicon's own environment variables,
``LEXICON_<PROVIDER>_<OPTION>`` (e.g. LEXICON_CLOUDFLARE_AUTH_TOKEN).

Both are registered with the log redaction before lexicon is imported: lexicon and the
HTTP libraries under it log requests at debug level, and some providers put the token
in the URL (namesilo's ``key=``), which then shows in urllib3's lines and error texts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...errors import ConfigError, SolverError
from ...log import redact, register_secret
from ...plugins.settings import setting, settings_from

# Lexicon's option names for credentials: register their values with the log redaction.
_SECRET_OPTION = re.compile(r"token|secret|password|key|auth", re.I)
# Lexicon reads LEXICON_<PROVIDER>_<OPTION> (and LEXICON_<OPTION>) from the process environment.
_ENV_PREFIX = "LEXICON_"


@dataclass(frozen=True)
class LexiconSettings:
    provider_name: str = setting(
        help="Lexicon provider, e.g. cloudflare, route53, ovh, localzone.", env="CERTMAN_LEXICON_PROVIDER"
    )
    domain: str = setting(
        help="The zone (registered domain) the records go into, e.g. example.com.", env="CERTMAN_LEXICON_DOMAIN"
    )
    options: Mapping[str, str] = setting(
        help="The lexicon provider's own options (e.g. auth_token); also read from LEXICON_<PROVIDER>_<OPTION>.",
        default={},
    )
    ttl: int = setting(help="TTL of the TXT records, in seconds.", env="CERTMAN_LEXICON_TTL", default=60)


def register_env_credentials(env: Mapping[str, str]) -> None:
    """Register the value of every ``LEXICON_*`` variable whose option name is a credential's.

    Endpoints and other settings (``LEXICON_NAMESILO_API_ENDPOINT``) stay readable.
    """
    for name, value in env.items():
        if name.startswith(_ENV_PREFIX) and value and _SECRET_OPTION.search(name[len(_ENV_PREFIX) :]):
            register_secret(value)


class LexiconProvider:
    """Adds and removes TXT values through any dns-lexicon provider."""

    settings_classes: ClassVar[tuple[type, ...]] = (LexiconSettings,)

    def __init__(self, settings: LexiconSettings, env: Mapping[str, str] | None = None) -> None:
        for name, value in settings.options.items():
            if _SECRET_OPTION.search(name):
                register_secret(str(value))
        # Lexicon's ConfigResolver.with_env reads os.environ whatever env the caller passed.
        for source in (os.environ, env or {}):
            register_env_credentials(source)
        try:
            import lexicon.client  # noqa: F401  (imported here: an optional extra)
        except ImportError:
            raise ConfigError(
                "the lexicon DNS provider needs dns-lexicon, which is not installed", "pip install 'certman[lexicon]'"
            ) from None
        self.settings = settings

    @classmethod
    def from_options(cls, options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> LexiconProvider:
        return cls(settings_from(LexiconSettings, options, plugin="lexicon DNS provider", env=env), env)

    def add_txt(self, fqdn: str, value: str) -> None:
        self._run("create_record", fqdn, value)

    def remove_txt(self, fqdn: str, value: str) -> None:
        self._run("delete_record", fqdn, value)

    def _run(self, operation: str, fqdn: str, value: str) -> None:
        from lexicon.client import Client
        from lexicon.config import ConfigResolver

        name = self.settings.provider_name
        config = (
            ConfigResolver()  # type: ignore[no-untyped-call]
            .with_env()
            .with_dict(
                {
                    "provider_name": name,
                    "domain": self.settings.domain.rstrip("."),
                    "ttl": self.settings.ttl,
                    name: dict(self.settings.options),
                }
            )
        )
        try:
            with Client(config) as client:
                if operation == "create_record":
                    client.create_record("TXT", fqdn, value)
                else:
                    client.delete_record(None, "TXT", fqdn, value)
        except Exception as exc:  # lexicon raises anything its HTTP libraries and providers raise
            # Provider exceptions may quote request bodies; keep one redacted line.
            text = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]
            raise SolverError(
                f"lexicon ({name}): {operation.replace('_', ' ')} TXT {fqdn} failed: {text}",
                f"check the {name} credentials and that {self.settings.domain} is in that account",
            ) from None
