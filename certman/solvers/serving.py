"""A challenge server (HTTP-01 standalone, TLS-ALPN-01) running for one batch in a thread."""

from __future__ import annotations

import errno
import socketserver
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from ..errors import SolverError

S = TypeVar("S", bound=socketserver.BaseServer)

# How often the serving loop looks for a shutdown request: it bounds how long cleanup
# waits, and so how soon the port is free again after validation.
POLL_INTERVAL = 0.005


class BackgroundServer(Generic[S]):
    """Binds with ``bind()`` (turning bind errors into SolverError), serves until ``stop()``."""

    def __init__(
        self, bind: Callable[[], S], *, where: str, what: str, in_use_hint: str, denied_hint: str, thread_name: str
    ) -> None:
        try:
            self.server = bind()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SolverError(f"port {where} is already in use, so the {what} cannot start", in_use_hint) from exc
            if exc.errno == errno.EACCES:
                raise SolverError(f"not allowed to listen on {where}", denied_hint) from exc
            raise SolverError(f"cannot listen on {where}: {exc.strerror}", "check the listen address") from exc
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, name=thread_name, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])  # type: ignore[index]

    def stop(self) -> None:
        """Stop serving and close the socket; the port is free when this returns."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
