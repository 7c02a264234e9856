"""The solver contract: how a challenge is presented to the CA and taken down again.

A solver receives every challenge of an order that it is responsible for as one
batch, so that slow work (binding a port, waiting for DNS) happens once per order:

    present(batch)      MUST make every challenge of the batch answerable, or raise
                        SolverError. It SHOULD return quickly.
    wait_ready(batch)   blocks until the CA can see what was presented (DNS
                        propagation); a no-op for HTTP-01. Raises SolverError on
                        timeout, and then no challenge is answered.
    cleanup(batch)      is ALWAYS called, also after a failed present, and MUST NOT
                        assume present succeeded. It removes only what this solver
                        presented.
    preflight()         MAY be defined: it checks what it can locally (a webroot is
                        writable, an address is on this host) and raises SolverError,
                        before any request to the CA (``issuance.preflight``).

A solver is built from its ``[[solver]]`` table by ``from_options(options, env)``,
which reads the options into its frozen settings dataclass with
``plugins.settings.settings_from``; ``settings_classes`` names that dataclass for
``certman plugins NAME``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from ..names import Identifier


@dataclass(frozen=True)
class Challenge:
    """One challenge to present: all the strings a solver needs, already checked."""

    identifier: Identifier
    type: str
    token: str
    validation: str


ChallengeBatch = tuple[Challenge, ...]


@runtime_checkable
class Solver(Protocol):
    challenge_type: ClassVar[str]

    def present(self, batch: ChallengeBatch) -> None: ...

    def wait_ready(self, batch: ChallengeBatch) -> None: ...

    def cleanup(self, batch: ChallengeBatch) -> None: ...
