"""Secrets never reach logs (any level, tracebacks included), error output or public files."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import services
from fixtures.issuing import issue_for, make_spec

from certman import log
from certman.credentials import read_secret
from certman.errors import ConfigError
from certman.keystore import FileKeystore

HMAC = "eab-hmac-Zm9vYmFyYmF6cXV4cXV1eA"


def _key_lines(pem: bytes) -> list[str]:
    """Every spelling of the private scalar a log could carry: the PEM lines holding it, hex, base64url.

    Only the lines that overlap the private scalar count: the rest of a PKCS#8 EC key
    is the public point, which legitimately appears in CSRs and certificates.
    """
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    secret = key.private_numbers().private_value.to_bytes((key.curve.key_size + 7) // 8, "big")
    body = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
    der = base64.b64decode("".join(body))
    start = der.index(secret)
    bytes_per_line = len(base64.b64decode(body[0]))
    lines = body[start // bytes_per_line : (start + len(secret) - 1) // bytes_per_line + 1]
    return [*lines, secret.hex(), base64.urlsafe_b64encode(secret).decode().rstrip("=")]


@pytest.fixture
def cli_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_verbose_issuance_logs_no_private_key_material(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "certman",
            "-vvv",
            "--keystore",
            str(keystore),
            "issue",
            "--server",
            pebble.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
            "--agree-tos",
            "--http-address",
            "127.0.0.1",
            "--http-port",
            str(pebble.http_port),
            "a.example",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "DEBUG acme" in output  # the library's JWS traffic really was logged
    account_key = next((keystore / "accounts").glob("*/key.pem")).read_bytes()
    cert_key = (keystore / "live/a.example/privkey.pem").read_bytes()
    assert "PRIVATE KEY" not in output
    leaked = [line for line in _key_lines(account_key) + _key_lines(cert_key) if line in output]
    assert leaked == []


def test_a_registered_secret_is_redacted_from_messages_arguments_and_tracebacks(
    cli_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log.setup(3)
    log.register_secret(HMAC)
    logger = logging.getLogger("certman.test")

    logger.debug("binding with %s", HMAC)
    try:
        raise RuntimeError(f"server rejected {HMAC}")
    except RuntimeError:
        logger.exception("failed")

    err = capsys.readouterr().err
    assert "[redacted]" in err and "RuntimeError" in err
    assert HMAC not in err


def test_a_pem_private_key_or_jwk_private_member_in_a_log_line_is_redacted() -> None:
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----"
    jwk = '{"kty": "EC", "crv": "P-256", "d": "c2VjcmV0c2VjcmV0c2VjcmV0", "x": "AAAA"}'

    assert log.redact(f"key {pem} end") == "key [private key redacted] end"
    assert log.redact(jwk) == '{"kty": "EC", "crv": "P-256", "d": "[redacted]", "x": "AAAA"}'


def test_an_error_message_carrying_a_secret_is_redacted_at_the_cli_boundary(tmp_path: Path) -> None:
    secret_file = tmp_path / "hmac"
    secret_file.write_text(HMAC + "\n")
    secret_file.chmod(0o600)
    probe = (
        "import sys; from certman.credentials import read_secret; from certman.cli import fail; "
        "value = read_secret('CERTMAN_EAB_HMAC_KEY'); fail(f'CA refused key {value}', f'check {value}')"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CERTMAN_EAB_HMAC_KEY_FILE": str(secret_file)},
    )

    assert done.stderr == "certman: CA refused key [redacted]\nhint: check [redacted]\n"


def test_a_secret_is_read_from_the_file_named_by_its_file_variable(tmp_path: Path) -> None:
    secret_file = tmp_path / "hmac"
    secret_file.write_text(HMAC + "\n")
    secret_file.chmod(0o600)

    value = read_secret("CERTMAN_EAB_HMAC_KEY", {"CERTMAN_EAB_HMAC_KEY_FILE": str(secret_file)})

    assert value == HMAC
    assert log.redact(f"x{HMAC}y") == "x[redacted]y"


def test_a_secret_file_readable_by_everyone_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "hmac"
    secret_file.write_text(HMAC)
    secret_file.chmod(0o644)

    with pytest.raises(ConfigError, match=f"{secret_file} is readable by every user"):
        read_secret("CERTMAN_EAB_HMAC_KEY", {"CERTMAN_EAB_HMAC_KEY_FILE": str(secret_file)})


def test_a_secret_set_both_directly_and_by_file_is_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both CERTMAN_TOKEN and CERTMAN_TOKEN_FILE are set"):
        read_secret("CERTMAN_TOKEN", {"CERTMAN_TOKEN": "abcd", "CERTMAN_TOKEN_FILE": str(tmp_path / "t")})


def test_key_material_lives_only_in_0600_files(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore = FileKeystore(tmp_path / "keystore")
    issue_for(make_spec(pebble.directory_url, pebble, "a.example"), keystore)

    holders = {
        str(p.relative_to(keystore.root)): oct(p.stat().st_mode & 0o777)
        for p in keystore.root.rglob("*")
        if p.is_file() and not p.is_symlink() and b"PRIVATE KEY" in p.read_bytes()
    }

    assert set(holders.values()) == {"0o600"}
    assert {Path(p).name for p in holders} == {"key.pem", "privkey.pem", "combined.pem"}


def test_a_reload_hook_never_sees_certmans_secrets(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore, seen = tmp_path / "keystore", tmp_path / "hook-env.txt"
    secret_file = tmp_path / "tsig.secret"
    secret_file.write_text("dHNpZy1zZWNyZXQtZm9yLXRoZS1ob29rLXRlc3Q=")
    secret_file.chmod(0o600)
    hook = ["/bin/sh", "-c", f"env > {seen}"]
    env = {
        **os.environ,
        "CERTMAN_EAB_HMAC_KEY": HMAC,
        "CERTMAN_RFC2136_SECRET": "c2VjcmV0LWluLWVudg==",
        "CERTMAN_RFC2136_SECRET_FILE": str(secret_file),
        "CERTMAN_KEYSTORE": str(keystore),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "certman",
            "issue",
            "--server",
            pebble.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
            "--agree-tos",
            "--http-address",
            "127.0.0.1",
            "--http-port",
            str(pebble.http_port),
            "--reload-cmd",
            json.dumps(hook),
            "hookenv.example",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    hook_env = seen.read_text()
    assert "CERTMAN_NAME=hookenv.example" in hook_env  # the hook ran and got its own variables
    for leaked in (HMAC, "c2VjcmV0LWluLWVudg==", "CERTMAN_RFC2136_SECRET", "CERTMAN_EAB_HMAC_KEY", str(secret_file)):
        assert leaked not in hook_env
