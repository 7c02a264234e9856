"""How many of N issuances succeed when the CA rejects 30% of nonces: certman vs the raw acme client.

Starts its own Pebble with PEBBLE_WFE_NONCEREJECT=30 on loopback and runs N issuances
through ``certman.issue`` and N through ``acme.client.ClientV2`` used the textbook way
(ClientNetwork, new_order, answer_challenge, poll_and_finalize). Both serve HTTP-01
from the same standalone server, so only the ACME client differs. Prints a table.

    python bench/bench_hardening.py [--runs 20] [--reject 30]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import josepy as jose  # noqa: E402
import services  # noqa: E402
from acme import challenges, client, messages  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from certman.ca.accounts import AccountSettings
from certman.config import CertSpec, SolverSpec
from certman.issuance.issue import issue
from certman.keys import generate_key, make_csr
from certman.keystore import FileKeystore
from certman.names import normalise_all
from certman.solvers import Challenge
from certman.solvers.http01.standalone import StandaloneSettings, StandaloneSolver

NAME = "a.example"


def run_certman(pebble: services.Pebble, runs: int, workdir: Path) -> tuple[int, float]:
    keystore = FileKeystore(workdir / "keystore")
    spec = CertSpec(
        name=NAME,
        identifiers=normalise_all([NAME]),
        server=pebble.directory_url,
        solvers=(SolverSpec("standalone", {"address": "127.0.0.1", "port": pebble.http_port}),),
        ca_bundle=str(pebble.ca_bundle),
    )
    ok = 0
    started = time.monotonic()
    for _ in range(runs):
        try:
            issue(spec, keystore, account=AccountSettings(agree_tos=True), timeout=60)
            ok += 1
        except Exception as exc:  # a failed issuance is the measurement, not a crash
            print(f"  certman: {type(exc).__name__}: {exc}", file=sys.stderr)
    return ok, time.monotonic() - started


def _raw_account(pebble: services.Pebble) -> tuple[client.ClientV2, jose.JWK]:
    """One registered account, as certman keeps one per CA: only issuances are measured."""
    account_key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(account_key, alg=jose.ES256, user_agent="bench", verify_ssl=str(pebble.ca_bundle))  # type: ignore[arg-type]
    acme = client.ClientV2(client.ClientV2.get_directory(pebble.directory_url, net), net)
    for _ in range(10):  # registration is not what is measured: retry it until it works
        try:
            acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
            return acme, account_key
        except messages.Error:
            continue
    raise RuntimeError("could not register the raw client's account")


def _raw_issue(pebble: services.Pebble, acme: client.ClientV2, account_key: jose.JWK) -> None:
    csr = make_csr(generate_key("ecdsa-p256"), normalise_all([NAME]))
    order = acme.new_order(csr)
    solver = StandaloneSolver(StandaloneSettings("127.0.0.1", pebble.http_port))
    batch = []
    answers = []
    for authz in order.authorizations:
        challb = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = challb.chall.response_and_validation(account_key)
        batch.append(Challenge(normalise_all([NAME])[0], "http-01", challb.chall.encode("token"), validation))
        answers.append((challb, response))
    solver.present(tuple(batch))
    try:
        for challb, response in answers:
            acme.answer_challenge(challb, response)
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=60)
        acme.poll_and_finalize(order, deadline)
    finally:
        solver.cleanup(tuple(batch))


def run_raw(pebble: services.Pebble, runs: int) -> tuple[int, float]:
    acme, account_key = _raw_account(pebble)
    ok = 0
    started = time.monotonic()
    for _ in range(runs):
        try:
            _raw_issue(pebble, acme, account_key)
            ok += 1
        except Exception as exc:  # a failed issuance is the measurement, not a crash
            print(f"  raw acme: {type(exc).__name__}: {str(exc)[:100]}", file=sys.stderr)
    return ok, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reject", type=int, default=30, help="PEBBLE_WFE_NONCEREJECT percentage")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        services.start_pebble(Path(tmp) / "pebble", env={"PEBBLE_WFE_NONCEREJECT": str(args.reject)}) as pebble,
    ):
        rows = [
            ("certman.issue", *run_certman(pebble, args.runs, Path(tmp))),
            ("acme ClientV2 (raw)", *run_raw(pebble, args.runs)),
        ]
    print(f"\nIssuances with PEBBLE_WFE_NONCEREJECT={args.reject}, {args.runs} runs each")
    print(f"{'client':<22}{'succeeded':>12}{'rate':>8}{'total s':>10}{'s/issue':>10}")
    for label, ok, seconds in rows:
        print(f"{label:<22}{f'{ok}/{args.runs}':>12}{ok / args.runs:>8.0%}{seconds:>10.1f}{seconds / args.runs:>10.2f}")


if __name__ == "__main__":
    main()
