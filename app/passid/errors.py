"""Exceptions raised by the PASSID client.

Everything derives from `PassidError`, so the application can catch one type
at its boundary. The subclasses exist because callers must react differently:
a timeout or an outage may be retried (with the same Idempotency-Key), a 4xx
answer never should be, and a malformed or wrong-version answer means the
two sides disagree about the contract and a human has to look.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class PassidError(Exception):
    """Root of every error this package raises."""

    #: Set by `PassidClient.verify` on whatever it raises, so a caller that
    #: let the client generate the key can still retry a timed-out verify
    #: without consuming the one-time token twice.
    idempotency_key: str | None = None


class PassidTimeout(PassidError):
    """No complete answer within the client's timeout; the call may have taken effect."""


class PassidUnavailable(PassidError):
    """PASSID could not be reached (refused connection, DNS failure, connection cut)."""


class PassidBusy(PassidUnavailable):
    """Not sent: the client's limit of calls in flight was reached (PASSID is probably slow).

    Raised at once, so a slow PASSID holds at most that many of the caller's
    threads while the others keep serving whatever needs no PASSID call.
    """


class MalformedResponse(PassidError):
    """The answer is not what the contract promises (not JSON, wrong shape, fields missing or mistyped)."""


class ApiVersionMismatch(PassidError):
    """The answer does not carry `X-PASSID-API-Version: 1`.

    Usually a base URL that points at something other than PASSID, or a
    server that speaks a newer contract this client cannot safely read.
    """

    def __init__(self, received: str | None, status: int | None = None) -> None:
        self.received = received
        self.status = status
        shown = "no X-PASSID-API-Version header" if received is None else f"X-PASSID-API-Version {received!r}"
        super().__init__(f"expected PASSID API version 1, got {shown} (HTTP {status})")


class SignatureFailure(StrEnum):
    """Why a webhook signature was refused; each points an operator somewhere else."""

    MISSING = "missing"  # no header at all: usually a misrouted client or a proxy that drops headers
    MALFORMED = "malformed"  # not `sha256=<64 hex digits>`: not PASSID's format, so not PASSID
    MISMATCH = "mismatch"  # well-formed, but no configured secret signs these bytes: a wrong or rotated secret


class WebhookSignatureError(PassidError):
    """A webhook's `X-PASSID-Signature` is missing, malformed or does not match any secret.

    `reason` says which, so a receiver can log why a call failed without
    checking the header a second time itself.
    """

    def __init__(self, reason: SignatureFailure, message: str) -> None:
        super().__init__(message)
        self.reason = SignatureFailure(reason)


class PassidAPIError(PassidError):
    """PASSID answered with an error status.

    `code` and `field` come from the contract's error body and are None when
    the body was not in that shape (for instance an HTML page from a proxy).
    """

    status_code: ClassVar[int | None] = None

    def __init__(self, status: int, code: str | None, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        parts = [f"HTTP {self.status}"]
        if self.code:
            parts.append(self.code)
        text = f"{' '.join(parts)}: {self.message}"
        return f"{text} (field: {self.field})" if self.field else text


class ValidationError(PassidAPIError):
    """400: a field is missing or invalid; `field` names it."""

    status_code = 400


class Unauthorized(PassidAPIError):
    """401: the institution key or user JWT is missing, unknown or of the wrong kind."""

    status_code = 401


class NotFound(PassidAPIError):
    """404: unknown (or someone else's) resource, or code TOKEN_NOT_VERIFIED for outcomes."""

    status_code = 404


class DuplicateOutcome(PassidAPIError):
    """409: an outcome was already reported for this token."""

    status_code = 409


class RequestGone(PassidAPIError):
    """410: the bridge request is no longer pending (REQUEST_EXPIRED/COMPLETED/DECLINED)."""

    status_code = 410


class IdempotencyKeyReused(PassidAPIError):
    """422: the Idempotency-Key was already used with a different body."""

    status_code = 422


class RateLimited(PassidAPIError):
    """429: slow down; `retry_after` is in seconds when the server said so."""

    status_code = 429

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        field: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message, field)
        self.retry_after = retry_after


class ServerError(PassidAPIError):
    """5xx: PASSID (or a gateway in front of it) failed; usually worth a later retry."""


_BY_STATUS: dict[int, type[PassidAPIError]] = {
    cls.status_code: cls
    for cls in (
        ValidationError,
        Unauthorized,
        NotFound,
        DuplicateOutcome,
        RequestGone,
        IdempotencyKeyReused,
        RateLimited,
    )
    if cls.status_code is not None
}


def error_class_for(status: int) -> type[PassidAPIError]:
    """The exception type for an HTTP error status; unknown 4xx fall back to the base class."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, PassidAPIError)
