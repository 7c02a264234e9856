"""Every command has a library twin: the same inputs give the same outcome.

Each test runs a `certman` command against one keystore and its library call against
another (a copy, where the outcome must match byte for byte, or a second keystore
built the same way, where serials and keys differ), then compares the --json data with
the library's result and the two keystores with each other.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import services
import tomli_w
from click.testing import CliRunner, Result
from fixtures.snapshot import snapshot

from certman.ca.accounts import (
    AccountSettings,
    CAEndpoint,
    deactivate,
    register_account,
    rollover,
    show_account,
    update_email,
)
from certman.cli import cli
from certman.config import Settings, load_settings, spec_from_settings
from certman.declaration.change import SpecChange
from certman.declaration.reconfigure import reconfigure
from certman.deploy.batch import reload_command_table
from certman.deploy.served import Endpoint
from certman.deploy.verify import verify_keystore
from certman.doctor import diagnose
from certman.errors import CertmanError, ReloadError, UsageError
from certman.importers.certbot import import_certbot
from certman.issuance.issue import issue, obtain
from certman.keystore import FileKeystore
from certman.keystore.layout import TMP_PREFIX
from certman.lifecycle import describe, list_certificates, remove, revoke
from certman.plugins.catalog import catalog, find
from certman.renewal import timer
from certman.renewal.explain import explain
from certman.renewal.job import renew

NAME = "twin.example"
RECORD = "import os, sys; open(sys.argv[1], 'a').write(os.environ['CERTMAN_NAME'] + '\\n')"


class Twins:
    """A certman.toml pointing at Pebble, and two keystores: ``cli`` and ``lib``."""

    def __init__(self, tmp_path: Path, pebble: services.Pebble) -> None:
        self.pebble = pebble
        self.tmp = tmp_path
        self.config = tmp_path / "certman.toml"
        self.config.write_text(
            tomli_w.dumps(
                {
                    "server": pebble.directory_url,
                    "ca_bundle": str(pebble.ca_bundle),
                    "agree_tos": True,
                    "email": "ops@example.org",
                    "http_address": "127.0.0.1",
                    "http_port": pebble.http_port,
                    "timeout": 30.0,
                }
            )
        )
        self.cli_root = tmp_path / "cli-keystore"
        self.lib_root = tmp_path / "lib-keystore"

    @property
    def lib(self) -> FileKeystore:
        return FileKeystore(self.lib_root)

    @property
    def ca(self) -> CAEndpoint:
        return CAEndpoint(self.pebble.directory_url, str(self.pebble.ca_bundle), 30.0)

    def run(self, *args: str, root: Path | None = None) -> Result:
        """`certman --config certman.toml --keystore <cli keystore> ARGS`."""
        return CliRunner().invoke(
            cli,
            ["--config", str(self.config), "--keystore", str(root or self.cli_root), *args],
            env={"CERTMAN_CONFIG": None, "CERTMAN_KEYSTORE": None},
            catch_exceptions=False,
        )

    def settings(self, **flags: Any) -> Settings:
        """What the CLI's settings are for the library keystore, with the same flags."""
        return load_settings(self.config, env={}, overrides={"keystore": self.lib_root, **flags})

    def issue_both(self, *reloaders: dict[str, Any]) -> None:
        """``NAME`` issued into each keystore, each with its own key and serial."""
        for root in (self.cli_root, self.lib_root):
            self.issue_into(root, *reloaders)

    def issue_into(self, root: Path, *reloaders: dict[str, Any]) -> None:
        spec = replace(spec_from_settings([NAME], self.settings(keystore=root)), reloaders=reloaders)
        obtain(spec, FileKeystore(root), account=AccountSettings(agree_tos=True))

    def copy_cli_to_lib(self) -> None:
        """The library's keystore becomes a byte-for-byte copy of the command's."""
        shutil.copytree(self.cli_root, self.lib_root, symlinks=True)

    def crash(self, *roots: Path) -> None:
        """Leave each keystore as a run killed after moving live/ and before the index does."""
        for root in roots:
            index = json.loads((root / "index.json").read_text())
            del index["certificates"][NAME]
            (root / "index.json").write_text(json.dumps(index))
            (root / f"{TMP_PREFIX}dead-run").write_text("")


@pytest.fixture
def twins(tmp_path: Path, pebble: services.Pebble) -> Twins:
    return Twins(tmp_path, pebble)


def shape(root: Path) -> dict[str, int]:
    """Every path of a keystore with its mode, the archive's time stamps made equal."""
    return {re.sub(r"-\d{8}T\d{6}Z", "-STAMP", path): entry.mode for path, entry in snapshot(root).items()}


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def relative(text: str, *roots: Path) -> str:
    for root in roots:
        text = text.replace(str(root), "<keystore>")
    return text


