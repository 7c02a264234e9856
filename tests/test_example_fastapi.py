"""examples/fastapi: a FastAPI app under Uvicorn behind nginx, with a certman certificate.

The client trusts only Pebble's root, as a real client trusts only its system roots:
the page loads only if nginx serves the full chain of a certificate for the name.
The certificate is then renewed through nginx (HTTP-01 forwarded) while the app
keeps serving, and the page is fetched again over the new certificate.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

import pytest
import requests
import services
from fixtures.proxies import deployment_of, served_serial, served_serial_once_settled

from certman.deploy.served import Endpoint, verify_served
from certman.plugins import registry as plugins

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi"
DOMAIN = "localhost"


@pytest.fixture
def uvicorn_app(tmp_path: Path):
    port = services.free_port()
    service = services.Service(
        "uvicorn",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app:app",
            "--app-dir",
            str(EXAMPLE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        tmp_path / "uvicorn.log",
    )
    with services.running(
        service, lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=services.PROBE_TIMEOUT).ok
    ):
        yield port


def render_nginx_conf(prefix: Path, **values: object) -> str:
    text = string.Template((EXAMPLE / "nginx.conf").read_text()).safe_substitute(prefix=prefix, **values)
    assert "${" not in text, "a placeholder of examples/fastapi/nginx.conf was left unfilled"
    return text


def test_the_fastapi_example_serves_https_trusted_through_pebbles_root_and_renews_while_serving(
    pebble, issue_cert, start_nginx, uvicorn_app, tmp_path: Path
):
    first = issue_cert(DOMAIN)
    https_port, solver_port = services.free_port(), services.free_port()
    root = tmp_path / "pebble-root.pem"
    root.write_text(pebble.root_pem())
    url = f"https://{DOMAIN}:{https_port}/"
    nginx = start_nginx(
        None,
        lambda: requests.get(url, verify=str(root), timeout=services.PROBE_TIMEOUT).ok,
        config=lambda prefix: render_nginx_conf(
            prefix,
            http_port=pebble.http_port,
            https_port=https_port,
            solver_port=solver_port,
            app_port=uvicorn_app,
            domain=DOMAIN,
            live=first.live.directory,
        ),
    )

    page = requests.get(url, verify=str(root), timeout=services.HTTP_TIMEOUT)

    assert page.json() == {"message": "hello from FastAPI behind nginx", "scheme": "https"}
    endpoint = Endpoint("127.0.0.1", https_port)
    assert served_serial(endpoint, DOMAIN) == first.serial

    # Renewal while serving: nginx keeps port 80 and forwards the challenge to the solver.
    second = issue_cert(DOMAIN, solver_port=solver_port)
    plugins.lookup("reloaders", "nginx").from_options(
        {"prefix": str(nginx.prefix), "config": str(nginx.config)}
    ).reload([deployment_of(second)])
    verify_served(deployment_of(second), [endpoint])

    assert requests.get(url, verify=str(root), timeout=services.HTTP_TIMEOUT).ok
    assert served_serial_once_settled(endpoint, DOMAIN, second.serial) == second.serial != first.serial
