"""The protocol floor: a minimal `acme`-library issuance with a pre-registered account and no sleeps.

Run as its own process by bench_issue.py and bench_scale.py, so its time includes
interpreter start and imports, like `certman issue`. It is deliberately bare: no
keystore, no retries. Usage:

    floor_client.py DIRECTORY CA_BUNDLE ACCOUNT_KEY ACCOUNT_URI PORT NAME [NAME...] [--threads=N]

Several names are several certificates, issued on N threads (default 1) in parallel:
one challenge server and one directory fetch for the process, one ``ClientNetwork``
(one connection and nonce pool) per thread, as a minimal parallel client would do.
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import josepy as jose
from acme import client, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def main(
    directory_url: str,
    ca_bundle: str,
    account_key_path: str,
    account_uri: str,
    port: int,
    names: list[str],
    threads: int = 1,
) -> None:
    key = jose.JWKEC(key=serialization.load_pem_private_key(open(account_key_path, "rb").read(), None))
    local = threading.local()

    def network() -> client.ClientNetwork:
        net = client.ClientNetwork(key, alg=jose.ES256, user_agent="floor")
        net.session.verify = ca_bundle
        net.verify_ssl = ca_bundle  # type: ignore[assignment]
        return net

    def client_of_thread() -> client.ClientV2:
        if not hasattr(local, "acme"):
            # The first thread goes on with the directory's connection, as one issuance did.
            try:
                net = spare.pop()
            except IndexError:
                net = network()
            net.account = messages.RegistrationResource(uri=account_uri, body=messages.Registration())
            local.acme = client.ClientV2(directory, net)
        acme: client.ClientV2 = local.acme
        return acme

    spare = [network()]
    directory = client.ClientV2.get_directory(directory_url, spare[0])
    responses: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = responses.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def issue(name: str) -> None:
        acme = client_of_thread()
        cert_key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(cert_key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        order = acme.new_order(csr)
        for authz in order.authorizations:
            challb = next(c for c in authz.body.challenges if c.chall.typ == "http-01")
            response, validation = challb.chall.response_and_validation(key)
            responses[challb.chall.path] = validation.encode()
            acme.answer_challenge(challb, response)
        for authz in order.authorizations:
            while acme.poll(authz)[0].body.status == messages.STATUS_PENDING:
                time.sleep(0)  # yields the GIL to the challenge server thread; no wait
        acme.begin_finalization(order)
        while True:
            body = messages.Order.from_json(acme._post_as_get(order.uri).json())
            if body.status == messages.STATUS_VALID:
                break
            time.sleep(0)
        acme._post_as_get(body.certificate)

    if threads == 1:
        # No executor, not even its import: the one-name floor stays what it was.
        for name in names:
            issue(name)
    else:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(issue, names))
    server.server_close()  # the daemon serving thread ends with the process


if __name__ == "__main__":
    flags = [a for a in sys.argv[6:] if a.startswith("--threads=")]
    main(
        *sys.argv[1:5],
        int(sys.argv[5]),
        [a for a in sys.argv[6:] if a not in flags],
        int(flags[-1].split("=", 1)[1]) if flags else 1,
    )
