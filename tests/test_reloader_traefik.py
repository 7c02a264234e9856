"""The Traefik reloader's file contract: what Traefik's file provider parses, written atomically.

No Traefik binary is installable here, so these tests check what Traefik relies on:
the file parses as TOML, lists tls.certificates with certFile/keyFile of the live
paths (which load as a matching pair), keeps other entries, and is replaced by
rename so a watcher never reads a partial file.
"""

from __future__ import annotations

import os
import ssl
import threading
import tomllib
from pathlib import Path

import pytest
from fixtures.proxies import deployment_of

from certman.deploy.reloaders import Deployment
from certman.errors import ConfigError, ReloadError
from certman.keystore import LivePaths
from certman.plugins import registry as plugins


def traefik_reloader(path: Path):
    return plugins.lookup("reloaders", "traefik").from_options({"path": str(path)})


def fake_deployment(root: Path, name: str, serial: str = "1") -> Deployment:
    return Deployment(name, (name,), serial, LivePaths(root / "live" / name))


def certificates(path: Path) -> list[dict[str, str]]:
    return tomllib.loads(path.read_text())["tls"]["certificates"]


def test_the_file_lists_the_live_fullchain_and_key_which_load_as_a_pair(issue_cert, tmp_path: Path):
    result = issue_cert("a.example")
    dynamic = tmp_path / "dynamic.toml"

    traefik_reloader(dynamic).reload([deployment_of(result)])

    assert certificates(dynamic) == [{"certFile": str(result.live.fullchain), "keyFile": str(result.live.privkey)}]
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(result.live.fullchain, result.live.privkey)
    assert oct(dynamic.stat().st_mode & 0o777) == "0o644"


def test_entries_of_other_certificates_are_kept_and_redeploys_do_not_duplicate(tmp_path: Path):
    dynamic = tmp_path / "dynamic.toml"
    reloader = traefik_reloader(dynamic)
    a, b = fake_deployment(tmp_path, "a.example"), fake_deployment(tmp_path, "b.example")

    reloader.reload([a])
    reloader.reload([b])
    reloader.reload([fake_deployment(tmp_path, "a.example", serial="2")])

    assert [c["certFile"] for c in certificates(dynamic)] == [str(a.live.fullchain), str(b.live.fullchain)]
    assert "# a.example: serial 2" in dynamic.read_text()


def test_the_file_is_replaced_by_rename_so_a_reader_never_sees_a_partial_file(tmp_path: Path):
    dynamic = tmp_path / "dynamic.toml"
    reloader = traefik_reloader(dynamic)
    deployments = [fake_deployment(tmp_path, f"n{i}.example") for i in range(20)]
    reloader.reload(deployments)
    parsed, errors, done = [], [], threading.Event()

    def read_until_done() -> None:
        while not done.is_set():
            try:
                parsed.append(len(certificates(dynamic)))
            except Exception as exc:  # noqa: BLE001 - any failure to read is what we count
                errors.append(repr(exc))

    reader = threading.Thread(target=read_until_done)
    reader.start()
    inodes = set()
    try:
        for serial in range(100):
            reloader.reload([fake_deployment(tmp_path, "n0.example", serial=str(serial))])
            inodes.add(os.stat(dynamic).st_ino)
    finally:
        done.set()
        reader.join()

    assert errors == [] and parsed and set(parsed) == {20}
    assert len(inodes) > 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dynamic.toml"]


def test_a_path_that_is_not_toml_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError):
        traefik_reloader(tmp_path / "dynamic.yaml")


def test_a_missing_directory_is_a_reload_error(tmp_path: Path):
    with pytest.raises(ReloadError) as failure:
        traefik_reloader(tmp_path / "absent" / "dynamic.toml").reload([fake_deployment(tmp_path, "a.example")])

    assert str(tmp_path / "absent") in failure.value.message
