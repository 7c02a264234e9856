"""``certman challenge-server``: every fleet host answers the fleet's HTTP-01 challenges.

The lease holder publishes its tokens in the store (``challenges``); this server answers
``GET /.well-known/acme-challenge/<token>`` with exactly the tokens in flight there, and
404 for anything else. It is the standalone solver's server (``ChallengeHTTPServer``)
with the store as its lookup, so it listens the same way (an empty address: IPv6 and
IPv4, ``solvers.listen``). The proxy on each host forwards the well-known path to it.
"""

from __future__ import annotations

import re
import socket

from ..errors import UsageError
from ..solvers.http01.standalone import CONNECTION_TIMEOUT, ChallengeHTTPServer
from ..solvers.listen import where
from ..solvers.serving import BackgroundServer
from .challenges import StoreAnswers
from .conninfo import shown

_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[^:\[\]]*)):(?P<port>[0-9]{1,5})")


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` as (address, port): ``127.0.0.1:8402``, ``[::1]:8402``, ``*:80`` or ``:80``
    (every address); ``UsageError`` (exit 2) otherwise."""
    match = _LISTEN.fullmatch(text.strip())
    port = int(match["port"]) if match else 0
    if match is None or not 0 < port < 65536:
        raise UsageError(
            f"--listen {text!r} is not ADDR:PORT",
            "e.g. --listen 127.0.0.1:8402, --listen [::1]:8402, or --listen :80 for every address",
        )
    address = match["v6"] or match["v4"] or ""
    return ("" if address == "*" else address), port


class ChallengeServer:
    """A running challenge server: ``where`` it listens, ``port`` it bound; ``stop()`` frees it."""

    def __init__(self, answers: StoreAnswers, server: BackgroundServer[ChallengeHTTPServer], listen: str) -> None:
        self.answers = answers
        self.server = server
        self.where = listen

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        self.server.stop()
        self.answers.close()


def start(conninfo: str, address: str, port: int) -> ChallengeServer:
    """Serve the store's HTTP-01 answers on ``address``:``port`` (port 0: a free one) in a thread.

    The store is checked first: ``StoreUnavailable`` (exit 8) if it is down,
    ``KeystoreError`` (exit 3) if its schema is older than this certman; ``SolverError``
    (exit 5) if the port is in use or privileged. While it runs, a lost store makes
    every answer a 404 (logged) until it is back.
    """
    answers = StoreAnswers(conninfo)
    answers.check()
    listen = where(address, port)
    try:
        server = BackgroundServer(
            lambda: ChallengeHTTPServer((address, port), answers.lookup, CONNECTION_TIMEOUT, socket.socket),
            where=listen,
            what="challenge server",
            in_use_hint="stop what holds it (a standalone solver of this host?), or choose another --listen port "
            "and forward /.well-known/acme-challenge/ there",
            denied_hint="run as root, or listen above port 1023 and let the proxy forward to it",
            thread_name="certman-challenge-server",
        )
    except BaseException:
        answers.close()
        raise
    return ChallengeServer(answers, server, f"{listen} for {shown(conninfo)}")