def test_issue_tries_each_ca_under_one_lock_then_deploys_as_the_command_does(
    twins: Twins, stopped_pebble: Any, tmp_path: Path
) -> None:
    bundle = tmp_path / "both.pem"
    bundle.write_bytes(stopped_pebble.ca_bundle.read_bytes() + twins.pebble.ca_bundle.read_bytes())
    calls = tmp_path / "reloaded"
    argv = json.dumps([sys.executable, "-c", RECORD, str(calls)])
    flags = {"server": stopped_pebble.directory_url, "ca_bundle": str(bundle), "timeout": 2.0}

    done = twins.run(
        "issue",
        *("--server", flags["server"], "--ca-bundle", str(bundle), "--timeout", "2"),
        *("--fallback-server", twins.pebble.directory_url, "--reload-cmd", argv, "--json", NAME),
    )
    settings = twins.settings(**flags)
    spec = replace(
        spec_from_settings([NAME], settings),
        reloaders=(reload_command_table(argv),),
        fallback=({"server": twins.pebble.directory_url, "ca_bundle": str(bundle)},),
    )
    result = issue(
        spec,
        FileKeystore(settings.keystore),
        account=AccountSettings(settings.email, settings.agree_tos),
        timeout=settings.timeout,
    )

    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    assert printed["deploy"] == result.deploy.to_dict()
    assert result.deploy.reloads[0].names == (NAME,) and result.deploy.ok
    assert calls.read_text() == f"{NAME}\n{NAME}\n"
    assert (printed["name"], printed["version"], printed["issuer"], tuple(printed["identifiers"])) == (
        result.name,
        result.version,
        result.issuer,
        result.identifiers,
    )
    for root in (twins.cli_root, twins.lib_root):
        keystore = FileKeystore(root)
        assert keystore.read_index()[NAME].server == twins.pebble.directory_url
        assert keystore.read_spec(NAME) == spec
        assert keystore.read_state(NAME).deploy.pending is False
    assert shape(twins.cli_root) == shape(twins.lib_root)


def test_issue_whose_reload_fails_is_stored_and_exit_6_as_the_command_says(twins: Twins) -> None:
    argv = json.dumps([sys.executable, "-c", "raise SystemExit(3)"])

    done = twins.run("issue", "--reload-cmd", argv, "--json", NAME)
    spec = replace(spec_from_settings([NAME], twins.settings()), reloaders=(reload_command_table(argv),))
    result = issue(spec, twins.lib, account=AccountSettings(agree_tos=True))

    assert done.exit_code == 6
    assert not result.deploy.ok and result.deploy.failed == [NAME]
    with pytest.raises(ReloadError) as raised:
        result.raise_for_deploy()
    assert f"certman: {raised.value.message}" in done.stderr
    assert json.loads(done.stdout)["deploy"]["errors"] == result.deploy.to_dict()["errors"]
    for root in (twins.cli_root, twins.lib_root):
        assert FileKeystore(root).read_state(NAME).deploy.pending is True
    assert shape(twins.cli_root) == shape(twins.lib_root)


def test_renew_repairs_a_crashed_keystore_renews_and_deploys_as_the_command_does(twins: Twins, tmp_path: Path) -> None:
    calls = tmp_path / "reloaded"
    twins.issue_both({"name": "command", "argv": [sys.executable, "-c", RECORD, str(calls)]})
    twins.crash(twins.cli_root, twins.lib_root)

    done = twins.run("renew", "--force", "--json")
    report = renew(twins.lib, twins.settings(), force=True)

    assert done.exit_code == report.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    expected = report.to_dict()
    [cli_cert], [lib_cert] = printed["certificates"], expected["certificates"]
    variable = ("serial", "not_after", "next_renewal", "last_success", "last_failure")
    assert without(cli_cert, *variable) == without(lib_cert, *variable) and lib_cert["action"] == "renewed"
    assert printed["deploy"] == expected["deploy"] and report.deploy.reloads[0].names == (NAME,)
    assert calls.read_text() == f"{NAME}\n{NAME}\n"
    assert shape(twins.cli_root) == shape(twins.lib_root)
    assert not FileKeystore(twins.cli_root).crashed() and not twins.lib.crashed()


