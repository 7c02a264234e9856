"""An order the CA accepted but we did not finish: kept so the next run continues it.

It lives beside the certificate, outside ``state.json``: ``order.json`` says which
order at which CA for which identifiers, ``order-key.pem`` (0600) holds the key its
CSR was made with. Both are written atomically and removed once a version is stored.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import msgspec

from ..errors import KeystoreError
from . import files
from .keyfiles import ORDER_HINT
from .layout import SECRET_MODE, Layout
from .times import decode_time, encode_time


class PendingOrder(msgspec.Struct, frozen=True):
    """Where to find an unfinished order, and the key its CSR was made with."""

    order_url: str
    server: str
    identifiers: tuple[str, ...]
    created_at: datetime.datetime
    key_pem: bytes

    def to_json(self) -> dict[str, Any]:
        """``order.json``: everything but the key, which has its own 0600 file."""
        return {
            "order_url": self.order_url,
            "server": self.server,
            "identifiers": list(self.identifiers),
            "created_at": encode_time(self.created_at),
        }

    @classmethod
    def from_json(cls, data: Any, key_pem: bytes) -> PendingOrder:
        """KeyError, TypeError or ValueError if ``data`` is not an order.json."""
        return cls(
            order_url=str(data["order_url"]),
            server=str(data["server"]),
            identifiers=tuple(str(i) for i in data["identifiers"]),
            created_at=decode_time(data["created_at"]),
            key_pem=key_pem,
        )


def read(layout: Layout, name: str) -> PendingOrder | None:
    path, key_path = layout.order(name), layout.order_key(name)
    try:
        data = json.loads(path.read_text())
        key_pem = key_path.read_bytes()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        where = key_path if getattr(exc, "filename", None) == str(key_path) else path
        raise KeystoreError(f"pending order file {where} is unreadable: {exc}", ORDER_HINT) from exc
    try:
        return PendingOrder.from_json(data, key_pem)
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoreError(f"pending order {path} is malformed ({exc})", ORDER_HINT) from exc


def write(layout: Layout, name: str, order: PendingOrder) -> None:
    # The key first: an order.json without its key would be useless to the next run.
    files.write_file(layout.order_key(name), order.key_pem, SECRET_MODE)
    files.write_file(layout.order(name), (json.dumps(order.to_json(), indent=2) + "\n").encode(), SECRET_MODE)


def clear(layout: Layout, name: str) -> None:
    # order.json first: a key left without it is ignored, never half-used.
    for path in (layout.order(name), layout.order_key(name)):
        files.remove(path)
    files.fsync_dir(layout.cert_dir(name))
