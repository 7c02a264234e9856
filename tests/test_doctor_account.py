"""doctor asks the CA about the stored account, and takes a port held by certman's own
shared challenge server for what it is."""

from __future__ import annotations

import os

import services

from certman.ca.accounts import AccountSettings, CAEndpoint, account_jwk, register_account
from certman.ca.session import AcmeSession
from certman.doctor import diagnose
from certman.issuance.challenges import create_solver
from certman.keystore import FileKeystore, ca_id
from certman.names import normalise
from certman.solvers import Challenge
from certman.solvers.shared import Rendezvous


def _flags(keystore: FileKeystore, pebble: services.Pebble, port: int) -> dict[str, object]:
    return {
        "keystore": keystore.root,
        "server": pebble.directory_url,
        "ca_bundle": str(pebble.ca_bundle),
        "http_address": "127.0.0.1",
        "http_port": port,
    }


def test_doctor_reports_the_account_valid_then_failing_once_another_client_deactivated_it(
    keystore: FileKeystore, pebble: services.Pebble, ca: CAEndpoint, agreed: AccountSettings
) -> None:
    registered = register_account(keystore, ca, agreed)
    name = f"account at {pebble.directory_url}"

    [valid] = [
        c for c in diagnose(None, overrides=_flags(keystore, pebble, services.free_port())).checks if c.name == name
    ]
    assert valid.ok and valid.detail == f"{registered.uri} is valid"

    stored = keystore.load_account(ca_id(pebble.directory_url))
    assert stored is not None
    other = AcmeSession(pebble.directory_url, account_jwk(stored[0]), ca_bundle=str(pebble.ca_bundle))
    other.use_account(stored[1].uri)
    assert other.deactivate_account().body.status == "deactivated"

    report = diagnose(None, overrides=_flags(keystore, pebble, services.free_port()))
    [gone] = [c for c in report.checks if c.name == name]
    assert not gone.ok and not report.ok
    assert "deactivated" in gone.detail or "unauthorized" in gone.detail
    assert gone.hint is not None
    assert f"certman account register --new --server {pebble.directory_url}" in gone.hint


def test_no_account_line_without_a_stored_account(keystore: FileKeystore, pebble: services.Pebble) -> None:
    report = diagnose(None, overrides=_flags(keystore, pebble, services.free_port()))

    assert not [c for c in report.checks if c.name.startswith("account at")]
    assert not (keystore.root / "accounts").exists()


def test_a_port_held_by_certmans_shared_challenge_server_is_ok(keystore: FileKeystore) -> None:
    port = services.free_port()
    solver = create_solver(
        "standalone", {"address": "127.0.0.1", "port": port}, Rendezvous.under(keystore.root, timeout=5.0)
    )
    batch = (Challenge(normalise("held.example"), "http-01", "A" * 43, "A" * 43 + ".thumb"),)
    solver.present(batch)
    try:
        overrides = {"keystore": keystore.root, "solver": "standalone", "http_address": "127.0.0.1", "http_port": port}
        [check] = [c for c in diagnose(None, overrides=overrides).checks if c.name == "standalone port"]
    finally:
        solver.cleanup(batch)

    assert check.ok, check
    assert f"held by certman's shared challenge server, pid {os.getpid()}" in check.detail


def test_a_port_held_by_anything_else_still_fails(keystore: FileKeystore) -> None:
    port = services.free_port()
    # Another keystore's certman server is not one this keystore's runs can join.
    other = FileKeystore(keystore.root.parent / "other")
    solver = create_solver(
        "standalone", {"address": "127.0.0.1", "port": port}, Rendezvous.under(other.root, timeout=5.0)
    )
    batch = (Challenge(normalise("elsewhere.example"), "http-01", "B" * 43, "B" * 43 + ".thumb"),)
    solver.present(batch)
    try:
        overrides = {"keystore": keystore.root, "solver": "standalone", "http_address": "127.0.0.1", "http_port": port}
        [check] = [c for c in diagnose(None, overrides=overrides).checks if c.name == "standalone port"]
    finally:
        solver.cleanup(batch)

    assert not check.ok and "held by" in check.detail
