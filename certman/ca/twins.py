"""Where a dry run orders: a CA's staging twin, and the dry run's own account there.

A staging twin runs the same software as its production CA, with the same challenges
and limits, and issues certificates nobody trusts, so a dry run can finalize there
without spending the production CA's limits (Let's Encrypt: 5 duplicate certificates
a week). The twin of a staging CA is itself. ``dry_run_server`` (certman.toml, at the
top level or in a ``[[certificate]]`` table) names the twin of any other CA, and wins
over this table.

A dry run signs with an account of its own, stored apart from the real one under the
CA id plus ``+dry-run`` (``accounts/<ca-id>+dry-run/``): ``ca_id`` never yields a "+",
so no real CA's account can be mistaken for it.
"""

from __future__ import annotations

from ..config import SERVER_ALIASES, resolve_server
from ..keystore import ca_id

_PRODUCTION = SERVER_ALIASES["letsencrypt"]
_STAGING = SERVER_ALIASES["letsencrypt-staging"]

# Directory URL -> the directory URL of its staging twin.
STAGING_TWINS = {_PRODUCTION: _STAGING, _STAGING: _STAGING}

DRY_RUN_ACCOUNT_SUFFIX = "+dry-run"


def twin_of(directory_url: str, dry_run_server: str | None = None) -> str | None:
    """The directory URL a dry run finalizes at: ``dry_run_server`` (a URL or an alias)
    when given, else the known staging twin; None when the CA has no twin.

    Raises ``UsageError`` (exit 2) for a ``dry_run_server`` that is not an https URL
    or a known alias.
    """
    if dry_run_server:
        return resolve_server(dry_run_server)
    return STAGING_TWINS.get(directory_url)


def dry_run_account_id(directory_url: str) -> str:
    """The keystore id of the dry run's own account at ``directory_url``."""
    return ca_id(directory_url) + DRY_RUN_ACCOUNT_SUFFIX
