"""ARI (RFC 9773) in fleet renew: each host asks the CA for the renewal window, as a lone
host's renew does, and the window decides when the fleet renews.

Pebble 2.4.0 has no ARI; the fault proxy in front of it answers renewalInfo (the
window a test sets), and everything else is Pebble's. The hosts are real ``certman``
processes sharing one PostgreSQL store; neither has a window recorded beforehand.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import services
from fixtures.fault_proxy import FaultProxy
from fixtures.fleet import ari_fleet

from certman.keystore import FileKeystore

# Several hosts against PostgreSQL and Pebble: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

NAME = "ari.fleet.example"
HOUR = datetime.timedelta(hours=1)


def test_a_window_the_ca_opened_makes_fleet_renew_renew_before_the_lifetime_rule_would(
    tmp_path: Path, fleet_dsn: str, ari_proxy: FaultProxy, renew_pebble: services.Pebble, webroot: Path
) -> None:
    a, b = ari_fleet(tmp_path, fleet_dsn, ari_proxy, renew_pebble, webroot, NAME)
    entry = FileKeystore(b.keystore).read_index()[NAME]
    cert_id = entry.ari_cert_id
    assert ari_proxy.ari is not None
    # A window that opened an hour before the certificate and has just closed: it applies to
    # the certificate (it ends after its notBefore, to the second), and the random moment the
    # host picks inside it (RFC 9773 §4.2) has passed.
    end = entry.not_before + datetime.timedelta(seconds=1)
    ari_proxy.ari.windows[cert_id] = (entry.not_before - HOUR, end)
    services.wait_for(lambda: datetime.datetime.now(datetime.UTC) > end, what="the window to close")
    before = len(ari_proxy.new_orders())
    done = b.run("renew", "--json")
    assert done.returncode == 0, done.stderr
    assert [c["action"] for c in json.loads(done.stdout)["certificates"]] == ["renewed"], done.stdout
    assert cert_id in ari_proxy.ari.requests
    assert [o.get("replaces") for o in ari_proxy.new_orders()[before:]] == [cert_id]


def test_a_window_not_yet_open_leaves_the_certificate_alone_and_records_when_it_opens(
    tmp_path: Path, fleet_dsn: str, ari_proxy: FaultProxy, renew_pebble: services.Pebble, webroot: Path
) -> None:
    a, b = ari_fleet(tmp_path, fleet_dsn, ari_proxy, renew_pebble, webroot, NAME)
    cert_id = FileKeystore(b.keystore).read_index()[NAME].ari_cert_id
    assert ari_proxy.ari is not None
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + 48 * HOUR
    ari_proxy.ari.windows[cert_id] = (start, start + HOUR)
    before = len(ari_proxy.new_orders())
    done = b.run("renew", "--json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["certificates"]
    assert result["action"] == "skipped"
    assert ari_proxy.new_orders()[before:] == []
    ari = FileKeystore(b.keystore).read_state(NAME).ari
    assert ari is not None and ari.cert_id == cert_id and ari.window_start == start
    assert start <= ari.chosen <= start + HOUR
