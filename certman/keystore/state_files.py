"""Reading the ``state.json`` files of many certificates in one pass."""

from __future__ import annotations

import json
import os

from ..errors import KeystoreError
from ..names import check_cert_name
from .decoders import decode_state
from .layout import STATE_FILE, Layout
from .state_records import STATE_HINT, RenewalState


def read(layout: Layout, names: list[str]) -> dict[str, RenewalState]:
    """The state of each of ``names`` (``RenewalState()`` where none was written);
    ``KeystoreError`` naming the first unreadable one."""
    # A renew run over 10,000 names reads every state file: skip the per-name Path building.
    certs = str(layout.certs)
    states: dict[str, RenewalState] = {}
    for name in names:
        path = os.path.join(certs, check_cert_name(name), STATE_FILE)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            states[name] = RenewalState()
            continue
        except OSError as exc:
            raise KeystoreError(f"state file {path} is unreadable: {exc}", STATE_HINT) from exc
        state = decode_state(data)
        if state is None:
            try:
                raw = json.loads(data)
            except ValueError as exc:
                raise KeystoreError(f"state file {path} is unreadable: {exc}", STATE_HINT) from exc
            state = RenewalState.from_json(raw, path)
        states[name] = state
    return states
