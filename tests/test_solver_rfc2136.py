"""The RFC 2136 provider: TSIG failures are clear and never carry the secret; settings come from env and files."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import services
from fixtures.bind import Bind

from certman.errors import ConfigError, SolverError
from certman.log import redact
from certman.solvers.dns01.rfc2136 import RFC2136Provider

WRONG_SECRET = base64.b64encode(b"not the key the server knows, 32b").decode()


def test_a_wrong_secret_is_a_badsig_error_without_the_secret(rfc2136_options: dict[str, Any]) -> None:
    provider = RFC2136Provider.from_options({**rfc2136_options, "key_secret": WRONG_SECRET}, env={})
    with pytest.raises(SolverError) as raised:
        provider.add_txt("_acme-challenge.badsig.example.test.", "v")
    assert "BADSIG" in raised.value.message
    assert WRONG_SECRET not in raised.value.message + (raised.value.hint or "")


def test_an_unknown_key_name_is_a_badkey_error(rfc2136_options: dict[str, Any]) -> None:
    provider = RFC2136Provider.from_options({**rfc2136_options, "key_name": "nobody-key"}, env={})
    with pytest.raises(SolverError, match="BADKEY"):
        provider.add_txt("_acme-challenge.badkey.example.test.", "v")


def test_a_server_that_is_down_is_a_clear_error(rfc2136_options: dict[str, Any]) -> None:
    down = f"127.0.0.1:{services.free_port()}"
    provider = RFC2136Provider.from_options({**rfc2136_options, "server": down, "timeout": 2}, env={})
    with pytest.raises(SolverError, match=f"rfc2136: {down} refused the connection"):
        provider.add_txt("_acme-challenge.down.example.test.", "v")


def test_a_name_outside_every_zone_of_the_server_is_refused_clearly(rfc2136_options: dict[str, Any]) -> None:
    provider = RFC2136Provider.from_options(rfc2136_options, env={})
    with pytest.raises(SolverError, match="not authoritative for any zone"):
        provider.add_txt("_acme-challenge.elsewhere.invalid.", "v")


def test_the_zone_is_found_by_soa_lookup(rfc2136_options: dict[str, Any]) -> None:
    provider = RFC2136Provider.from_options(rfc2136_options, env={})
    assert provider.zone_for("_acme-challenge.deep.name.example.test.") == "example.test."


def test_settings_and_a_secret_file_come_from_the_environment(tmp_path: Path, bind: Bind) -> None:
    secret_file = tmp_path / "tsig.secret"
    secret_file.write_text(bind.key_secret + "\n")
    secret_file.chmod(0o600)
    provider = RFC2136Provider.from_options(
        {},
        env={
            "CERTMAN_RFC2136_SERVER": bind.address,
            "CERTMAN_RFC2136_KEY_NAME": bind.key_name,
            "CERTMAN_RFC2136_SECRET_FILE": str(secret_file),
        },
    )
    provider.add_txt("_acme-challenge.fromenv.example.test.", "from-env")
    assert bind.txt("_acme-challenge.fromenv.example.test") == {"from-env"}
    provider.remove_txt("_acme-challenge.fromenv.example.test.", "from-env")
    assert bind.txt("_acme-challenge.fromenv.example.test") == set()


def test_the_secret_is_redacted_from_logs_once_loaded(rfc2136_options: dict[str, Any]) -> None:
    RFC2136Provider.from_options(rfc2136_options, env={})
    assert rfc2136_options["key_secret"] not in redact(f"oops {rfc2136_options['key_secret']}")


def test_a_missing_secret_names_the_setting_and_its_variable(bind: Bind) -> None:
    with pytest.raises(ConfigError, match="missing required setting key_secret") as raised:
        RFC2136Provider.from_options({"server": bind.address, "key_name": bind.key_name}, env={})
    assert "CERTMAN_RFC2136_SECRET" in (raised.value.hint or "")


def test_a_secret_that_is_not_base64_is_a_config_error_without_the_secret(rfc2136_options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as raised:
        RFC2136Provider.from_options({**rfc2136_options, "key_secret": "not*base64!"}, env={})
    assert "not*base64!" not in raised.value.message


def test_a_secret_file_every_user_can_read_is_refused(tmp_path: Path, bind: Bind) -> None:
    secret_file = tmp_path / "tsig.secret"
    secret_file.write_text(bind.key_secret)
    secret_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by every user") as raised:
        RFC2136Provider.from_options(
            {},
            env={
                "CERTMAN_RFC2136_SERVER": bind.address,
                "CERTMAN_RFC2136_KEY_NAME": bind.key_name,
                "CERTMAN_RFC2136_SECRET_FILE": str(secret_file),
            },
        )
    assert bind.key_secret not in str(raised.value)


def test_a_secret_set_both_inline_and_as_a_file_is_ambiguous(tmp_path: Path, bind: Bind) -> None:
    secret_file = tmp_path / "tsig.secret"
    secret_file.write_text(bind.key_secret)
    secret_file.chmod(0o600)
    with pytest.raises(ConfigError, match="both CERTMAN_RFC2136_SECRET and CERTMAN_RFC2136_SECRET_FILE"):
        RFC2136Provider.from_options(
            {},
            env={
                "CERTMAN_RFC2136_SERVER": bind.address,
                "CERTMAN_RFC2136_KEY_NAME": bind.key_name,
                "CERTMAN_RFC2136_SECRET": bind.key_secret,
                "CERTMAN_RFC2136_SECRET_FILE": str(secret_file),
            },
        )
