"""A renewal counts as deployed only once the proxy is seen serving the new certificate."""

from __future__ import annotations

import pytest
import services
from fixtures.proxies import nginx_server_block, served_serial, served_serial_once_settled, tls_ready

from certman.config import Settings
from certman.deploy.served import Endpoint
from certman.keystore import FileKeystore
from certman.renewal.job import renew


def settings_for(keystore: FileKeystore) -> Settings:
    return Settings(keystore=keystore.root, agree_tos=True)


def test_renew_reloads_nginx_and_verifies_the_new_serial_is_served(
    issue_cert, start_nginx, keystore: FileKeystore
) -> None:
    endpoint = Endpoint("127.0.0.1", services.free_port())
    first = issue_cert("verified.example")
    nginx = start_nginx(
        nginx_server_block(endpoint.port, "verified.example", first.live), tls_ready(endpoint, "verified.example")
    )
    first = issue_cert(
        "verified.example", reloaders=({"name": "nginx", **nginx.reloader_options, "verify": [str(endpoint)]},)
    )

    report = renew(keystore, settings_for(keystore), force=True)

    [result] = report.results
    assert result.ok and result.serial != first.serial, result
    assert served_serial_once_settled(endpoint, "verified.example", result.serial) == result.serial
    assert keystore.read_state("verified.example").deploy.pending is False


@pytest.mark.slow
def test_a_reload_that_leaves_the_old_certificate_served_is_an_error_and_stays_undeployed(
    issue_cert, start_nginx, keystore: FileKeystore
) -> None:
    endpoint = Endpoint("127.0.0.1", services.free_port())
    first = issue_cert("stale.example")
    start_nginx(nginx_server_block(endpoint.port, "stale.example", first.live), tls_ready(endpoint, "stale.example"))
    # A reload command that does not reload anything: the proxy keeps the old leaf.
    issue_cert("stale.example", reloaders=({"name": "command", "argv": ["true"], "verify": [str(endpoint)]},))
    served_before = served_serial(endpoint, "stale.example")

    report = renew(keystore, settings_for(keystore), force=True)

    [result] = report.results
    assert not result.ok and report.exit_code == 7
    assert served_before in (result.error or "") and (result.serial or "") in (result.error or "")
    state = keystore.read_state("stale.example")
    assert state.deploy.pending is True


@pytest.mark.slow
def test_one_proxy_is_reloaded_once_for_two_certificates_with_different_verify_endpoints(
    issue_cert, keystore: FileKeystore, tmp_path
) -> None:
    import dataclasses
    import sys

    from fixtures.proxies import deployment_of

    from certman.deploy.batch import deploy

    counter = tmp_path / "reloads"
    argv = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('x')", str(counter)]
    items = []
    for name in ("one.example", "two.example"):
        issued = issue_cert(name)
        spec = keystore.read_spec(name)
        # Each certificate names its own endpoint; no proxy listens there, so verify fails
        # per certificate, but the reload itself ran just once for both.
        endpoint = f"127.0.0.1:{services.free_port()}"
        table = {"name": "command", "argv": argv, "verify": [endpoint]}
        items.append((dataclasses.replace(spec, reloaders=(table,)), deployment_of(issued)))

    result = deploy(items)

    assert counter.read_text() == "x"
    assert result.failed == ["one.example", "two.example"]
