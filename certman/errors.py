"""The one error tree of certman.

Every failure an operator can act on is a ``CertmanError``: a one-line ``message``
saying what happened, a ``hint`` saying what to do, and the process ``exit_code``
the CLI returns. Anything else that escapes is a bug (exit 70).

    CertmanError                 1
    ├── UsageError               2  bad flags, unknown plugin, invalid identifier
    │   └── ConfigError          2  certman.toml / spec.toml / env invalid
    ├── KeystoreError            3  unreadable, unsafe or corrupt keystore; disk full
    │   ├── KeystoreLocked       3  another run holds the lock past the timeout
    │   └── StoreUnavailable     8  the fleet store (PostgreSQL) cannot be reached
    ├── ACMEError                4  the CA refused or could not be reached
    │   ├── CAUnreachable        4  connection refused, DNS failure, timeout
    │   │   └── AnswerLost       4  a state-changing request may have been processed
    │   ├── TLSVerifyFailed      4  the CA's TLS certificate is not trusted
    │   ├── RateLimited          4  with .retry_after
    │   ├── Unsupported          4  the CA lacks an optional feature (keyChange, ARI)
    │   └── AuthorizationFailed  4  the CA could not validate an identifier
    ├── SolverError              5  could not present or clean up a challenge
    │   └── PropagationTimeout   5  DNS record not served by every nameserver
    ├── ReloadError              6  stored, but the proxy did not take it
    │   ├── ReloadVerifyFailed   6  the proxy serves another leaf than the stored one
    │   └── ReloadPartlyFailed   6  a reloader took some of its certificates, not these
    └── PartialFailure           7  a batch where some certificates failed
"""

from __future__ import annotations

import datetime

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class CertmanError(Exception):
    """Base class: an operator-facing failure with a hint and an exit code."""

    exit_code = 1
    # What to do when the raising code knew no better: every error the CLI prints has a hint.
    generic_hint = "run again with -v for details; `certman doctor` checks the whole setup"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    @property
    def shown_hint(self) -> str:
        """The hint the operator sees: the raiser's own, else the generic one of its class."""
        return self.hint or self.generic_hint


class UsageError(CertmanError):
    """The request itself is wrong: flags, identifiers, plugin names."""

    exit_code = 2
    generic_hint = "see `certman COMMAND --help` for the accepted forms"


class ConfigError(UsageError):
    """A configuration file or environment variable is invalid."""

    generic_hint = "fix the setting named above (certman.toml, CERTMAN_* or a flag); `certman doctor` checks them all"


class KeystoreError(CertmanError):
    """The keystore cannot be read or written safely."""

    exit_code = 3
    generic_hint = "check the keystore path named above (owner, mode 0700, free space); `certman doctor` checks it"


class KeystoreLocked(KeystoreError):
    """Another certman run holds a lock we need."""


class StoreUnavailable(KeystoreError):
    """The fleet's shared store cannot be reached (docs/fleet.md); local certificates stay served.

    A kind of ``KeystoreError``, so code that handles a failing store handles it, with an
    exit code of its own so that monitoring tells an outage of the database from a damaged
    keystore.
    """

    exit_code = 8


class ACMEError(CertmanError):
    """The ACME server refused a request or could not be used."""

    exit_code = 4
    generic_hint = "run again with -v to see the answer of the CA; `certman doctor` checks that the CA is reachable"

    def __init__(self, message: str, hint: str | None = None, *, problem_type: str | None = None) -> None:
        super().__init__(message, hint)
        self.problem_type = problem_type


class CAUnreachable(ACMEError):
    """No usable answer from the ACME server (network, timeout, 5xx).

    ``retry_after`` is when the CA said to come back (a 503 with Retry-After), if it did.
    """

    def __init__(self, message: str, hint: str | None = None, *, retry_after: datetime.datetime | None = None) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class AnswerLost(CAUnreachable):
    """A state-changing request reached the CA, but its answer did not reach us (a 5xx,
    a timeout after sending, a truncated body): the CA may have processed it. Sending it
    again blindly could act twice, so the caller re-reads the resource instead."""


class TLSVerifyFailed(CAUnreachable):
    """The ACME server's TLS certificate did not verify."""


class RateLimited(ACMEError):
    """The CA asked us to come back later."""

    def __init__(self, message: str, hint: str | None = None, *, retry_after: datetime.datetime | None = None) -> None:
        super().__init__(message, hint, problem_type="urn:ietf:params:acme:error:rateLimited")
        self.retry_after = retry_after


class Unsupported(ACMEError):
    """The CA does not offer an optional feature (RFC 8555 keyChange, RFC 9773 renewalInfo):
    its directory lacks it, or it answered 501 or "not implemented". Nothing to retry."""


class AuthorizationFailed(ACMEError):
    """The CA could not validate control of one or more identifiers."""


class SolverError(CertmanError):
    """A challenge could not be presented or cleaned up."""

    exit_code = 5
    generic_hint = (
        "check the settings of the solver (`certman plugins NAME`); `certman doctor` checks ports and programs"
    )


class PropagationTimeout(SolverError):
    """A DNS record was not served by every authoritative nameserver in time."""


class ReloadError(CertmanError):
    """The certificate is stored but its proxy did not take it."""

    exit_code = 6
    generic_hint = "the certificate is stored; fix the proxy, then `certman renew` retries the reload"


class ReloadVerifyFailed(ReloadError):
    """After a reload the proxy still serves another certificate."""


class ReloadPartlyFailed(ReloadError):
    """One reloader call took some of its certificates but not those in ``failed``.

    ``failed`` maps each certificate name it could not hand over to its own error, so the
    batch records that error on that certificate only, and the others as deployed.
    """

    def __init__(self, failed: dict[str, ReloadError]) -> None:
        names = ", ".join(sorted(failed))
        first = failed[min(failed)]
        super().__init__(f"not taken for {names}: {first.message}", first.hint)
        self.failed = failed


class PartialFailure(CertmanError):
    """Some certificates of a batch failed; the others succeeded."""

    exit_code = 7
    generic_hint = "the error of each failed certificate is printed above; `certman explain` says when it is retried"
