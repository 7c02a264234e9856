"""The stored account at each CA, as the CA itself sees it.

Asked only of a CA that ``check_ca`` just reached: a POST-as-GET to the account URL
(RFC 8555 §7.3.3) signed with the stored key. ``valid`` is OK. ``deactivated`` or
``revoked`` (§7.1.6), or a CA that answers ``accountDoesNotExist`` (a CA reset) or
``unauthorized`` (a deactivated account, §7.3.6), is a FAIL naming the command that
registers a new one. The keystore is read, never written.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..ca.recovery import ACCOUNT_REFUSED
from ..errors import CertmanError
from ..keystore import AccountRecord, ca_id
from ..keystore.keyfiles import ACCOUNT_HINT
from ..keystore.layout import Layout
from .report import Check

# Seconds for the whole conversation: the directory, a nonce and one POST.
ACCOUNT_TIMEOUT = 10.0


def check_account(root: Path, directory_url: str, ca_bundle: str | None) -> Check | None:
    """The status of the account stored for ``directory_url``; None when none is stored."""
    from ..ca.accounts import account_jwk
    from ..ca.session import AcmeSession

    layout = Layout(root)
    ca = ca_id(directory_url)
    name = f"account at {directory_url}"
    try:
        key_pem = layout.account_key(ca).read_bytes()
        raw = json.loads(layout.account_file(ca).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return Check(name, False, f"the stored account in {layout.account_dir(ca)} is unreadable: {exc}", ACCOUNT_HINT)
    register = _register_command(directory_url, ca_bundle)
    try:
        record = AccountRecord.from_json(raw, layout.account_file(ca))
        session = AcmeSession(
            directory_url, account_jwk(key_pem, layout.account_key(ca)), ca_bundle=ca_bundle, timeout=ACCOUNT_TIMEOUT
        )
        session.use_account(record.uri)
        status = str(session.query_account().body.status)
    except CertmanError as exc:
        problem = (getattr(exc, "problem_type", None) or "").rsplit(":", 1)[-1]
        if problem in ACCOUNT_REFUSED:
            return Check(name, False, f"the CA refuses the stored account ({problem}): {exc.message}", register)
        return Check(name, False, f"cannot ask the CA about the stored account: {exc.message}", exc.hint)
    if status != "valid":
        return Check(name, False, f"{record.uri} is {status} at the CA", register)
    return Check(name, True, f"{record.uri} is valid")


def _register_command(directory_url: str, ca_bundle: str | None) -> str:
    bundle = f" --ca-bundle {ca_bundle}" if ca_bundle else ""
    return (
        f"register a new one: certman account register --new --server {directory_url}{bundle} --agree-tos "
        "(an unattended renew also does this itself, unless the CA requires external account binding)"
    )
