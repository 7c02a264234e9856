"""`make demo`: issue a certificate from a local Pebble with certman, then show it.

Uses Debian's `pebble` (installed with apt when running as root and missing), or
`docker compose -f pebble-compose.yml` where Docker exists. The keystore lives in
.demo/keystore, so running the demo again adds a new version next to the old one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
NAMES = ["demo.certman.test", "www.demo.certman.test"]
sys.path.insert(0, str(ROOT / "tests"))


def certman(*args: str, env: dict[str, str]) -> None:
    print("$ certman " + " ".join(args), flush=True)
    code = subprocess.run([sys.executable, "-m", "certman", *args], env=env).returncode
    if code != 0:
        sys.exit(code)


def run_demo(directory_url: str, ca_bundle: str, http_port: int, http_address: str = "127.0.0.1") -> None:
    env = {**os.environ, "CERTMAN_KEYSTORE": str(DEMO / "keystore"), "CERTMAN_CONFIG": str(DEMO / "certman.toml")}
    (DEMO / "certman.toml").write_text("# demo: all settings come from flags\n")
    certman(
        "issue",
        "--server",
        directory_url,
        "--ca-bundle",
        ca_bundle,
        "--agree-tos",
        "--email",
        "demo@example.com",
        "--http-address",
        http_address,
        "--http-port",
        str(http_port),
        *NAMES,
        env=env,
    )
    certman("list", env=env)
    live = DEMO / "keystore" / "live" / NAMES[0]
    print(f"\nproxies point at {live}/fullchain.pem and {live}/privkey.pem")


def with_debian_pebble() -> None:
    import services

    with tempfile.TemporaryDirectory(prefix="certman-demo-") as tmp:
        with services.start_pebble(Path(tmp)) as pebble:
            print(f"Pebble (Debian) is up at {pebble.directory_url}", flush=True)
            run_demo(pebble.directory_url, str(pebble.ca_bundle), pebble.http_port)


def with_docker() -> None:
    compose = ["docker", "compose", "-f", str(ROOT / "pebble-compose.yml")]
    subprocess.run([*compose, "up", "-d"], check=True)
    try:
        bundle = DEMO / "pebble.minica.pem"
        subprocess.run([*compose, "cp", "pebble:/test/certs/pebble.minica.pem", str(bundle)], check=True)
        import services

        services.wait_for(
            lambda: _reachable("https://localhost:14000/dir", bundle), timeout=30, what="Pebble in Docker answering"
        )
        # Pebble in its container dials the host's bridge address, not loopback.
        run_demo("https://localhost:14000/dir", str(bundle), 5002, http_address="")
    finally:
        subprocess.run([*compose, "down"], check=False)


def _reachable(url: str, bundle: Path) -> bool:
    import requests

    try:
        return requests.get(url, verify=str(bundle), timeout=2).ok
    except requests.RequestException:
        return False


def main() -> None:
    DEMO.mkdir(mode=0o700, exist_ok=True)
    if shutil.which("pebble") is None and os.geteuid() == 0:
        subprocess.run([str(ROOT / "scripts" / "ensure-deps.sh")], check=True)
    if shutil.which("pebble") is not None:
        with_debian_pebble()
    elif shutil.which("docker") is not None:
        with_docker()
    else:
        sys.exit(
            "certman demo: Pebble is not installed and Docker is not available\n"
            "hint: as root run `apt-get install --no-upgrade pebble`, or install Docker"
        )


if __name__ == "__main__":
    main()
