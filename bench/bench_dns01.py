"""DNS-01 issuance end to end against a local BIND, timed, next to certbot-dns-rfc2136's fixed wait.

Starts named and Pebble (validating through that named) on loopback, then issues
certificates through the RFC 2136 provider with the real propagation check: no
fixed sleep anywhere. Run: .venv/bin/python bench/bench_dns01.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import services  # noqa: E402
from fixtures.bind import start_bind  # noqa: E402

from certman.ca.accounts import AccountSettings
from certman.config import CertSpec, SolverSpec
from certman.issuance.issue import issue
from certman.keystore import FileKeystore
from certman.names import normalise_all

CERTBOT_RFC2136_DEFAULT_WAIT = 60.0
TARGET = 3.0


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "bind").mkdir()
        with (
            start_bind(work / "bind") as bind,
            services.start_pebble(work / "pebble", dns_server=bind.address) as pebble,
        ):
            keystore = FileKeystore(work / "ks")
            secret_file = work / "tsig.secret"
            secret_file.write_text(bind.key_secret)
            secret_file.chmod(0o600)
            options = {
                "provider": "rfc2136",
                "server": bind.address,
                "key_name": bind.key_name,
                "key_secret_file": str(secret_file),
                "resolvers": [bind.address],
                "nameserver_port": bind.port,
            }
            cases = {
                "one name": lambda i: [f"bench{i}.example.test"],
                "wildcard + apex": lambda i: [f"wild{i}.example.test", f"*.wild{i}.example.test"],
                "CNAME-delegated": lambda i: ["delegated.example.test"],
            }
            # The first issue registers the account; keep it out of the figures.
            run(keystore, pebble, options, ["warmup.example.test"])
            rows = []
            for label, names in cases.items():
                times = [run(keystore, pebble, options, names(i)) for i in range(rounds)]
                rows.append((label, statistics.median(times), max(times)))
    print(f"DNS-01 issuance against local BIND + Pebble, {rounds} rounds each (no fixed sleeps)\n")
    print(f"{'case':<34}{'median s':>10}{'max s':>10}")
    for label, median, worst in rows:
        print(f"{'certman ' + label:<34}{median:>10.3f}{worst:>10.3f}")
    print(f"{'certbot-dns-rfc2136 (fixed wait)':<34}{CERTBOT_RFC2136_DEFAULT_WAIT:>10.1f}{'':>10}")
    print(f"\ntarget: < {TARGET:.0f} s -> {'met' if all(r[2] < TARGET for r in rows) else 'MISSED'}")


def run(keystore: FileKeystore, pebble: services.Pebble, options: dict[str, object], names: list[str]) -> float:
    identifiers = normalise_all(names)
    spec = CertSpec(
        name=identifiers[0].value.replace("*", "_"),
        identifiers=identifiers,
        server=pebble.directory_url,
        solvers=(SolverSpec("dns-01", options),),
        ca_bundle=str(pebble.ca_bundle),
    )
    started = time.perf_counter()
    issue(spec, keystore, account=AccountSettings(agree_tos=True))
    return time.perf_counter() - started


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
