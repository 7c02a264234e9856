"""A CA's 409 ``alreadyReplaced`` in a fleet (RFC 9773 §5): another host renewed.

Pebble 2.4.0 has no ARI, so it never answers ``alreadyReplaced``: the fault proxy in
front of it speaks ARI and gives that 409 for the one newOrder a CA would refuse,
the second one carrying the same ``replaces``. Everything else is real: Pebble
issues, PostgreSQL holds the store, and the hosts are real ``certman`` processes.
A holder is held mid-renewal by the proxy (an answer it stalls) and SIGSTOPped there,
past its one-second lease, so that another host takes over.
"""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
from pathlib import Path

import psycopg
import pytest
import services
from fixtures.fault_proxy import NEW_ORDER, FaultProxy
from fixtures.fleet import CERTMAN, TIMER_ENV, Host, ari_fleet, window_opened

from certman.keystore import FileKeystore

# Several hosts against PostgreSQL and Pebble: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

NAME = "replaced.fleet.example"
# Seconds the proxy holds the holder's answer: long enough for the test to SIGSTOP it there
# (a poll away); once stopped, it stays stopped until the other host is done.
STALL = 5.0


def open_window(proxy: FaultProxy, *made: Host) -> None:
    """An ARI window open now for the first version, as the CA says and as each host has it recorded."""
    cert_id = FileKeystore(made[0].keystore).read_index()[NAME].ari_cert_id
    now = datetime.datetime.now(datetime.UTC)
    assert proxy.ari is not None
    proxy.ari.windows[cert_id] = (now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=1))
    for h in made:
        window_opened(h, NAME)


def renewing(host: Host) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CERTMAN, "--config", str(host.config), "renew", "--json"],
        cwd="/",
        env=TIMER_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lease_expired(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute("SELECT expires_at <= clock_timestamp() FROM leases WHERE name = %s", (NAME,))
        found = row.fetchone()
    return found is not None and bool(found[0])


def serial(host: Host) -> str:
    return FileKeystore(host.keystore).read_index()[NAME].serial


def stalled_past_its_lease(host: Host, proxy: FaultProxy, method: str, path: str, dsn: str) -> subprocess.Popen[str]:
    """``renew`` on ``host``, held where its ``method`` request to ``path`` reached the CA (the
    proxy stalls the answer), SIGSTOPped there until the server expired its lease."""
    seen = proxy.count(method, path, succeeded=True)
    # Every such answer stalls until host-a is stopped: a badNonce retry may come first.
    stall = proxy.add(path=path, method=method, stall=STALL)
    run = renewing(host)
    try:
        services.wait_for(lambda: proxy.count(method, path, succeeded=True) > seen, timeout=60, what=f"{path}")
        run.send_signal(signal.SIGSTOP)
    finally:
        stall.times = 0
    services.wait_for(lambda: lease_expired(dsn), what="the server to expire host-a's lease")
    return run


def test_a_409_already_replaced_pulls_the_other_hosts_version_and_never_orders_without_replaces(
    tmp_path: Path, fleet_dsn: str, ari_proxy: FaultProxy, renew_pebble: services.Pebble, webroot: Path
) -> None:
    a, b = ari_fleet(tmp_path, fleet_dsn, ari_proxy, renew_pebble, webroot, NAME)
    open_window(ari_proxy, a, b)
    cert_id = FileKeystore(a.keystore).read_index()[NAME].ari_cert_id
    before = len(ari_proxy.new_orders())
    # host-a takes the lease, then stalls before its order: on its first request to the CA.
    stalled = stalled_past_its_lease(a, ari_proxy, "GET", r"^/dir$", fleet_dsn)
    try:
        taken = b.run("renew", "--json")
        assert taken.returncode == 0, taken.stderr
        # The CA remembers that host-b's order replaced the certificate.
        ari_proxy.add(path=NEW_ORDER, method="POST", payload_has="replaces", status=409, problem="alreadyReplaced")
    finally:
        stalled.send_signal(signal.SIGCONT)
    out, err = stalled.communicate(timeout=120)
    assert stalled.returncode == 0, err
    (result,) = json.loads(out)["certificates"]
    assert result["action"] == "skipped" and "another host renewed it" in result["reason"]
    assert serial(a) == serial(b)
    # host-b's order, and host-a's refused one: never a second order without replaces.
    assert [o.get("replaces") for o in ari_proxy.new_orders()[before:]] == [cert_id, cert_id]


def test_after_a_holder_was_fenced_out_the_next_orders_without_replaces_since_its_replacement_is_discarded(
    tmp_path: Path, fleet_dsn: str, ari_proxy: FaultProxy, renew_pebble: services.Pebble, webroot: Path
) -> None:
    a, b = ari_fleet(tmp_path, fleet_dsn, ari_proxy, renew_pebble, webroot, NAME)
    open_window(ari_proxy, a, b)
    first, cert_id = serial(a), FileKeystore(a.keystore).read_index()[NAME].ari_cert_id
    before = len(ari_proxy.new_orders())
    # host-a's order reaches the CA (which marks the certificate replaced); host-a stalls on its answer.
    stalled = stalled_past_its_lease(a, ari_proxy, "POST", NEW_ORDER, fleet_dsn)
    try:
        ari_proxy.add(path=NEW_ORDER, method="POST", payload_has="replaces", status=409, problem="alreadyReplaced")
        taken = b.run("renew", "--json")
    finally:
        stalled.send_signal(signal.SIGCONT)
    assert taken.returncode == 0, taken.stderr
    assert [r["action"] for r in json.loads(taken.stdout)["certificates"]] == ["renewed"]
    out, err = stalled.communicate(timeout=120)
    assert stalled.returncode == 7, err
    assert serial(a) == first != serial(b)
    # host-a's (discarded) replacement, host-b's refused one, then host-b's order without replaces.
    assert [o.get("replaces") for o in ari_proxy.new_orders()[before:]] == [cert_id, cert_id, None]
