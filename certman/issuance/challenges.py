"""Proving control of an order's identifiers with the spec's solvers (RFC 8555 §7.5.1, §8).

Each solver gets its whole batch: ``present`` every challenge first, then ``wait_ready``
(DNS propagation), then the answers to the CA; ``cleanup`` always runs.
"""

from __future__ import annotations

import logging
from typing import Any

from acme import messages

from ..ca.session import AcmeSession
from ..ca.unknown import challenge_type_of
from ..config import CertSpec
from ..errors import ACMEError
from ..names import Identifier
from ..plugins import registry as plugins
from ..solvers import Challenge, Solver
from ..solvers.http01 import PublishesTokens, TokenBoard
from ..solvers.shared import Rendezvous, SharesPort

log = logging.getLogger(__name__)


def create_solver(
    name: str, options: Any, rendezvous: Rendezvous | None = None, board: TokenBoard | None = None
) -> Solver:
    """The solver ``name`` built from its options; one that serves a port shares it through
    ``rendezvous``, or publishes through a fleet's ``board`` instead (HTTP-01 in a fleet)."""
    factory = plugins.lookup("solvers", name)
    solver: Solver = factory.from_options(options)
    if rendezvous is not None and isinstance(solver, SharesPort):
        solver.share_through(rendezvous)
    if board is not None and isinstance(solver, PublishesTokens):
        solver.publish_through(board)
    return solver


def solve(session: AcmeSession, spec: CertSpec, solvers: list[Solver], order: messages.OrderResource) -> int:
    """Prove control of every identifier whose authorization is not yet valid; return how many were."""
    pending = [a for a in order.authorizations if a.body.status != messages.STATUS_VALID]
    reused = len(order.authorizations) - len(pending)
    batches: dict[int, list[Challenge]] = {}
    answers: list[tuple[messages.ChallengeBody, Any]] = []
    for authz in pending:
        ident = _identifier_of(authz.body)
        index = spec.solvers.index(spec.solver_for(ident))
        solver = solvers[index]
        challb = next((c for c in authz.body.challenges if c.chall.typ == solver.challenge_type), None)
        if challb is None:
            offered = ", ".join(challenge_type_of(c) for c in authz.body.challenges)
            raise ACMEError(
                f"the CA offers no {solver.challenge_type} challenge for {ident} (only {offered})",
                "choose a solver for one of the offered challenge types",
            )
        response, validation = challb.chall.response_and_validation(session.account_key)
        batches.setdefault(index, []).append(
            Challenge(ident, solver.challenge_type, challb.chall.encode("token"), validation)
        )
        answers.append((challb, response))
    if not pending:
        return reused
    presented: list[int] = []
    try:
        for index, batch in batches.items():
            presented.append(index)
            solvers[index].present(tuple(batch))
        for index, batch in batches.items():
            solvers[index].wait_ready(tuple(batch))
        for challb, response in answers:
            session.answer(challb, response)
        session.wait_authorizations([a.uri for a in pending])
    finally:
        for index in presented:
            try:
                solvers[index].cleanup(tuple(batches[index]))
            except Exception as exc:  # cleanup must not hide the real outcome
                log.warning("cleanup of the %s solver failed: %s", spec.solvers[index].name, exc)
    return reused


def _identifier_of(authz: messages.Authorization) -> Identifier:
    value = authz.identifier.value
    if authz.wildcard:
        value = "*." + value
    return Identifier("ip" if authz.identifier.typ == messages.IDENTIFIER_IP else "dns", value)
