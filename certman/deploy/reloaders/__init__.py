"""The reloader contract: how a proxy learns that its certificates changed.

    reload(deployments)   MUST make the proxy serve the live versions of every
                          certificate in ``deployments``, or raise ReloadError with
                          the proxy's own words as the hint. It runs once per
                          distinct reloader per batch, after all its certificates
                          are stored. It MUST NOT use a shell.

A reloader MAY also offer ``test_config()`` (``TestsConfig``): check that the proxy would
accept a reload (``nginx -t``, ``haproxy -c``) without reloading it. A dry run calls it.

A reloader is built from its spec table (``[[reloader]]`` in spec.toml or
certman.toml: ``name`` plus options) by ``from_options(options)``, which reads the
options into its frozen settings dataclass with ``served.reloader_settings`` (the
one ``plugins.settings.settings_from`` path). It lists that dataclass and
``served.VerifySettings`` (the ``verify`` option the deploy step reads) in
``settings_classes``, which ``certman plugins NAME`` shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ...keystore import LivePaths


@dataclass(frozen=True)
class Deployment:
    """One certificate whose new version is stored and live, waiting for its proxy."""

    name: str
    identifiers: tuple[str, ...]
    serial: str
    live: LivePaths


@runtime_checkable
class Reloader(Protocol):
    def reload(self, deployments: Sequence[Deployment]) -> None: ...


@runtime_checkable
class TestsConfig(Protocol):
    def test_config(self) -> None:
        """Raise ReloadError (with the proxy's own words as the hint) if a reload would fail; change nothing."""
        ...
