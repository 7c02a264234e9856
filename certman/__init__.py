"""certman: an ACME certificate manager for the TLS proxy in front of your app.

The public API is re-exported lazily, so that importing certman (and so
``certman --help``) loads neither ``acme`` nor ``cryptography``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "issue": "certman.issuance.issue",
    "IssueResult": "certman.issuance.issue",
    "AccountSettings": "certman.ca.accounts",
    "FileKeystore": "certman.keystore",
    "CertSpec": "certman.config",
    "SolverSpec": "certman.config",
    "Settings": "certman.config",
    "load_settings": "certman.config",
    "spec_from_settings": "certman.config",
    "renew": "certman.renewal.job",
    "RenewReport": "certman.renewal.job",
    "CertResult": "certman.renewal.job",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'certman' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
