"""An order the CA accepted but we did not finish: kept so the next run continues it.

It lives beside the certificate, outside ``state.json``: ``order.json`` says which
order at which CA for which identifiers, ``order-key.pem`` (0600) holds the key its
CSR was made with. Both are written atomically and removed once a version is stored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KeystoreError
from . import files
from .layout import SECRET_MODE

ORDER_FILE = "order.json"
ORDER_KEY_FILE = "order-key.pem"


@dataclass(frozen=True)
class PendingOrder:
    """Where to find an unfinished order, and the key its CSR was made with."""

    order_url: str
    server: str
    identifiers: tuple[str, ...]
    created_at: str
    key_pem: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "order_url": self.order_url,
            "server": self.server,
            "identifiers": list(self.identifiers),
            "created_at": self.created_at,
        }


def read(cert_dir: Path) -> PendingOrder | None:
    try:
        data = json.loads((cert_dir / ORDER_FILE).read_text())
        key_pem = (cert_dir / ORDER_KEY_FILE).read_bytes()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise KeystoreError(
            f"pending order in {cert_dir} is unreadable: {exc}", f"remove {cert_dir / ORDER_FILE} to start a new order"
        ) from exc
    try:
        return PendingOrder(
            order_url=str(data["order_url"]),
            server=str(data["server"]),
            identifiers=tuple(str(i) for i in data["identifiers"]),
            created_at=str(data["created_at"]),
            key_pem=key_pem,
        )
    except (KeyError, TypeError) as exc:
        raise KeystoreError(
            f"pending order {cert_dir / ORDER_FILE} is malformed ({exc})",
            f"remove {cert_dir / ORDER_FILE} to start a new order",
        ) from exc


def write(cert_dir: Path, order: PendingOrder) -> None:
    # The key first: an order.json without its key would be useless to the next run.
    files.write_file(cert_dir / ORDER_KEY_FILE, order.key_pem, SECRET_MODE)
    files.write_file(cert_dir / ORDER_FILE, (json.dumps(order.to_json(), indent=2) + "\n").encode(), SECRET_MODE)


def clear(cert_dir: Path) -> None:
    # order.json first: a key left without it is ignored, never half-used.
    for name in (ORDER_FILE, ORDER_KEY_FILE):
        try:
            os.unlink(cert_dir / name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise files.storage_error(exc, cert_dir / name, "removing") from exc
    files.fsync_dir(cert_dir)
