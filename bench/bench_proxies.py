"""How long a deploy takes to reach clients: reload call, and reload until the new leaf is served.

Runs Pebble, nginx, HAProxy and Caddy on loopback (as the tests do), re-issues one
certificate ROUNDS times per proxy and measures, per round:
  reload  - the reloader's reload() call
  served  - from the start of reload() until verify_served() sees the new leaf
and, over one re-issue with a client loop running, the handshakes made and failed.

    .venv/bin/python bench/bench_proxies.py [ROUNDS]
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import services  # noqa: E402
from fixtures.proxies import HandshakeLoop, haproxy_frontend, nginx_server_block  # noqa: E402

from certman.ca.accounts import AccountSettings
from certman.config import CertSpec, SolverSpec
from certman.deploy.reloaders import Deployment
from certman.deploy.served import Endpoint, served_leaf, verify_served
from certman.issuance.issue import issue
from certman.keystore import FileKeystore
from certman.names import normalise_all
from certman.plugins import registry as plugins

NAME = "a.example"


def wait_for(ready) -> None:
    deadline = time.monotonic() + services.READY_TIMEOUT
    while True:
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("proxy not ready")
        time.sleep(services.POLL_INTERVAL)


def start_nginx(stack, work: Path, live, port: int):
    prefix = work / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"pid {prefix}/nginx.pid;\nerror_log stderr notice;\nworker_processes 1;\n"
        f"events {{}}\nhttp {{\n access_log off;\n{nginx_server_block(port, NAME, live)}}}\n"
    )
    binary = services.require_binary("nginx", "nginx-light")
    service = services.Service(
        "nginx", [binary, "-p", str(prefix), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"], prefix / "nginx.log"
    )
    stack.enter_context(services.running(service, lambda: bool(served_leaf(Endpoint("127.0.0.1", port), NAME))))
    return plugins.lookup("reloaders", "nginx").from_options(
        {"binary": binary, "prefix": str(prefix), "config": str(conf)}
    )


def start_haproxy(stack, work: Path, live, port: int):
    prefix = work / "haproxy"
    prefix.mkdir()
    sock = prefix / "admin.sock"
    conf = prefix / "haproxy.cfg"
    conf.write_text(
        f"global\n  stats socket {sock} mode 600 level admin\n"
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n"
        + haproxy_frontend(port, live.combined)
    )
    service = services.Service(
        "haproxy", [services.require_binary("haproxy", "haproxy"), "-db", "-W", "-f", str(conf)], prefix / "haproxy.log"
    )
    stack.enter_context(services.running(service, lambda: bool(served_leaf(Endpoint("127.0.0.1", port), NAME))))
    return plugins.lookup("reloaders", "haproxy").from_options({"socket": str(sock)})


def start_caddy(stack, work: Path, live, port: int):
    prefix = work / "caddy"
    prefix.mkdir()
    admin = f"127.0.0.1:{services.free_port()}"
    caddyfile = prefix / "Caddyfile"
    caddyfile.write_text(
        f"{{\n  admin {admin}\n  auto_https off\n  storage file_system {prefix}/data\n}}\n"
        f"https://{NAME}:{port} {{\n  bind 127.0.0.1\n  tls {live.fullchain} {live.privkey}\n"
        '  respond "ok"\n}\n'
    )
    env = {
        **os.environ,
        "HOME": str(prefix),
        "XDG_DATA_HOME": str(prefix / "data"),
        "XDG_CONFIG_HOME": str(prefix / "config"),
    }
    service = services.Service(
        "caddy",
        [services.require_binary("caddy", "caddy"), "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
        prefix / "caddy.log",
        env=env,
    )
    stack.enter_context(services.running(service, lambda: bool(served_leaf(Endpoint("127.0.0.1", port), NAME))))
    return plugins.lookup("reloaders", "caddy").from_options({"admin": admin})


def main(rounds: int) -> None:
    rows = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        pebble = stack.enter_context(services.start_pebble(work / "pebble"))
        keystore = FileKeystore(work / "keystore")
        spec = CertSpec(
            name=NAME,
            identifiers=normalise_all([NAME]),
            server=pebble.directory_url,
            solvers=(SolverSpec("standalone", {"address": "127.0.0.1", "port": pebble.http_port}),),
            ca_bundle=str(pebble.ca_bundle),
        )

        def reissue() -> Deployment:
            result = issue(spec, keystore, account=AccountSettings(agree_tos=True))
            return Deployment(result.name, result.identifiers, result.serial, result.live)

        first = reissue()
        for proxy, start in (("nginx", start_nginx), ("haproxy", start_haproxy), ("caddy", start_caddy)):
            endpoint = Endpoint("127.0.0.1", services.free_port())
            reloader = start(stack, work, first.live, endpoint.port)
            reload_s, served_s = [], []
            for _ in range(rounds):
                deployment = reissue()
                started = time.perf_counter()
                reloader.reload([deployment])
                reload_s.append(time.perf_counter() - started)
                verify_served(deployment, [endpoint])
                served_s.append(time.perf_counter() - started)
            loop = HandshakeLoop(endpoint, NAME)
            loop.start()
            wait_for(lambda loop=loop: loop.total >= 100)
            deployment = reissue()
            reloader.reload([deployment])
            verify_served(deployment, [endpoint])
            wait_for(
                lambda loop=loop, serial=deployment.serial: loop.serials.get(serial, 0) >= 100 and loop.total >= 300
            )
            loop.stop()
            failures.extend(f"{proxy}: {f}" for f in loop.failures)
            rows.append(
                (
                    proxy,
                    statistics.median(reload_s),
                    max(reload_s),
                    statistics.median(served_s),
                    max(served_s),
                    loop.total,
                    len(loop.failures),
                )
            )
    print(f"proxy reload+verify, {rounds} rounds each (ms)")
    print(
        f"{'proxy':8} {'reload med':>10} {'reload max':>10} {'served med':>10} {'served max':>10} "
        f"{'handshakes':>10} {'failed':>6}"
    )
    for proxy, rmed, rmax, smed, smax, total, failed in rows:
        print(
            f"{proxy:8} {rmed * 1000:10.1f} {rmax * 1000:10.1f} {smed * 1000:10.1f} {smax * 1000:10.1f} "
            f"{total:10d} {failed:6d}"
        )
    for failure in failures:
        print(f"failed handshake: {failure}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
