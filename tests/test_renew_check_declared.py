"""`renew --check` makes the local checks a real renew makes before ordering a declared
certificate: a misspelt option in a [[certificate]] plugin table exits 2, naming the key."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CERTMAN = str(Path(sys.executable).parent / "certman")
# Nothing listens here: --check must not need the CA.
HEAD = 'server = "https://127.0.0.1:1/dir"\nagree_tos = true\n[[certificate]]\nnames = ["typo.example"]\n'


def check(tmp_path: Path, tables: str, *flags: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "certman.toml"
    config.write_text(HEAD + tables)
    env = {"PATH": "/usr/bin:/bin", "CERTMAN_CONFIG": str(config), "CERTMAN_KEYSTORE": str(tmp_path / "ks")}
    return subprocess.run(
        [CERTMAN, "renew", "--check", *flags], capture_output=True, text=True, timeout=60, env=env, cwd="/"
    )


@pytest.mark.parametrize(
    ("tables", "message", "hint"),
    [
        (
            '[[certificate.solver]]\nname = "standalone"\nhtp_port = 8402\n',
            "certman: typo.example: standalone solver: unknown option(s) htp_port",
            "hint: did you mean port for htp_port? known settings: address, connection_timeout, port",
        ),
        (
            '[[certificate.reloader]]\nname = "command"\nargv = ["/bin/true"]\ntiemout = 5\n',
            "certman: typo.example: command reloader: unknown option(s) tiemout",
            "hint: did you mean timeout for tiemout? known settings: argv, timeout",
        ),
        (
            '[[certificate.solver]]\nname = "standalone"\nport = "eighty"\n',
            "certman: typo.example: standalone solver: ",
            "hint: ",
        ),
    ],
    ids=["solver-option", "reloader-option", "solver-value"],
)
def test_a_bad_plugin_table_exits_2_naming_the_key(tmp_path: Path, tables: str, message: str, hint: str) -> None:
    done = check(tmp_path, tables)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(message) and lines[1].startswith(hint), done.stderr
    assert done.stdout == ""


def test_with_json_the_error_is_the_document(tmp_path: Path) -> None:
    done = check(tmp_path, '[[certificate.solver]]\nname = "standalone"\nhtp_port = 8402\n', "--json")
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert "htp_port" in error["message"] and error["exit_code"] == 2


def test_a_valid_table_is_reported_due_without_contacting_the_ca(tmp_path: Path) -> None:
    done = check(tmp_path, '[[certificate.solver]]\nname = "standalone"\nport = 8402\n')
    assert done.returncode == 0, done.stderr
    assert "typo.example" in done.stdout and "due" in done.stdout


def test_a_port_held_elsewhere_is_left_to_the_real_run(tmp_path: Path) -> None:
    # The timer's own renew may be serving the port at this moment: --check probes nothing.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = check(tmp_path, f'[[certificate.solver]]\nname = "standalone"\naddress = "127.0.0.1"\nport = {port}\n')
    assert done.returncode == 0, done.stderr