def test_list_repairs_a_crashed_keystore_as_the_command_does(twins: Twins) -> None:
    twins.issue_into(twins.cli_root)
    twins.crash(twins.cli_root)
    twins.copy_cli_to_lib()

    done = twins.run("list", "--json")
    entries = list_certificates(twins.lib)

    assert done.exit_code == 0, done.output
    [listed] = json.loads(done.stdout)["certificates"]
    assert {k: listed[k] for k in ("serial", "version", "not_after", "issuer")} == {
        k: entries[NAME].to_json()[k] for k in ("serial", "version", "not_after", "issuer")
    }
    assert snapshot(twins.cli_root) == snapshot(twins.lib_root)


def test_show_explain_and_verify_report_what_the_library_returns(twins: Twins) -> None:
    twins.issue_into(twins.cli_root)
    settings = twins.settings(keystore=twins.cli_root)
    keystore = FileKeystore(twins.cli_root)
    nobody = f"127.0.0.1:{services.free_port()}"

    shown = twins.run("show", "--json", NAME)
    explained = twins.run("explain", "--json")
    verified = twins.run("verify", "--endpoint", nobody, "--timeout", "0.1", "--json", NAME)

    assert json.loads(shown.stdout) == describe(keystore, NAME).to_dict()
    assert json.loads(explained.stdout) == {"certificates": [e.to_dict() for e in explain(keystore, settings=settings)]}
    report = verify_keystore(keystore, [NAME], endpoints=[Endpoint.parse(nobody)], timeout=0.1)
    assert [(r["name"], r["endpoint"], r["stored_serial"], r["ok"]) for r in json.loads(verified.stdout)] == [
        (c.name, str(c.endpoint), c.stored_serial, c.is_ok) for c in report.checks
    ]
    with pytest.raises(CertmanError) as raised:
        report.raise_for_failures()
    assert verified.exit_code == raised.value.exit_code == 6


def test_reconfigure_records_and_redeploys_as_the_command_does(twins: Twins, tmp_path: Path) -> None:
    calls = tmp_path / "reloaded"
    argv = [sys.executable, "-c", RECORD, str(calls)]
    twins.issue_into(twins.cli_root)
    twins.copy_cli_to_lib()
    port = services.free_port()

    done = twins.run(
        "reconfigure", NAME, "--http-port", str(port), "--reload-cmd", json.dumps(argv), "--renew-before-days", "20"
    )
    done_json = json.loads(twins.run("reconfigure", NAME, "--json").stdout)
    change = SpecChange(
        solver_options=("standalone", {"port": port}),
        reloaders=({"name": "command", "argv": argv},),
        renew_before_days=20,
    )
    result = reconfigure(twins.lib, NAME, change)

    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"{NAME}: record updated: solvers, reloaders, renew_before_days; no re-issue\n")
    assert result.diff.fields == ("solvers", "reloaders", "renew_before_days") and not result.diff.reissue
    assert result.deploy.ok and calls.read_text() == f"{NAME}\n{NAME}\n"
    assert done_json == reconfigure(twins.lib, NAME, SpecChange()).to_dict()
    assert FileKeystore(twins.cli_root).read_spec(NAME) == twins.lib.read_spec(NAME)
    assert twins.lib.read_index()[NAME].renew_before_days == 20.0
    assert snapshot(twins.cli_root).keys() == snapshot(twins.lib_root).keys()


def test_revoke_marks_the_certificate_as_the_command_does(twins: Twins) -> None:
    twins.issue_both()

    done = twins.run("revoke", "--reason", "superseded", "--json", NAME)
    result = revoke(twins.lib, NAME, reason="superseded", timeout=30.0)

    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    assert without(printed, "serial", "revoked_at") == {"name": NAME, "reason": "superseded", "signed_by": "account"}
    assert (result.name, result.reason, result.signed_by) == (NAME, "superseded", "account")
    assert twins.pebble.cert_status(printed["serial"])["Status"] == "Revoked"
    assert twins.pebble.cert_status(result.serial)["Status"] == "Revoked"
    assert shape(twins.cli_root) == shape(twins.lib_root)


def test_remove_archives_as_the_command_does(twins: Twins) -> None:
    twins.issue_into(twins.cli_root)
    twins.copy_cli_to_lib()

    done = twins.run("remove", "--json", NAME)
    result = remove(twins.lib, NAME)

    assert done.exit_code == 0, done.output
    archived = Path(json.loads(done.stdout)["archived_to"])
    assert archived.relative_to(twins.cli_root).parent == result.archived_to.relative_to(twins.lib_root).parent
    assert list_certificates(FileKeystore(twins.cli_root)) == list_certificates(twins.lib) == {}
    assert shape(twins.cli_root) == shape(twins.lib_root)


