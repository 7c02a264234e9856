"""Bad input found in review: each case ends in one line, a hint and its documented exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import services
import tomli_w
from fixtures.cli import CertmanRun, holding_cert_lock, issue_flags
from test_cli_errors import assert_one_line_error, closed_port


def test_keystore_under_proc_exits_3_naming_the_path(certman: CertmanRun) -> None:
    # /proc answers ENOENT to mkdir although the parent exists.
    assert_one_line_error(certman("--keystore", "/proc/nope", "list"), 3, "/proc/nope")


def test_issue_with_a_missing_ca_bundle_exits_2_naming_it_before_any_request(certman: CertmanRun) -> None:
    # The server would be unreachable (exit 4) if certman tried to talk to it.
    result = certman(
        "issue",
        "--server",
        f"https://127.0.0.1:{closed_port()}/dir",
        "--agree-tos",
        "--ca-bundle",
        "/nonexistent/ca.pem",
        "a.example",
    )
    assert_one_line_error(result, 2, "/nonexistent/ca.pem")


def test_a_ca_bundle_that_is_a_directory_exits_2_naming_it(certman: CertmanRun, tmp_path: Path) -> None:
    result = certman(
        "issue",
        "--server",
        f"https://127.0.0.1:{closed_port()}/dir",
        "--agree-tos",
        "--ca-bundle",
        str(tmp_path),
        "a.example",
    )
    assert_one_line_error(result, 2, str(tmp_path), "directory")


def test_account_register_with_a_missing_ca_bundle_exits_2_naming_it(
    certman: CertmanRun, pebble: services.Pebble
) -> None:
    # No spec is built here: the bundle is first opened by the ACME session itself.
    result = certman(
        "account", "register", "--server", pebble.directory_url, "--agree-tos", "--ca-bundle", "/nonexistent/ca.pem"
    )
    assert_one_line_error(result, 2, "/nonexistent/ca.pem")


def test_doctor_with_a_missing_ca_bundle_prints_a_fail_line_naming_it(
    certman: CertmanRun, pebble: services.Pebble
) -> None:
    result = certman(
        "doctor",
        "--server",
        pebble.directory_url,
        "--ca-bundle",
        "/nonexistent/ca.pem",
        "--http-address",
        "127.0.0.1",
        "--http-port",
        str(services.free_port()),
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    fail_lines = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert fail_lines == [
        f"FAIL  CA {pebble.directory_url}: CA bundle /nonexistent/ca.pem cannot be read: "
        "No such file or directory (hint: set --ca-bundle (or ca_bundle) to the PEM file "
        "of the CA that signed the server's certificate)"
    ]


@pytest.mark.parametrize(
    "state",
    [
        "[1, 2]",
        '{"next_attempt": "bogus", "consecutive_failures": 1}',
        '{"consecutive_failures": "x"}',
        '{"last_success": 5}',
        "{not json",
    ],
)
def test_a_corrupt_state_file_fails_only_its_certificate(
    certman: CertmanRun, pebble: services.Pebble, state: str
) -> None:
    for name in ("good.example", "bad.example"):
        assert certman("issue", *issue_flags(pebble), name).exit_code == 0
    state_file = certman.keystore / "certs" / "bad.example" / "state.json"
    state_file.write_text(state)
    # One at a time: both certificates' standalone solvers use the same port.
    result = certman("renew", "--force", "--jobs", "1", "--json")
    assert result.exit_code == 7, result.output
    actions = {r["name"]: (r["action"], r["error"] or "") for r in json.loads(result.stdout)["certificates"]}
    assert actions["good.example"] == ("renewed", "")
    assert actions["bad.example"][0] == "failed"
    assert str(state_file) in actions["bad.example"][1]
    assert "Traceback" not in result.output


def test_an_index_that_is_not_an_object_exits_3_naming_it(certman: CertmanRun) -> None:
    certman.keystore.mkdir(mode=0o700)
    (certman.keystore / "index.json").write_text("[1, 2]")
    assert_one_line_error(certman("list"), 3, str(certman.keystore / "index.json"), "certman doctor")


def _corrupt_index_entry(certman: CertmanRun, pebble: services.Pebble, name: str, **changes: object) -> None:
    assert certman("issue", *issue_flags(pebble), name).exit_code == 0
    index_file = certman.keystore / "index.json"
    index = json.loads(index_file.read_text())
    entry = index["certificates"][name]
    for key, value in changes.items():
        if value is None:
            del entry[key]
        else:
            entry[key] = value
    index_file.write_text(json.dumps(index))


@pytest.mark.parametrize("command", ["list", "renew", "renew --check", "explain idx.example", "show idx.example"])
def test_an_index_entry_with_a_garbage_not_after_exits_3_naming_it(
    certman: CertmanRun, pebble: services.Pebble, command: str
) -> None:
    _corrupt_index_entry(certman, pebble, "idx.example", not_after="garbage")
    assert_one_line_error(certman(*command.split()), 3, "'idx.example'", "not_after", "'garbage'")


def test_an_index_entry_without_not_before_exits_3_naming_it(certman: CertmanRun, pebble: services.Pebble) -> None:
    _corrupt_index_entry(certman, pebble, "idx.example", not_before=None)
    assert_one_line_error(certman("renew"), 3, "'idx.example'", "not_before", "missing")


def test_deleting_a_malformed_index_entry_and_issuing_again_repairs_it(
    certman: CertmanRun, pebble: services.Pebble
) -> None:
    # What the error's hint tells the operator to do.
    _corrupt_index_entry(certman, pebble, "idx.example", not_after="garbage")
    index_file = certman.keystore / "index.json"
    index = json.loads(index_file.read_text())
    del index["certificates"]["idx.example"]
    index_file.write_text(json.dumps(index))
    assert certman("issue", *issue_flags(pebble), "--name", "idx.example", "idx.example").exit_code == 0
    assert "idx.example" in certman("list").stdout


@pytest.mark.parametrize("solver", ["standalone", "tls-alpn-01"])
def test_a_solver_port_that_is_not_a_number_exits_2_naming_it(certman: CertmanRun, tmp_path: Path, solver: str) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(f'[[solver]]\nname = "{solver}"\nport = "abc"\n')
    result = certman(
        "--config",
        str(config),
        "issue",
        "--server",
        f"https://127.0.0.1:{closed_port()}/dir",
        "--agree-tos",
        "x.example",
    )
    assert_one_line_error(result, 2, f"{solver} solver", "port = 'abc'")


@pytest.mark.parametrize("reloader", ["nginx", "haproxy", "caddy"])
def test_a_reloader_timeout_that_is_not_a_number_fails_the_deploy_naming_it(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path, reloader: str
) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "server": pebble.directory_url,
                "ca_bundle": str(pebble.ca_bundle),
                "agree_tos": True,
                "http_address": "127.0.0.1",
                "http_port": pebble.http_port,
                "certificate": [{"names": ["reload.example"], "reloader": [{"name": reloader, "timeout": "abc"}]}],
            }
        )
    )
    result = certman("--config", str(config), "renew", "--json")
    assert result.exit_code == 7, result.output
    [cert] = json.loads(result.stdout)["certificates"]
    assert f"{reloader} reloader: option timeout = 'abc'" in cert["error"]


@pytest.mark.parametrize("bad_conf", ["not-utf8", "directory"])
def test_an_unreadable_certbot_renewal_conf_skips_only_its_lineage(
    certman: CertmanRun, certbot_dir, tmp_path: Path, bad_conf: str
) -> None:
    config_dir = tmp_path / "letsencrypt"
    shutil.copytree(certbot_dir.config_dir, config_dir, symlinks=True)
    conf = config_dir / "renewal" / "bad.example.conf"
    if bad_conf == "directory":
        conf.mkdir()
    else:
        conf.write_bytes(b"version = 2.0\n\xff\xfe\n")
    result = certman("import", "certbot", "--config-dir", str(config_dir), "--json")
    assert result.exit_code == 0, result.output
    imported = json.loads(result.stdout)
    assert set(imported["certificates_imported"]) == {"cb.example", "web.example"}
    assert str(conf) in imported["skipped"]["certificate bad.example"]


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_finite_number_exits_2_naming_it(certman: CertmanRun, timeout: str) -> None:
    result = certman(
        "issue", "--server", f"https://127.0.0.1:{closed_port()}/dir", "--agree-tos", "--timeout", timeout, "a.example"
    )
    assert_one_line_error(result, 2, "--timeout", "positive number of seconds")


@pytest.mark.parametrize("lock_timeout", ["-1", "nan"])
def test_a_lock_timeout_that_is_not_a_positive_finite_number_exits_2_naming_it(
    certman: CertmanRun, lock_timeout: str
) -> None:
    result = certman("list", env={"CERTMAN_LOCK_TIMEOUT": lock_timeout})
    assert_one_line_error(result, 2, "CERTMAN_LOCK_TIMEOUT", "positive number of seconds")


def test_an_unwritable_metrics_file_exits_3_after_printing_the_results(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path
) -> None:
    assert certman("issue", *issue_flags(pebble), "metrics.example").exit_code == 0
    metrics_file = tmp_path / "no-such-dir" / "certman.prom"
    result = certman("renew", "--json", "--metrics-file", str(metrics_file))
    assert_one_line_error(result, 3, str(metrics_file))
    [cert] = json.loads(result.stdout)["certificates"]
    assert (cert["name"], cert["action"]) == ("metrics.example", "skipped")


def test_the_lock_timeout_hint_names_settings_that_exist(certman: CertmanRun, pebble: services.Pebble) -> None:
    with holding_cert_lock(certman.keystore, "locked.example"):
        result = certman("issue", *issue_flags(pebble), "locked.example", env={"CERTMAN_LOCK_TIMEOUT": "0.2"})
    assert_one_line_error(
        result, 3, "hint: wait for the other run to finish, or set lock_timeout in certman.toml or CERTMAN_LOCK_TIMEOUT"
    )


@pytest.mark.parametrize(
    "content, said",
    [
        (b'email = "ops@exampl\xe9.com"\n', "is not UTF-8 text"),
        (b'[[solver]]\nname = "standalone"\nmatch = 5\n', "match must be a list of name patterns"),
    ],
    ids=["latin-1 bytes", "match not a list"],
)
def test_a_config_file_certman_cannot_read_exits_2_naming_it(
    certman: CertmanRun, tmp_path: Path, content: bytes, said: str
) -> None:
    config = tmp_path / "certman.toml"
    config.write_bytes(content)

    result = certman(
        "--config", str(config), "issue", "--server", f"https://127.0.0.1:{closed_port()}/dir", "x.example"
    )

    assert_one_line_error(result, 2, said)


@pytest.mark.parametrize("days", ["-5", "0", "400", "nan"])
def test_a_renew_before_days_that_is_not_a_sane_number_of_days_exits_2(
    certman: CertmanRun, tmp_path: Path, days: str
) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(f'[[certificate]]\nnames = ["rbd.example"]\nrenew_before_days = {days}\n')

    result = certman("--config", str(config), "renew", "--check")

    assert_one_line_error(result, 2, f"renew_before_days = {float(days)}", "at most 398")


def test_a_ca_bundle_without_a_pem_certificate_exits_2_naming_it_before_any_request(
    certman: CertmanRun, tmp_path: Path
) -> None:
    bundle = tmp_path / "hostname"
    bundle.write_text("web01\n")

    result = certman(
        "issue",
        "--server",
        f"https://127.0.0.1:{closed_port()}/dir",
        "--agree-tos",
        "--ca-bundle",
        str(bundle),
        "a.example",
    )

    assert_one_line_error(result, 2, f"CA bundle {bundle} holds no PEM certificate")
