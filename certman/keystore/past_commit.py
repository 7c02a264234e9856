"""Errors after the point of no return: once ``live/<name>`` points at a new version, that
certificate IS live, and an I/O error in what follows must say so, and what is left to clean up.

Retrying the issuance would only spend another certificate at the CA; the operator
needs to know the new one is served and which file lags behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import KeystoreError

INDEX_LEFT = "index.json still names the previous version; the next certman run (or `certman list`) repairs it"


def links_to(link: Path, target: str) -> bool:
    """Whether the symlink ``link`` points at ``target`` now (False if it cannot be read)."""
    try:
        return os.readlink(link) == target
    except OSError:
        return False


def already_live(exc: KeystoreError, name: str, version: str, link: Path, left: str) -> KeystoreError:
    """``exc`` restated for an error after ``name``'s ``version`` went live at ``link``.

    The message names the live version and keeps ``exc``'s path; the hint says that
    nothing needs issuing again and what ``left`` to clean up (exit 3, as any keystore error).
    """
    return KeystoreError(
        f"{name} version {version} IS live ({link}), but then: {exc.message}",
        f"do not issue again; left to clean up: {left}",
    )


def pending_order_left(cert_dir: Path) -> str:
    """What a failed removal of the finished order leaves behind."""
    return (
        f"{cert_dir / 'order.json'} and order-key.pem name the finished order; remove them, "
        "or the next issue stores this same certificate again"
    )


def state_left(state: Path) -> str:
    """What a failed write of the renewal state after success leaves behind."""
    return f"{state} still records the previous attempt; the next successful run rewrites it"