def test_account_commands_do_what_the_account_functions_do(twins: Twins) -> None:
    variable = ("uri", "key_thumbprint", "created_at")

    def both(args: list[str], call: Any) -> dict[str, Any]:
        done = twins.run("account", *args, "--json")
        assert done.exit_code == 0, done.output
        printed, returned = json.loads(done.stdout), call(twins.lib, twins.ca).to_dict()
        assert without(printed, *variable) == without(returned, *variable)
        assert shape(twins.cli_root) == shape(twins.lib_root)
        return printed

    agreed = AccountSettings("ops@example.org", True)
    both(["register", "--email", "ops@example.org", "--agree-tos"], lambda ks, ca: register_account(ks, ca, agreed))
    both(["show"], show_account)
    both(["show", "--offline"], lambda ks, ca: show_account(ks, ca, ask_ca=False))
    both(["update", "--email", "new@example.org"], lambda ks, ca: update_email(ks, ca, ("new@example.org",)))
    both(["rollover"], rollover)
    gone = both(["deactivate", "--yes"], deactivate)
    assert gone["status"] == "deactivated"


def test_doctor_reports_what_diagnose_returns(twins: Twins) -> None:
    twins.issue_into(twins.cli_root)
    port = services.free_port()

    done = twins.run("doctor", "--http-port", str(port), "--json")
    report = diagnose(twins.config, overrides={"keystore": twins.cli_root, "http_port": port})

    assert json.loads(done.stdout) == {
        "ok": report.ok,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "hint": c.hint} for c in report.checks],
    }
    assert done.exit_code == (0 if report.ok else 1)


def test_plugins_lists_what_the_catalog_holds(twins: Twins) -> None:
    listed = twins.run("plugins", "--json")
    one = twins.run("plugins", "--json", "rfc2136")
    unknown = CliRunner().invoke(cli, ["plugins", "no-such-plugin"])

    assert [p["name"] for p in json.loads(listed.stdout)["plugins"]] == [p.name for p in catalog()]
    assert [p["name"] for p in json.loads(one.stdout)["plugins"]] == [p.name for p in find("rfc2136")] == ["rfc2136"]
    with pytest.raises(UsageError) as raised:
        find("no-such-plugin")
    assert unknown.exit_code == raised.value.exit_code == 2
    assert f"certman: {raised.value.message}" in unknown.stderr


def test_import_certbot_imports_what_the_importer_does(twins: Twins, certbot_dir: Any) -> None:
    done = twins.run("import", "certbot", "--config-dir", str(certbot_dir.config_dir), "--json")
    result = import_certbot(twins.lib, certbot_dir.config_dir)

    assert done.exit_code == 0, done.output
    assert json.loads(relative(done.stdout, twins.cli_root)) == json.loads(
        relative(json.dumps(result.to_dict()), twins.lib_root)
    )
    assert snapshot(twins.cli_root).keys() == snapshot(twins.lib_root).keys()


def test_timer_install_and_uninstall_write_what_the_timer_module_does(twins: Twins, tmp_path: Path) -> None:
    keystore = tmp_path / "ks"
    cli_root, lib_root = tmp_path / "cli-root", tmp_path / "lib-root"
    for root in (cli_root, lib_root):
        root.mkdir()

    printed = twins.run("timer", "install", "--print", "--root", str(cli_root), root=keystore)
    planned = timer.install(lib_root, cron=False, keystore=keystore, config=twins.config, dry_run=True)
    assert printed.stdout.replace(str(cli_root), "<root>") == "".join(
        f"# {u.path}\n{u.content}\n" for u in planned.files
    ).replace(str(lib_root), "<root>")
    assert list(cli_root.iterdir()) == list(lib_root.iterdir()) == []

    installed = twins.run("timer", "install", "--cron", "--root", str(cli_root), root=keystore)
    written = timer.install(lib_root, cron=True, keystore=keystore, config=twins.config)
    assert installed.exit_code == 0, installed.output
    said = "".join(f"wrote {u.path}\n" for u in written.files) + f"{written.note}\n"
    assert installed.stdout == said.replace(str(lib_root), str(cli_root))
    assert [p.relative_to(cli_root) for p in cli_root.rglob("*")] == [
        p.relative_to(lib_root) for p in lib_root.rglob("*")
    ]

    removed = twins.run("timer", "uninstall", "--root", str(cli_root), root=keystore)
    assert removed.stdout == "".join(f"removed {p}\n" for p in timer.uninstall(lib_root)).replace(
        str(lib_root), str(cli_root)
    )
    assert not (cli_root / timer.CRON_FILE).exists() and not (lib_root / timer.CRON_FILE).exists()
