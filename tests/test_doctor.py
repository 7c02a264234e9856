"""certman doctor: one line per check, non-zero exit when any fails."""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import pytest
import services
from click.testing import CliRunner
from fixtures.lifecycle import standalone_spec

from certman.cli import cli
from certman.config import SolverSpec
from certman.doctor import check_keystore, check_port, check_proxy, check_webroot, diagnose
from certman.doctor.keystore import check_private_keys
from certman.issuance.issue import issue, obtain


def _flags(pebble, port):
    return {
        "server": pebble.directory_url,
        "ca_bundle": str(pebble.ca_bundle),
        "http_address": "127.0.0.1",
        "http_port": port,
    }


@pytest.fixture
def listening():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_healthy_setup_passes_every_check(keystore, pebble, agreed):
    issue(standalone_spec(pebble, "healthy.example"), keystore, account=agreed)

    report = diagnose(None, overrides={"keystore": keystore.root, **_flags(pebble, services.free_port())})

    assert report.ok, report.failed
    assert [c.name for c in report.checks][:3] == ["config", "keystore", f"CA {pebble.directory_url}"]


def test_a_world_readable_private_key_fails_the_keystore_check(keystore, pebble, agreed):
    result = issue(standalone_spec(pebble, "modes.example"), keystore, account=agreed)
    key = keystore.root / "certs" / "modes.example" / "versions" / result.version / "privkey.pem"
    key.chmod(0o644)

    check = check_private_keys(keystore.root)

    assert not check.ok
    assert str(key) in check.detail and "0644" in check.detail
    assert f"chmod 600 {key}" in (check.hint or "")


def test_a_group_writable_keystore_directory_fails(tmp_path):
    root = tmp_path / "ks"
    root.mkdir(mode=0o700)
    root.chmod(0o770)

    assert not check_keystore(root).ok


def test_an_untrusted_ca_certificate_is_reported(tmp_path, pebble):
    report = diagnose(
        None, overrides={"keystore": tmp_path / "ks", "server": pebble.directory_url, "http_port": services.free_port()}
    )

    ca = next(c for c in report.checks if c.name.startswith("CA "))
    assert not ca.ok
    assert ca.detail == "its TLS certificate is not trusted"


def test_an_unreachable_ca_is_reported(tmp_path, stopped_pebble):
    report = diagnose(
        None,
        overrides={
            "keystore": tmp_path / "ks",
            "server": stopped_pebble.directory_url,
            "ca_bundle": str(stopped_pebble.ca_bundle),
            "http_port": services.free_port(),
        },
    )

    assert [c.detail for c in report.failed] == ["unreachable (connection failed)"]


def test_a_port_in_use_fails_the_standalone_check(listening):
    check = check_port("standalone", "127.0.0.1", listening)

    assert not check.ok
    assert f"127.0.0.1:{listening}" in check.detail


def test_a_missing_webroot_fails_and_a_present_one_stays_clean(tmp_path):
    webroot = tmp_path / "www"
    missing = check_webroot(webroot)
    webroot.mkdir()

    present = check_webroot(webroot)

    assert not missing.ok
    assert present.ok
    assert list(webroot.iterdir()) == []


def test_a_proxy_is_reachable_only_while_it_listens(listening):
    assert check_proxy("nginx", ("127.0.0.1", listening)).ok
    assert not check_proxy("nginx", ("127.0.0.1", services.free_port())).ok


def test_stored_certificates_bring_their_solvers_and_proxies_into_the_checks(keystore, pebble, agreed, listening):
    spec = replace(
        standalone_spec(pebble, "stored.example"),
        solvers=(
            SolverSpec("standalone", {"address": "127.0.0.1", "port": pebble.http_port}),
            SolverSpec("tls-alpn-01", {"port": services.free_port()}, match=("x.*",)),
        ),
        reloaders=({"name": "nginx", "verify": [f"127.0.0.1:{listening}"]},),
    )
    obtain(spec, keystore, account=agreed)

    report = diagnose(None, overrides={"keystore": keystore.root, **_flags(pebble, services.free_port())})

    names = [c.name for c in report.checks]
    assert {"standalone port", "tls-alpn-01 port", "proxy nginx"} <= set(names)
    assert report.ok, report.failed


def test_a_stored_solver_with_bad_options_fails_its_check(keystore, pebble, agreed):
    spec = standalone_spec(pebble, "options.example")
    issue(spec, keystore, account=agreed)
    with keystore.lock_cert(spec.name):
        keystore.write_spec(replace(spec, solvers=(SolverSpec("standalone", {"port": 8080, "colour": "blue"}),)))

    report = diagnose(None, overrides={"keystore": keystore.root, **_flags(pebble, services.free_port())})

    assert [(c.name, c.detail) for c in report.failed] == [
        ("solver standalone", "standalone solver: unknown option(s) colour")
    ]


def test_a_missing_webroot_of_a_stored_spec_is_reported(keystore, pebble, agreed):
    spec = standalone_spec(pebble, "webroot.example")
    issue(spec, keystore, account=agreed)
    with keystore.lock_cert(spec.name):
        keystore.write_spec(replace(spec, solvers=(SolverSpec("webroot", {"path": "/nonexistent/www"}),)))

    report = diagnose(None, overrides={"keystore": keystore.root, **_flags(pebble, services.free_port())})

    assert [(c.name, c.detail) for c in report.failed] == [("webroot", "/nonexistent/www does not exist")]


def test_an_invalid_config_file_fails_but_the_other_checks_still_run(tmp_path, pebble):
    config = tmp_path / "certman.toml"
    config.write_text("server = [unclosed\n")

    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config),
            "--keystore",
            str(tmp_path / "ks"),
            "doctor",
            "--server",
            pebble.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
            "--http-port",
            str(services.free_port()),
            "--json",
        ],
    )

    assert result.exit_code == 1
    checks = json.loads(result.stdout)["checks"]
    assert checks[0]["name"] == "config" and not checks[0]["ok"]
    # Issue 14 item 5 added the log line.
    assert [c["ok"] for c in checks[1:]] == [True, True, True, True] and checks[-1]["name"] == "log"
    assert result.stderr.startswith("certman: 1 of 5 checks failed")


def test_cli_doctor_prints_one_line_per_check_and_exits_0_when_healthy(tmp_path, pebble):
    result = CliRunner().invoke(
        cli,
        [
            "--keystore",
            str(tmp_path / "ks"),
            "doctor",
            "--server",
            pebble.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
            "--http-address",
            "127.0.0.1",
            "--http-port",
            str(services.free_port()),
        ],
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # Issue 14 item 5: the fifth line says where the run log is.
    assert len(lines) == 5 and lines[-1].startswith("ok    log: ")
    assert all(line.startswith("ok  ") for line in lines)


def test_a_misspelt_solver_option_that_issue_rejects_is_a_fail_line_naming_it(certman, tmp_path, pebble):
    config = tmp_path / "certman.toml"
    config.write_text('[[solver]]\nname = "standalone"\naddress = "127.0.0.1"\nprot = 8402\n')
    ca = ["--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle)]

    issued = certman("--config", str(config), "issue", *ca, "--agree-tos", "typo.example")
    doctor = certman(
        "--config", str(config), "doctor", *ca, "--http-address", "127.0.0.1", "--http-port", str(services.free_port())
    )

    assert issued.exit_code == 2 and "prot" in issued.stderr
    assert doctor.exit_code == 1
    failed = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1, doctor.stdout
    assert failed[0].startswith("FAIL  solver standalone: standalone solver: unknown option(s) prot")
