"""Renewal benchmarks; prints a table. Run: .venv/bin/python bench/bench_renew.py [--quick]

1. No-op `certman renew` over N locally generated certificates (a keystore of the previous
   release, index.json + state.json written directly; no Pebble): the first run, which
   notes the renewal digests, then the median of 7 (3 with --quick), whole processes from
   cwd=/ with only PATH and certman's variables, interleaved with another checkout's
   (--base TREE, e.g. the previous release); and the library call.
2. 100 certificates renewed against Pebble with `--force`, `--jobs 1` against `--jobs 8`.
3. 10 declared certificates, all missing, issued by one `certman renew --jobs 10`.
4. Storing 1,000 certificates (``FileKeystore.store_version``) into a keystore that holds
   10,000 (--store-size), in a child process of each tree (--base too); the certificates
   are made before the clock starts.
Peak RSS is the child process's ru_maxrss.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import tomli_w  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from certman.keys import CertFacts  # noqa: E402
from certman.keystore.times import encode_time  # noqa: E402

CERTMAN = str(Path(sys.executable).parent / "certman")
UTC = datetime.UTC


def proc_cpu(pid: int) -> float:
    """User+system CPU seconds a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LAST_CPU = [0.0]


def run_cli(
    args: list[str], env: dict[str, str], cwd: str | None = None, binary: str = CERTMAN
) -> tuple[float, int, int]:
    """Wall seconds, exit status and peak RSS (MiB) of one `certman` run (CPU in LAST_CPU)."""
    start = time.perf_counter()
    proc = subprocess.Popen([binary, *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        sys.stderr.write(proc.stderr.read().decode()[-2000:] if proc.stderr else "")
    return wall, proc.returncode, usage.ru_maxrss // 1024


def fake_keystore(root: Path, count: int) -> None:
    """A keystore of ``count`` certificates as certman 0.1 leaves it (format-1 index, no
    renewal digests), written directly. One certificate is signed; the others are its
    facts with their own name and serial (a no-op run parses no PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    now = datetime.datetime.now(UTC)
    template = CertFacts.of(
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=89))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench.example")]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    aki = (template.ari_cert_id or "").split(".")[0]
    certs: dict[str, Any] = {}
    root.mkdir(mode=0o700, parents=True)
    (root / "certs").mkdir(mode=0o700)
    (root / "live").mkdir(mode=0o700)
    next_check = encode_time(now + datetime.timedelta(hours=6))
    for i in range(count):
        name = f"host{i}.bench.example"
        serial = x509.random_serial_number()
        serial_der = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)
        cert_id = f"{aki}.{base64.urlsafe_b64encode(serial_der).decode().rstrip('=')}"
        certs[name] = {
            "serial": f"{serial:x}",
            "not_before": encode_time(template.not_before),
            "not_after": encode_time(template.not_after),
            "issuer": template.issuer,
            "ari_cert_id": cert_id,
            "version": "000001",
            "identifiers": [name],
            "key_type": "ecdsa-p256",
            "server": "https://127.0.0.1:1/dir",
        }
        cert_dir = root / "certs" / name
        cert_dir.mkdir(mode=0o700)
        # The version's files are never read by a no-op run, but its link is (live/ repair).
        (cert_dir / "versions" / "000001").mkdir(mode=0o700, parents=True)
        (root / "live" / name).symlink_to(f"../certs/{name}/versions/000001")
        state = {
            "format": 1,
            "consecutive_failures": 0,
            "ari": {"cert_id": cert_id, "unsupported": True, "next_check": next_check},
        }
        fd = os.open(cert_dir / "state.json", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, json.dumps(state).encode())
        os.close(fd)
    fd = os.open(root / "index.json", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, json.dumps({"format": 1, "certificates": certs}).encode())
    os.close(fd)


def bare_env(**extra: str) -> dict[str, str]:
    """The environment of a timer's run: nothing but PATH and certman's own settings."""
    return {"PATH": "/usr/bin:/bin", **extra}


def noop_rows(sizes: list[int], workdir: Path, runs: int, base: Path | None) -> list[list[str]]:
    """Whole `certman renew` processes from cwd=/ with a bare environment: the first run
    over a keystore of the previous release (it notes the digests, once), then the median
    of ``runs`` no-op runs, interleaved with ``base``'s certman on its own copy; and the
    library call."""
    from certman.config import Settings
    from certman.keystore import FileKeystore
    from certman.renewal.job import renew

    rows = []
    (workdir / "empty.toml").write_text("")
    trees = {"this tree": CERTMAN, **({f"base {base}": str(base / ".venv/bin/certman")} if base else {})}
    for n in sizes:
        root = workdir / f"noop-{n}"
        # In a child: a child's peak RSS (ru_maxrss) counts the parent's RSS at fork time,
        # so the parent must not hold the 100,000 records it writes.
        make = f"import bench_renew, pathlib; bench_renew.fake_keystore(pathlib.Path({str(root)!r}), {n})"
        subprocess.run([sys.executable, "-c", make], cwd=Path(__file__).parent, check=True)
        roots = {"this tree": root}
        if base:
            roots[f"base {base}"] = workdir / f"noop-{n}-base"
            shutil.copytree(root, roots[f"base {base}"], symlinks=True)
        config = str(workdir / "empty.toml")
        env = {t: bare_env(CERTMAN_KEYSTORE=str(r), CERTMAN_CONFIG=config) for t, r in roots.items()}
        wall, code, rss = run_cli(["renew"], env["this tree"], cwd="/")
        assert code == 0, code
        rows.append([f"no-op renew, N={n:,}, first run (notes digests)", f"{wall:.3f}", "-", "once", str(rss)])
        walls: dict[str, list[float]] = {t: [] for t in trees}
        rsss: dict[str, list[int]] = {t: [] for t in trees}
        cpus: dict[str, list[float]] = {t: [] for t in trees}
        for _ in range(runs):
            for tree, binary in trees.items():
                wall, code, rss = run_cli(["renew"], env[tree], cwd="/", binary=binary)
                assert code == 0, code
                walls[tree].append(wall)
                rsss[tree].append(rss)
                cpus[tree].append(LAST_CPU[0])
        for tree in trees:
            note = f"{tree}: median of {runs}; CPU {statistics.median(cpus[tree]):.2f} s"
            rows.append(
                [f"no-op renew, N={n:,}", f"{statistics.median(walls[tree]):.3f}", "-", note, str(max(rsss[tree]))]
            )
        start = time.perf_counter()
        report = renew(FileKeystore(root), Settings(keystore=root))
        library = time.perf_counter() - start
        assert all(r.action == "skipped" for r in report.results)
        rows.append([f"no-op renew, N={n:,}, library", "-", f"{library:.3f}", f"{library / n * 1e6:.1f} µs/cert", "-"])
    return rows


# Run by each tree's own Python (its certman); prints the seconds the stores took.
STORE_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from drivers.store_version import self_signed
from certman.config import CertSpec, SolverSpec
from certman.keystore import FileKeystore
from certman.names import normalise_all
keystore = FileKeystore({root!r})
made = []
for i in range({count}):
    name = f"new{{i}}.bench.example"
    spec = CertSpec(name=name, identifiers=normalise_all([name]), server="https://127.0.0.1:1/dir",
                    solvers=(SolverSpec("standalone"),))
    made.append((spec, *self_signed(name)))
start = time.perf_counter()
for spec, key_pem, leaf_pem, meta in made:
    with keystore.lock_cert(spec.name):
        keystore.store_version(spec, key_pem, leaf_pem, b"", meta)
print(time.perf_counter() - start)
"""


def store_rows(size: int, count: int, workdir: Path, base: Path | None) -> list[list[str]]:
    """Wall seconds of storing ``count`` certificates one after another into a keystore of
    ``size`` (a format-1 index, as the previous release left it), per tree."""
    rows = []
    trees = {"this tree": Path(sys.executable), **({f"base {base}": base / ".venv/bin/python"} if base else {})}
    for label, python in trees.items():
        root = workdir / f"store-{size}-{label.split()[0]}"
        make = f"import bench_renew, pathlib; bench_renew.fake_keystore(pathlib.Path({str(root)!r}), {size})"
        subprocess.run([sys.executable, "-c", make], cwd=Path(__file__).parent, check=True)
        code = STORE_CHILD.format(tests=str(ROOT / "tests"), root=str(root), count=count)
        start_cpu = os.times()
        done = subprocess.run([str(python), "-c", code], cwd="/", capture_output=True, text=True, check=True)
        cpu = (os.times().children_user + os.times().children_system) - (
            start_cpu.children_user + start_cpu.children_system
        )
        seconds = float(done.stdout.strip())
        rows.append(
            [
                f"store {count:,} into {size:,}, {label}",
                f"{seconds:.3f}",
                "-",
                f"{seconds / count * 1e3:.2f} ms/store; child CPU {cpu:.1f} s",
                "-",
            ]
        )
    return rows


@contextlib.contextmanager
def pebble_with_webroot(workdir: Path) -> Iterator[tuple[Any, Path]]:
    import services

    with services.start_pebble(workdir / "pebble") as pebble:
        webroot = workdir / "webroot"
        (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default 5 drops concurrent validations' SYNs
            daemon_threads = True

        server = Server(("127.0.0.1", pebble.http_port), functools.partial(Quiet, directory=str(webroot)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield pebble, webroot
        finally:
            server.shutdown()
            server.server_close()


def pebble_env(pebble: Any, webroot: Path, workdir: Path, label: str, names: list[str]) -> dict[str, str]:
    config = workdir / f"{label}.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "server": pebble.directory_url,
                "ca_bundle": str(pebble.ca_bundle),
                "agree_tos": True,
                "timeout": 60.0,
                "certificate": [{"names": [n]} for n in names],
            }
        )
    )
    return {
        **os.environ,
        "CERTMAN_CONFIG": str(config),
        "CERTMAN_KEYSTORE": str(workdir / f"ks-{label}"),
        "CERTMAN_SOLVER": "webroot",
        "CERTMAN_WEBROOT": str(webroot),
    }


def pebble_rows(workdir: Path, due: int) -> list[list[str]]:
    rows = []
    with pebble_with_webroot(workdir) as (pebble, webroot):
        # Register the account (and warm Pebble) outside the measurements.
        env = pebble_env(pebble, webroot, workdir, "declared10", [f"d{i}.bench.example" for i in range(10)])
        warm = pebble_env(pebble, webroot, workdir, "warm", ["warm.bench.example"])
        run_cli(["renew"], warm)
        env["CERTMAN_KEYSTORE"] = warm["CERTMAN_KEYSTORE"]
        wall, code, rss = run_cli(["renew", "--jobs", "10"], env)
        rows.append(["10 declared missing, --jobs 10", f"{wall:.3f}", "-", f"exit {code}", str(rss)])

        names = [f"r{i}.bench.example" for i in range(due)]
        env = pebble_env(pebble, webroot, workdir, "due", names)
        env["CERTMAN_KEYSTORE"] = warm["CERTMAN_KEYSTORE"]
        wall, code, rss = run_cli(["renew", "--jobs", "8"], env)
        rows.append([f"{due} declared missing, --jobs 8 (setup)", f"{wall:.3f}", "-", f"exit {code}", str(rss)])
        walls = {}
        pebble_pid = next(s.process.pid for s in pebble.services if s.name == "pebble" and s.process)
        for jobs in (1, 8):
            args = ["renew", "--force", "--jobs", str(jobs), *names]
            pebble_before = proc_cpu(pebble_pid)
            wall, code, rss = run_cli(args, env)
            pebble_cpu = proc_cpu(pebble_pid) - pebble_before
            walls[jobs] = wall
            rows.append(
                [
                    f"{due} due (--force), --jobs {jobs}",
                    f"{wall:.3f}",
                    "-",
                    f"exit {code}; CPU certman {LAST_CPU[0]:.1f} s + pebble {pebble_cpu:.1f} s",
                    str(rss),
                ]
            )
        rows.append(["speedup --jobs 8 vs --jobs 1", f"{walls[1] / walls[8]:.2f}x", "-", "-", "-"])
    return rows


def print_table(rows: list[list[str]], headers: list[str] | None = None) -> None:
    headers = headers or ["case", "CLI wall s", "library s", "note", "peak RSS MiB"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    parser.add_argument("--no-pebble", action="store_true", help="only the no-op cases")
    parser.add_argument("--noop-size", type=int, action="append", help="no-op keystore size (repeatable)")
    parser.add_argument("--base", type=Path, help="another checkout (with its .venv) to run the no-op rows beside")
    parser.add_argument("--store-size", type=int, default=10000, help="keystore size for the store row (0: no row)")
    parser.add_argument("--no-noop", action="store_true", help="skip the no-op rows")
    args = parser.parse_args()
    sizes = args.noop_size or ([1000, 10000] if args.quick else [10000, 100000])
    with tempfile.TemporaryDirectory(prefix="bench-renew-") as tmp:
        workdir = Path(tmp)
        rows = [] if args.no_noop else noop_rows(sizes, workdir, 3 if args.quick else 7, args.base)
        if args.store_size:
            rows += store_rows(args.store_size, 100 if args.quick else 1000, workdir, args.base)
        if not args.no_pebble:
            rows += pebble_rows(workdir, 10 if args.quick else 100)
        print_table(rows)


if __name__ == "__main__":
    main()
