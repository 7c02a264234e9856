"""The keystore: accounts, certificate specs, immutable versions, renewal state and an index.

    contract.py       the Keystore protocol: what any store MUST and SHOULD do
    records.py        the stored records (index entry, version meta, state, marker, account)
    times.py          the one format of stored times, and the injected clock
    file_keystore.py  FileKeystore: the contract over a local directory, plus live/ links
    layout.py         every path and file mode of that directory
    index.py, pending.py, files.py, locks.py   its parts

The rest of certman uses the contract's methods, so a shared backend for fleets can
implement ``Keystore`` and stand in for ``FileKeystore``.
"""

from __future__ import annotations

from . import locks
from .contract import Keystore, StoredVersion
from .file_keystore import FileKeystore
from .layout import LivePaths, ca_id
from .pending import PendingOrder
from .records import AccountRecord, IndexEntry, RevocationMarker, VersionMeta
from .state_records import DeployState, RenewalState

__all__ = [
    "AccountRecord",
    "DeployState",
    "FileKeystore",
    "IndexEntry",
    "Keystore",
    "LivePaths",
    "PendingOrder",
    "RenewalState",
    "RevocationMarker",
    "StoredVersion",
    "VersionMeta",
    "ca_id",
    "locks",
]
