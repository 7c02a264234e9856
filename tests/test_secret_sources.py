"""Secrets in every form they arrive (issue 12, kind 5): one strict reader for every secret
file, redaction of every credential a plugin gets (options, files, its own environment
variables), and an empty variable counting as unset."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import services
from fixtures.bind import Bind

from certman import log
from certman.ca.eab import external_account
from certman.config import load_settings
from certman.credentials import read_secret
from certman.errors import ConfigError
from certman.plugins.settings import settings_from
from certman.solvers.dns01.rfc2136 import RFC2136Settings

HMAC = "ZWFiLWhtYWMta2V5LWZvci10aGUtbW9kZS10ZXN0"
CERTMAN = str(Path(sys.executable).parent / "certman")
# Nothing listens here: the CA and lexicon's API endpoints fail locally, without network.
CLOSED = "127.0.0.1:9"


def _secret_file(tmp_path: Path, mode: int, text: str = HMAC + "\n") -> Path:
    path = tmp_path / f"secret-{mode:o}"
    path.write_text(text)
    path.chmod(mode)
    return path


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": env.get("HOME", "/nonexistent")}
    return subprocess.run([CERTMAN, *args], capture_output=True, text=True, timeout=120, env={**base, **env}, cwd="/")


@pytest.mark.parametrize("given", ["flag", "env"])
def test_a_world_readable_eab_hmac_key_file_is_refused_before_the_ca_is_contacted(tmp_path: Path, given: str) -> None:
    key_file = _secret_file(tmp_path, 0o644)
    flag = ["--eab-hmac-key-file", str(key_file)] if given == "flag" else []
    env = {"CERTMAN_EAB_HMAC_KEY_FILE": str(key_file)} if given == "env" else {}

    done = _run(
        "--keystore", str(tmp_path / "ks"), "issue", "--server", f"https://{CLOSED}/dir",
        "--agree-tos", "--eab-kid", "kid-1", *flag, "a.example", env=env,
    )  # fmt: skip

    assert done.returncode == 2, done.stderr
    assert f"{key_file} is readable by every user" in done.stderr
    assert f"hint: chmod o-r {key_file}" in done.stderr
    assert HMAC not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_group_readable_secret_file_is_used_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key_file = _secret_file(tmp_path, 0o640)

    with caplog.at_level(logging.WARNING, logger="certman.credentials"):
        account = external_account("kid-1", key_file)

    assert account is not None and account.hmac_key == HMAC
    assert [r.getMessage() for r in caplog.records] == [
        f"--eab-hmac-key-file: {key_file} is readable by its group (gid {os.getgid()}); "
        f"chmod g-r {key_file} if no one else should"
    ]
    assert log.redact(f"<{HMAC}>") == "<[redacted]>"


def test_the_rfc2136_secret_file_goes_through_the_same_reader(tmp_path: Path) -> None:
    options = {"server": "127.0.0.1", "key_name": "k", "zone": "example.test"}

    with pytest.raises(ConfigError, match="option key_secret_file: .* is readable by every user"):
        settings_from(RFC2136Settings, {**options, "key_secret_file": str(_secret_file(tmp_path, 0o604))}, plugin="x")
    with pytest.raises(ConfigError, match="CERTMAN_RFC2136_SECRET_FILE: .* is readable by every user"):
        settings_from(
            RFC2136Settings,
            options,
            plugin="x",
            env={"CERTMAN_RFC2136_SECRET_FILE": str(_secret_file(tmp_path, 0o644))},
        )


def test_a_fifo_in_place_of_a_secret_file_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "hmac"
    os.mkfifo(fifo, 0o600)

    with pytest.raises(ConfigError, match=f"--eab-hmac-key-file: {fifo} is not a regular file"):
        external_account("kid-1", fifo)


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    key_file = _secret_file(tmp_path, 0o600)

    assert read_secret("CERTMAN_EAB_HMAC_KEY", {"CERTMAN_EAB_HMAC_KEY": "", "CERTMAN_EAB_HMAC_KEY_FILE": ""}) is None
    assert read_secret("CERTMAN_EAB_HMAC_KEY", {"CERTMAN_EAB_HMAC_KEY": HMAC, "CERTMAN_EAB_HMAC_KEY_FILE": ""}) == HMAC
    from_file = {"CERTMAN_EAB_HMAC_KEY": "", "CERTMAN_EAB_HMAC_KEY_FILE": str(key_file)}
    assert read_secret("CERTMAN_EAB_HMAC_KEY", from_file) == HMAC
    account = external_account("kid-1", env={"CERTMAN_EAB_HMAC_KEY_FILE": "", "CERTMAN_EAB_HMAC_KEY": HMAC})
    assert account is not None and account.hmac_key == HMAC
    config = tmp_path / "certman.toml"
    config.write_text("")
    settings = load_settings(
        config,
        env={"CERTMAN_CA_BUNDLE": "", "CERTMAN_KEY_TYPE": "", "CERTMAN_KEYSTORE": str(tmp_path / "ks"),
             "XDG_CONFIG_HOME": str(tmp_path), "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"},
    )  # fmt: skip
    assert settings.ca_bundle == "/etc/ssl/certs/ca-certificates.crt"
    assert settings.key_type == "ecdsa-p256"


@pytest.mark.parametrize(
    ("provider", "variables"),
    [
        # The input: the token in lexicon's own variable, at -vv.
        (
            "powerdns",
            {
                "LEXICON_POWERDNS_AUTH_TOKEN": "pdns-token-0123456789",
                "LEXICON_POWERDNS_PDNS_SERVER": f"http://{CLOSED}",
            },
        ),  # noqa: E501
        # One more of the kind: namesilo sends its key in the URL, which urllib3 and the error quote.
        (
            "namesilo",
            {
                "LEXICON_NAMESILO_AUTH_TOKEN": "silo-token-0123456789",
                "LEXICON_NAMESILO_API_ENDPOINT": f"http://{CLOSED}",
            },
        ),  # noqa: E501
    ],
)
def test_a_lexicon_token_from_lexicons_own_variable_never_shows_at_debug_level(
    tmp_path: Path, dns_pebble: services.Pebble, bind: Bind, provider: str, variables: dict[str, str]
) -> None:
    token = next(v for k, v in variables.items() if k.endswith("_AUTH_TOKEN"))
    endpoint = next(v for k, v in variables.items() if not k.endswith("_AUTH_TOKEN"))
    env = {
        **variables,
        "HOME": str(tmp_path),
        "CERTMAN_LEXICON_PROVIDER": provider,
        "CERTMAN_LEXICON_DOMAIN": "example.test",
        "CERTMAN_DNS01_RESOLVERS": bind.address,
        "CERTMAN_DNS01_NAMESERVER_PORT": str(bind.port),
    }

    done = _run(
        "-vv", "--keystore", str(tmp_path / "ks"), "issue", "--server", dns_pebble.directory_url,
        "--ca-bundle", str(dns_pebble.ca_bundle), "--agree-tos", "--solver", "dns-01",
        "--dns-provider", "lexicon", f"{provider}.leak.example.test", env=env,
    )  # fmt: skip

    assert done.returncode == 5, done.stderr
    assert f"certman: lexicon ({provider}): create record TXT" in done.stderr
    assert token not in done.stdout + done.stderr
    # Settings that are not secrets stay readable.
    assert endpoint.removeprefix("http://") in done.stderr
