"""ARI (RFC 9773) through a proxy in front of Pebble: CertID, window, replaces, 409 retry,
Retry-After and the stale-window guard."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fixtures.fault_proxy import NEW_ORDER, FaultProxy
from fixtures.renewal import RenewEnv, later

from certman.config import Settings
from certman.keys import ari_cert_id
from certman.renewal.job import renew

NAME = "ari.example"
MINUTE = datetime.timedelta(minutes=1)


def settings(env: RenewEnv, proxy: FaultProxy) -> Settings:
    return dataclasses.replace(env.settings(), server=proxy.directory_url, certificates=({"names": [NAME]},))


def issued(env: RenewEnv, proxy: FaultProxy) -> str:
    """Issue NAME through the proxy; return its CertID."""
    report = renew(env.keystore, settings(env, proxy))
    assert report.results[0].action == "issued", report.results[0].error
    return env.keystore.read_index()[NAME].ari_cert_id


def test_cert_id_is_the_aki_and_the_der_serial_as_in_rfc_9773_appendix_a():
    key = ec.generate_private_key(ec.SECP256R1())
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x87654321)
        .not_valid_before(datetime.datetime(2026, 1, 1))
        .not_valid_after(datetime.datetime(2026, 2, 1))
        .add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
        .sign(key, hashes.SHA256())
    )
    assert ari_cert_id(cert) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_renewal_info_is_fetched_by_cert_id_and_persisted(renew_env: RenewEnv, ari_proxy: FaultProxy):
    cert_id = issued(renew_env, ari_proxy)
    now = later()
    start, end = now + datetime.timedelta(days=2), now + datetime.timedelta(days=3)
    ari_proxy.ari.windows[cert_id] = (start, end)
    ari_proxy.ari.explanation_url = "https://ca.example/why"
    report = renew(renew_env.keystore, settings(renew_env, ari_proxy), clock=lambda: now)
    assert report.results[0].action == "skipped"
    assert ari_proxy.ari.requests == [cert_id]
    ari = renew_env.keystore.read_state(NAME).ari
    assert ari.cert_id == cert_id
    assert ari.window_start == start.replace(microsecond=0)
    assert start.replace(microsecond=0) <= ari.chosen <= end
    assert ari.explanation_url == "https://ca.example/why"
    assert report.results[0].next_renewal == ari.chosen


def test_the_next_check_honours_retry_after(renew_env: RenewEnv, ari_proxy: FaultProxy):
    cert_id = issued(renew_env, ari_proxy)
    now = later()
    ari_proxy.ari.windows[cert_id] = (now + datetime.timedelta(days=2), now + datetime.timedelta(days=3))
    ari_proxy.ari.retry_after = 3600
    renew(renew_env.keystore, settings(renew_env, ari_proxy), clock=lambda: now)
    next_check = renew_env.keystore.read_state(NAME).ari.next_check
    assert next_check == (now + datetime.timedelta(hours=1)).replace(microsecond=0)

    renew(renew_env.keystore, settings(renew_env, ari_proxy), clock=lambda: now + datetime.timedelta(minutes=59))
    assert ari_proxy.ari.requests == [cert_id]
    renew(renew_env.keystore, settings(renew_env, ari_proxy), clock=lambda: now + datetime.timedelta(minutes=61))
    assert ari_proxy.ari.requests == [cert_id, cert_id]


def test_a_certificate_inside_its_window_is_renewed_with_replaces(renew_env: RenewEnv, ari_proxy: FaultProxy):
    cert_id = issued(renew_env, ari_proxy)
    now = later()
    ari_proxy.ari.windows[cert_id] = (now + MINUTE, now + 2 * MINUTE)
    report = renew(renew_env.keystore, settings(renew_env, ari_proxy), clock=lambda: now + 3 * MINUTE)
    assert report.results[0].action == "renewed"
    assert report.results[0].reason == "inside the CA's ARI window"
    assert ari_proxy.new_orders()[-1]["replaces"] == cert_id


@pytest.mark.parametrize("refusal", [(409, "alreadyReplaced"), (403, "unauthorized")])
def test_a_refused_replacement_is_retried_once_without_replaces(
    renew_env: RenewEnv, ari_proxy: FaultProxy, refusal: tuple[int, str]
):
    cert_id = issued(renew_env, ari_proxy)
    now = later()
    ari_proxy.ari.windows[cert_id] = (now + MINUTE, now + 2 * MINUTE)
    status, problem = refusal
    ari_proxy.add(path=NEW_ORDER, method="POST", payload_has="replaces", status=status, problem=problem, times=1)
    before = len(ari_proxy.new_orders())
    report = renew(renew_env.keystore, settings(renew_env, ari_proxy), clock=lambda: now + 3 * MINUTE)
    assert report.results[0].action == "renewed"
    orders = ari_proxy.new_orders()[before:]
    assert [o.get("replaces") for o in orders] == [cert_id, None]


def test_a_window_that_ended_before_the_certificate_was_issued_never_renews_it(
    renew_env: RenewEnv, ari_proxy: FaultProxy
):
    issued(renew_env, ari_proxy)
    now = later()
    ari_proxy.ari.default_window = (now - datetime.timedelta(days=2), now - datetime.timedelta(days=1))
    report = renew(renew_env.keystore, settings(renew_env, ari_proxy), clock=lambda: now + MINUTE)
    assert report.results[0].action == "skipped"
    assert renew_env.keystore.versions(NAME) == ["000001"]


def test_the_old_certificates_window_is_not_applied_to_its_replacement(renew_env: RenewEnv, ari_proxy: FaultProxy):
    cert_id = issued(renew_env, ari_proxy)
    now = later()
    ari_proxy.ari.windows[cert_id] = (now + MINUTE, now + 2 * MINUTE)
    ari_proxy.ari.default_window = (now + datetime.timedelta(days=2), now + datetime.timedelta(days=3))
    renew(renew_env.keystore, settings(renew_env, ari_proxy), clock=lambda: now + 3 * MINUTE)
    report = renew(renew_env.keystore, settings(renew_env, ari_proxy), clock=lambda: now + 4 * MINUTE)
    assert report.results[0].action == "skipped"
    assert renew_env.keystore.versions(NAME) == ["000001", "000002"]


def test_a_rate_limit_retry_after_is_honoured_across_runs(renew_env: RenewEnv, ari_proxy: FaultProxy):
    issued(renew_env, ari_proxy)
    ari_proxy.add(path=NEW_ORDER, method="POST", status=429, problem="rateLimited", retry_after="3600", times=1)
    now = later()
    report = renew(renew_env.keystore, settings(renew_env, ari_proxy), force=True, clock=lambda: now)
    assert report.results[0].action == "failed"
    assert "rate-limited" in report.results[0].error
    state = renew_env.keystore.read_state(NAME)
    next_attempt = state.next_attempt
    assert next_attempt == state.retry_after
    assert next_attempt >= now + datetime.timedelta(minutes=59)

    waiting = renew(renew_env.keystore, settings(renew_env, ari_proxy), clock=lambda: next_attempt - MINUTE)
    assert waiting.results[0].action == "skipped"
    assert "backing off" in waiting.results[0].reason
