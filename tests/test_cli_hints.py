"""Every error helps: a table of bad inputs through the CLI, each ending in `certman: …`,
`hint: …` and its documented exit code; under --json, the same error as a JSON document."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.cli import CertmanRun
from test_cli_errors import closed_port

CERTMAN = str(Path(sys.executable).parent / "certman")


def _unreachable() -> list[str]:
    return ["--server", f"https://127.0.0.1:{closed_port()}/dir", "--agree-tos", "--timeout", "1"]


# (id, config file text or None, extra environment, argv, exit code, words the message or hint must hold)
CASES: list[tuple[str, str | None, dict[str, str], list[str], int, tuple[str, ...]]] = [
    ("forbidden character", None, {}, ["issue", "bad!.example"], 2, ("'!'", "host name such as")),
    ("empty label", None, {}, ["issue", "a..example"], 2, ("empty label", "host name such as")),
    ("hyphen label", None, {}, ["issue", "a-.example"], 2, ("hyphen", "host name such as")),
    ("bare wildcard", None, {}, ["issue", "*."], 2, ("wildcard", "*.example.com")),
    ("wildcard over http-01", None, {}, ["issue", "*.example.com"], 2, ("HTTP-01", "DNS-01")),
    ("plain http CA", None, {}, ["issue", "--server", "http://ca.example/dir", "a.example"], 2, ("https",)),
    ("port as words", 'http-port = "eighty"\n', {}, ["list"], 2, ('http-port = "eighty"', "whole number", "= 80")),
    ("bool as words", 'agree-tos = "maybe"\n', {}, ["list"], 2, ("agree-tos", "true or false")),
    ("solver as number", "solver = 5\n", {}, ["list"], 2, ("solver = 5", 'solver = "standalone"')),
    ("certificate as string", 'certificate = "x"\n', {}, ["list"], 2, ("[[certificate]]", "names =")),
    ("unknown setting", 'colour = "red"\n', {}, ["list"], 2, ("'colour'", "known settings")),
    ("invalid TOML", "email = ops@example.com\n", {}, ["list"], 2, ("not valid TOML", "need quotes")),
    ("webroot shorthand without a path", 'solver = "webroot"\n', {}, ["issue", "a.example"], 2, ("--webroot",)),
    ("unknown key type", None, {"CERTMAN_KEY_TYPE": "dsa"}, ["list"], 2, ("dsa", "ecdsa-p256")),
    ("zero lock timeout", None, {"CERTMAN_LOCK_TIMEOUT": "0"}, ["list"], 2, ("CERTMAN_LOCK_TIMEOUT", "seconds")),
    ("unknown option", None, {}, ["list", "--nope"], 2, ("--nope", "certman list --help")),
    ("unknown command", None, {}, ["lsit"], 2, ("lsit", "--help")),
    ("jobs zero", None, {}, ["renew", "--jobs", "0"], 2, ("--jobs", "certman renew --help")),
    ("reload-cmd not JSON", None, {}, ["issue", "--reload-cmd", "nginx -s reload", "a.example"], 2, ("JSON",)),
    ("unknown solver", None, {}, ["issue", "--solver", "carrier-pigeon", "a.example"], 2, ("carrier-pigeon",)),
    ("show of nothing", None, {}, ["show", "absent.example"], 2, ("absent.example",)),
    ("revoke of nothing", None, {}, ["revoke", "absent.example"], 2, ("absent.example",)),
    ("keystore under /proc", None, {"CERTMAN_KEYSTORE": "/proc/nope"}, ["list"], 3, ("/proc/nope",)),
    ("timer --user --cron", None, {}, ["timer", "install", "--user", "--cron", "--print"], 2, ("crontab",)),
    ("unreachable CA", None, {}, ["issue", "a.example"], 4, ("127.0.0.1",)),
]


def _run(certman: CertmanRun, tmp_path: Path, config: str | None, env: dict[str, str], argv: list[str]):
    if config is not None:
        path = tmp_path / "certman.toml"
        path.write_text(config)
        argv = ["--config", str(path), *argv]
    if argv[-1] == "a.example" and argv[0] == "issue" and "--server" not in argv:
        argv = [*argv[:-1], *_unreachable(), "a.example"]
    return certman(*argv, env=env)


@pytest.mark.parametrize(("config", "env", "argv", "code", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_error_prints_a_message_and_a_hint(
    certman: CertmanRun, tmp_path: Path, config: str | None, env: dict[str, str], argv: list[str], code: int, words
) -> None:
    result = _run(certman, tmp_path, config, env, argv)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("certman: "), lines
    assert any(line.startswith("hint: ") for line in lines), lines
    assert all(line.startswith(("certman: ", "hint: ")) for line in lines), lines
    assert "Traceback" not in result.output
    # Config errors speak TOML, never Python.
    assert not any(word in result.stderr for word in ("tuple[", "Mapping[", "str | None", "<class"))
    for word in words:
        assert word in result.stderr


@pytest.mark.parametrize(
    "argv",
    [["issue", "--json", "bad!.example"], ["list", "--json"], ["show", "--json", "absent.example"]],
    ids=["issue", "list", "show"],
)
def test_a_json_failure_prints_the_error_as_json_on_stdout(certman: CertmanRun, argv: list[str]) -> None:
    env = {"CERTMAN_KEYSTORE": "/proc/nope"} if argv[0] == "list" else {}
    result = certman(*argv, env=env)
    document = json.loads(result.stdout)
    assert set(document) == {"error"}
    error = document["error"]
    assert error["exit_code"] == result.exit_code != 0
    assert result.stderr.splitlines() == [f"certman: {error['message']}", f"hint: {error['hint']}"]


def test_a_json_failure_after_the_document_adds_no_second_one(certman: CertmanRun) -> None:
    # "--" ends the options: a name spelled --json after it is not the flag.
    result = certman("issue", "--", "--json")
    assert result.exit_code == 2
    assert result.stdout == ""


def test_timer_install_without_root_says_so_and_offers_user_units(tmp_path: Path) -> None:
    # Root without CAP_DAC_OVERRIDE meets file modes as any other user would.
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    units.chmod(0o555)
    drop = "-dac_override,-dac_read_search"
    done = subprocess.run(
        ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", "--", CERTMAN, "timer", "install"]
        + ["--root", str(tmp_path), "--keystore", str(tmp_path / "ks")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    message, hint = done.stderr.splitlines()
    assert message.startswith("certman: cannot write ") and "permission denied" in message
    assert hint.startswith("hint: ") and "certman timer install --user" in hint
    assert list(units.iterdir()) == []


def test_timer_install_user_writes_user_units_below_xdg_config_home(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": "/home/op/.config"}
    done = subprocess.run(
        [CERTMAN, "--keystore", "/home/op/ks", "timer", "install", "--user", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    directory = tmp_path / "home" / "op" / ".config" / "systemd" / "user"
    service = (directory / "certman-renew.service").read_text().splitlines()
    assert f"ExecStart={CERTMAN} --keystore /home/op/ks renew" in service
    assert "ProtectSystem=strict" not in service  # a user manager cannot sandbox that way
    assert "Persistent=true" in (directory / "certman-renew.timer").read_text()
    done = subprocess.run(
        [CERTMAN, "timer", "uninstall", "--user", "--root", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and not list(directory.iterdir())
