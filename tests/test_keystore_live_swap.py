"""Swapping live/<name>: a reader of live/ never sees a torn or empty key and certificate pair."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import services
from fixtures.issuing import issue_for, make_spec

from certman.keys import load_key, public_keys_match, split_pem_chain
from certman.keystore import FileKeystore


def _read_pair(live: Path) -> tuple[bytes, bytes]:
    # A TLS proxy resolves live/<name> once per reload; opening the directory and then
    # both files relative to it is that view. Reading two paths through the link at two
    # moments could straddle a swap, which no atomic store can prevent.
    dir_fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        key = os.open("privkey.pem", os.O_RDONLY, dir_fd=dir_fd)
        chain = os.open("fullchain.pem", os.O_RDONLY, dir_fd=dir_fd)
        try:
            return os.read(key, 1 << 16), os.read(chain, 1 << 16)
        finally:
            os.close(key)
            os.close(chain)
    finally:
        os.close(dir_fd)


@pytest.mark.slow
def test_a_reader_of_live_never_sees_a_mismatch_or_an_empty_file_during_20_reissues(
    pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    spec = make_spec(pebble.directory_url, pebble, "a.example")
    live = issue_for(spec, fresh_keystore).live.directory
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            key_pem, fullchain_pem = _read_pair(live)
            combined = (live / "combined.pem").read_bytes()
            reads[0] += 1
            if not key_pem or not fullchain_pem or not combined:
                problems.append("empty file")
            elif not public_keys_match(load_key(key_pem), split_pem_chain(fullchain_pem.decode())[0]):
                problems.append("key does not match fullchain")
            elif not public_keys_match(load_key(combined), split_pem_chain(combined.decode())[0]):
                problems.append("combined.pem is torn")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        serials = [issue_for(spec, fresh_keystore).serial for _ in range(20)]
    finally:
        stop.set()
        thread.join()

    assert problems == []
    assert len(set(serials)) == 20
    assert reads[0] > 20
