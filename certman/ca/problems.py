"""RFC 8555 problem documents (§6.7) and the ``acme`` library's exceptions as certman errors.

The session wraps every protocol step in ``certman_errors``, so that no library exception
reaches the user and each message says which step the CA refused.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator

import requests
from acme import errors as acme_errors
from acme import messages
from josepy import errors as jose_errors

from ..errors import ACMEError, CertmanError, RateLimited, Unsupported
from .features import NOT_RETRIED


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def problem_error(error: messages.Error, context: str, *, optional_feature: bool = False) -> ACMEError:
    """An RFC 8555 problem document as an operator-facing error: ``RateLimited`` for
    rateLimited (with its Retry-After as a UTC time), ``Unsupported`` for a feature the CA
    lacks, else ``ACMEError`` with a hint.

    A lacking feature is told by the HTTP status and the detail, never by the type alone
    (Caddy answers keyChange 501 with type rejectedIdentifier): 501, a detail saying "not
    implemented", or, at an ``optional_feature``'s URL, 404.
    """
    detail = error.detail or error.title or error.typ
    retry_after = getattr(error, "retry_after", None)
    status = getattr(error, "http_status", None)
    if status == 501 or "not implemented" in (detail or "").lower() or (optional_feature and status == 404):
        return Unsupported(
            f"this CA does not support {context} ({detail})",
            NOT_RETRIED,
            problem_type=error.typ,
        )
    if error.code == "rateLimited":
        when = _now() + datetime.timedelta(seconds=retry_after) if retry_after is not None else None
        return RateLimited(
            f"{context}: the CA rate-limited this request: {detail}",
            f"certman will not retry before {when:%Y-%m-%d %H:%M} UTC" if when else "wait before retrying",
            retry_after=when,
        )
    hints = {
        "badCSR": "this is a certman bug; please report it",
        "rejectedIdentifier": "the CA will not issue for this name; check the spelling",
        "unsupportedIdentifier": "the CA does not support this identifier type",
        "externalAccountRequired": "this CA needs external account binding (--eab-kid)",
        "accountDoesNotExist": "the account is gone at the CA: certman account register --new",
        "userActionRequired": "the CA needs you to act: see its website",
        "unauthorized": "the account is not allowed to do this",
        "malformed": None,
    }
    return ACMEError(f"{context}: {detail}", hints.get(error.code or ""), problem_type=error.typ)


@contextlib.contextmanager
def certman_errors(context: str, *, optional_feature: bool = False) -> Iterator[None]:
    """Turn library and protocol exceptions raised inside into certman errors.

    ``context`` names the protocol step for the message ("creating the order"). A problem
    document becomes ``problem_error``'s error (``optional_feature``: the step uses a
    feature the CA may lack), a malformed answer or any other library or ``requests``
    exception an ``ACMEError``; a ``CertmanError`` passes through.
    """
    try:
        yield
    except CertmanError:
        raise
    except messages.Error as exc:
        raise problem_error(exc, context, optional_feature=optional_feature) from exc
    except (jose_errors.DeserializationError, ValueError) as exc:
        raise ACMEError(f"{context}: the CA sent a malformed response") from exc
    except (acme_errors.Error, requests.exceptions.RequestException) as exc:
        raise ACMEError(f"{context}: {exc}") from exc
