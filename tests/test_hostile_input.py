"""Hostile input: CA tokens, names and certificate names are checked before any path or request."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import services
from fixtures.fault_proxy import FaultProxy
from fixtures.issuing import issue_for, make_spec
from fixtures.snapshot import snapshot

import certman
from certman.config import CertSpec, SolverSpec
from certman.errors import ACMEError, UsageError
from certman.keystore import FileKeystore
from certman.names import check_cert_name, normalise
from certman.solvers.http01 import check_token

# A sweep over hostile tokens and names: the full suite runs it, `make test-fast` does not.
pytestmark = pytest.mark.slow

HOSTILE_TOKENS = [
    "../../../../etc/passwd",
    "AAAAAAAAAAAAAAAAAAAAAAAA/../../../../tmp/xy",
    "AAAAAAAAAAAAAAAAAAAAAA%2e%2e%2f",
    "AAAAAAAAAAAAAAAAAAAAAA\x00",
    "AAAAAAAAAAAAAAAAAAAAAA\n",
    "short",
    "",
]

HOSTILE_NAMES = [
    "a/b.example",
    "a\\b.example",
    "../a.example",
    "a;reboot.example",
    "$(id).example",
    "a`id`.example",
    "a|b.example",
    "a&b.example",
    "a b.example",
    "a\nb.example",
    "a\rb.example",
    "a\tb.example",
    "a'b.example",
    'a"b.example',
    "a>b.example",
    "a<b.example",
    "a*b.example",
]


@pytest.mark.parametrize("token", HOSTILE_TOKENS)
def test_a_token_outside_the_base64url_alphabet_is_refused(token: str) -> None:
    with pytest.raises(ACMEError, match="not plain base64url"):
        check_token(token)


@pytest.mark.parametrize("token", ["../../../../tmp/certman-evil", "AAAAAAAAAAAAAAAAAAAAAAAA/../../../tmp/xy", "short"])
def test_a_hostile_token_from_the_ca_never_reaches_the_webroot(
    fault_proxy: FaultProxy, pebble: services.Pebble, tmp_path: Path, token: str
) -> None:
    webroot = tmp_path / "www"
    webroot.mkdir()
    keystore = FileKeystore(tmp_path / "keystore")
    spec = make_spec(fault_proxy.directory_url, pebble, "a.example")
    spec = CertSpec(
        name=spec.name,
        identifiers=spec.identifiers,
        server=spec.server,
        solvers=(SolverSpec("webroot", {"path": str(webroot)}),),
        ca_bundle=spec.ca_bundle,
    )
    fault_proxy.add(path=r"^/authZ/", method="POST", sub=(r'"token": "[^"]*"', f'"token": "{token}"'))

    with pytest.raises(ACMEError):
        issue_for(spec, keystore)

    assert list(webroot.iterdir()) == []
    assert not Path("/tmp/certman-evil").exists()
    assert fault_proxy.count("POST", r"^/chalZ/") == 0


@pytest.mark.parametrize("name", HOSTILE_NAMES + ["a\x00b.example"])
def test_a_name_with_separators_metacharacters_nul_or_newlines_is_refused(name: str) -> None:
    with pytest.raises(UsageError, match="invalid identifier"):
        normalise(name)


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "-flag", "a\x00b", "a\nb", "abc\n", "a b", "a;b", ""])
def test_a_certificate_name_that_could_leave_its_directory_is_refused(name: str) -> None:
    with pytest.raises(UsageError, match="invalid certificate name"):
        check_cert_name(name)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_the_cli_refuses_a_hostile_name_before_any_request_or_write(
    fault_proxy: FaultProxy, pebble: services.Pebble, tmp_path: Path, name: str
) -> None:
    keystore = tmp_path / "keystore"

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "certman",
            "--keystore",
            str(keystore),
            "issue",
            "--server",
            fault_proxy.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
            "--agree-tos",
            name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert done.stderr.startswith("certman: invalid identifier") and done.stderr.count("\n") <= 2
    assert fault_proxy.seen == []
    assert not keystore.exists()


def test_a_hostile_name_in_a_stored_spec_is_refused_before_any_request(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)
    spec_path = fresh_keystore.root / "certs/a.example/spec.toml"
    spec_path.write_text(spec_path.read_text().replace('"a.example",\n]', '"a.example",\n    "$(reboot).example",\n]'))
    before = snapshot(fresh_keystore.root)
    fault_proxy.forget_requests()

    with pytest.raises(UsageError, match=r"invalid identifier '\$\(reboot\)\.example'"):
        issue_for(fresh_keystore.read_spec("a.example"), fresh_keystore)

    assert fault_proxy.seen == []
    assert snapshot(fresh_keystore.root) == before


def _shell_calls(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        if any(
            k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
            for k in node.keywords
        ):
            found.append(f"shell= at line {node.lineno}")
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("system", "popen", "getoutput", "getstatusoutput"):
            found.append(f"{func.attr}() at line {node.lineno}")
    return found


def test_no_certman_module_ever_runs_a_shell() -> None:
    package = Path(certman.__file__).parent
    offenders = {
        str(p.relative_to(package)): calls for p in package.rglob("*.py") if (calls := _shell_calls(p.read_text()))
    }

    assert offenders == {}


def test_the_shell_check_recognises_a_shell_call() -> None:
    assert _shell_calls("import subprocess\nsubprocess.run('x', shell=True)\nos.system('y')\n") == [
        "shell= at line 2",
        "system() at line 3",
    ]
