"""Typed results of PASSID calls, and the parsers that build them from JSON.

The parsers are strict on purpose: an answer that does not match the contract
raises `MalformedResponse` here, at the edge, instead of surfacing later as a
KeyError in a view or — worse — as a truthy string being read as approval.
Claims stay a plain dict because their fields depend on the permissions
granted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any, TypeVar

from .bounded_json import loads_bounded
from .errors import MalformedResponse


class Permission(StrEnum):
    FULL_SCORE = "full_score"
    INCOME_VERIFIED = "income_verified"
    IDENTITY_VERIFIED = "identity_verified"
    SANCTIONS_CLEAR = "sanctions_clear"
    PAYMENT_RELIABILITY = "payment_reliability"
    SAVINGS_CONSISTENCY = "savings_consistency"
    FRAUD_RISK = "fraud_risk"


class DenyReason(StrEnum):
    TOKEN_NOT_FOUND = "TOKEN_NOT_FOUND"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    TOKEN_REVOKED = "TOKEN_REVOKED"
    TOKEN_ALREADY_USED = "TOKEN_ALREADY_USED"
    INSTITUTION_MISMATCH = "INSTITUTION_MISMATCH"
    HARD_DENY_SANCTIONS_MATCH = "HARD_DENY_SANCTIONS_MATCH"


class RequestStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    DECLINED = "declined"
    EXPIRED = "expired"


class Outcome(StrEnum):
    REPAID = "repaid"
    NO_DEFAULT = "no_default"
    DELINQUENT = "delinquent"
    DEFAULTED = "defaulted"
    FRAUD_CONFIRMED = "fraud_confirmed"
    ACCOUNT_CLOSED = "account_closed"
    OTHER = "other"


class EventType(StrEnum):
    """The webhook event types the contract defines.

    `WebhookEvent.type` stays a plain string: a type added to PASSID later must
    still be received (and ignored), not refused as malformed.
    """

    VERIFICATION_COMPLETED = "verification.completed"
    VERIFICATION_DENIED = "verification.denied"
    OUTCOME_REPORTED = "outcome.reported"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class OnboardResult:
    institution_id: str
    institution_name: str
    # Kept out of repr so a logged result does not leak credentials.
    sandbox_key: str = field(repr=False)
    live_key: str = field(repr=False)


@dataclass(frozen=True)
class WebhookConfig:
    url: str | None
    secret_set: bool


@dataclass(frozen=True)
class WebhookDelivery:
    event_id: str
    type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class BridgeRequest:
    """A freshly created QR request."""

    request_id: str
    code: str
    deep_link: str
    expires_at: datetime
    permissions: tuple[Permission, ...]
    status: RequestStatus


@dataclass(frozen=True)
class RequestDetails:
    """The institution's view of a request; claims/token only once completed."""

    request_id: str
    status: RequestStatus
    code: str
    expires_at: datetime
    permissions: tuple[Permission, ...]
    institution_name: str
    claims: dict[str, Any] | None = None
    verified_at: datetime | None = None
    token: str | None = None
    decline_reason: str | None = None


@dataclass(frozen=True)
class PublicRequest:
    """What the customer's app may see of a pending request: never claims."""

    request_id: str
    status: RequestStatus
    institution_name: str
    permissions: tuple[Permission, ...]
    expires_at: datetime
    seconds_remaining: int


@dataclass(frozen=True)
class RequestUpdate:
    """Answer to fulfil/decline."""

    request_id: str
    status: RequestStatus


@dataclass(frozen=True)
class ShareToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class VerifyResult:
    """A verify answer; a deny is a normal result with `verified=False`.

    `idempotency_key` is the key actually sent, so a caller can log it and
    reuse it for a retry; `replayed` says the server returned a stored answer.
    """

    verified: bool
    token: str
    idempotency_key: str
    replayed: bool = False
    claims: dict[str, Any] | None = None
    permissions: tuple[Permission, ...] = ()
    proof_type: str | None = None
    verified_at: datetime | None = None
    corridor: str | None = None
    recommendation: str | None = None
    deny_reason: DenyReason | None = None
    message: str | None = None


@dataclass(frozen=True)
class OutcomeReceipt:
    outcome_id: str
    token: str
    outcome: Outcome
    product_type: str
    amount: float
    currency: str
    # None when the verification did not include full_score, so no score exists.
    fsi_score_at_decision: int | None
    tier: str | None
    reported_at: datetime


@dataclass(frozen=True)
class CohortTier:
    tier: str
    verifications: int
    outcomes_reported: int
    by_outcome: dict[str, int]
    observed_default_rate: float | None
    expected_default_rate: float | None


@dataclass(frozen=True)
class CohortReport:
    generated_at: datetime
    tiers: tuple[CohortTier, ...]


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    created_at: datetime
    api_version: int
    livemode: bool
    data: dict[str, Any]
    # True only for the sample sent by "send test webhook".
    test: bool = False


# --- parsing -----------------------------------------------------------------

_E = TypeVar("_E", bound=Enum)


def decode_json(content: bytes) -> object:
    """Decode a body through the bounded parser (no NaN/Infinity, which would pass number checks; no
    nesting deep enough to fail whatever walks it)."""
    if not content:
        return None
    try:
        return loads_bounded(content)
    except ValueError as exc:
        raise MalformedResponse(f"answer is not valid JSON: {exc}") from None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def parse_time(value: object, what: str = "time") -> datetime:
    """ISO-8601 with a zone -> aware UTC datetime; a naive time is ambiguous, so it is rejected."""
    if not isinstance(value, str):
        raise MalformedResponse(f"{what} should be an ISO-8601 string, got {_kind(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedResponse(f"{what} is not an ISO-8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise MalformedResponse(f"{what} has no time zone: {value!r}")
    return parsed.astimezone(UTC)


class _Obj:
    """Typed reads from one JSON object; every mismatch becomes MalformedResponse."""

    def __init__(self, value: object, what: str) -> None:
        if not isinstance(value, dict):
            raise MalformedResponse(f"{what}: expected a JSON object, got {_kind(value)}")
        self._data: dict[str, Any] = value
        self._what = what

    def _get(self, key: str, types: tuple[type, ...], label: str, optional: bool) -> Any:
        value = self._data.get(key)
        if value is None:
            if optional:
                return None
            raise MalformedResponse(f"{self._what}: missing field {key!r}")
        # bool is an int subclass; True must never pass as a count or a score.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise MalformedResponse(f"{self._what}: field {key!r} should be {label}, got {_kind(value)}")
        return value

    def text(self, key: str, *, optional: bool = False) -> Any:
        return self._get(key, (str,), "a string", optional)

    def integer(self, key: str, *, optional: bool = False) -> Any:
        return self._get(key, (int,), "an integer", optional)

    def number(self, key: str, *, optional: bool = False) -> Any:
        return self._get(key, (int, float), "a number", optional)

    def flag(self, key: str, *, optional: bool = False) -> Any:
        return self._get(key, (bool,), "a boolean", optional)

    def mapping(self, key: str, *, optional: bool = False) -> Any:
        return self._get(key, (dict,), "an object", optional)

    def items(self, key: str) -> list[Any]:
        return self._get(key, (list,), "an array", False)

    def time(self, key: str, *, optional: bool = False) -> Any:
        value = self._data.get(key)
        if value is None and optional:
            return None
        if value is None:
            raise MalformedResponse(f"{self._what}: missing field {key!r}")
        return parse_time(value, f"{self._what}: field {key!r}")

    def choice(self, key: str, enum: type[_E]) -> _E:
        value = self.text(key)
        try:
            return enum(value)
        except ValueError:
            raise MalformedResponse(f"{self._what}: field {key!r} has unknown value {value!r}") from None

    def permissions(self, key: str = "permissions") -> tuple[Permission, ...]:
        result = []
        for value in self.items(key):
            try:
                result.append(Permission(value))
            except (ValueError, TypeError):
                raise MalformedResponse(f"{self._what}: unknown permission {value!r}") from None
        return tuple(result)


def parse_onboard(payload: object) -> OnboardResult:
    o = _Obj(payload, "onboard answer")
    return OnboardResult(o.text("institutionId"), o.text("institutionName"), o.text("sandboxKey"), o.text("liveKey"))


def parse_webhook_config(payload: object) -> WebhookConfig:
    o = _Obj(payload, "webhook settings")
    return WebhookConfig(url=o.text("url", optional=True), secret_set=o.flag("secretSet"))


def parse_event_id(payload: object) -> str:
    return _Obj(payload, "test webhook answer").text("eventId")


def parse_deliveries(payload: object) -> list[WebhookDelivery]:
    deliveries = _Obj(payload, "deliveries answer").items("deliveries")
    result = []
    for index, item in enumerate(deliveries):
        o = _Obj(item, f"delivery #{index}")
        result.append(
            WebhookDelivery(
                event_id=o.text("eventId"),
                type=o.text("type"),
                status=o.choice("status", DeliveryStatus),
                attempts=o.integer("attempts"),
                last_status_code=o.integer("lastStatusCode", optional=True),
                next_attempt_at=o.time("nextAttemptAt", optional=True),
            )
        )
    return result


def parse_bridge_request(payload: object) -> BridgeRequest:
    o = _Obj(payload, "created request")
    return BridgeRequest(
        request_id=o.text("requestId"),
        code=o.text("code"),
        deep_link=o.text("deepLink"),
        expires_at=o.time("expiresAt"),
        permissions=o.permissions(),
        status=o.choice("status", RequestStatus),
    )


def parse_request_details(payload: object) -> RequestDetails:
    o = _Obj(payload, "request")
    status = o.choice("status", RequestStatus)
    completed = status is RequestStatus.COMPLETED
    return RequestDetails(
        request_id=o.text("requestId"),
        status=status,
        code=o.text("code"),
        expires_at=o.time("expiresAt"),
        permissions=o.permissions(),
        institution_name=o.text("institutionName"),
        # A completed request without its claims or token is useless to the
        # institution, so those are required exactly when completed.
        claims=o.mapping("claims", optional=not completed),
        verified_at=o.time("verifiedAt", optional=not completed),
        token=o.text("token", optional=not completed),
        decline_reason=o.text("declineReason", optional=True),
    )


def parse_public_request(payload: object) -> PublicRequest:
    o = _Obj(payload, "public request")
    return PublicRequest(
        request_id=o.text("requestId"),
        status=o.choice("status", RequestStatus),
        institution_name=o.text("institutionName"),
        permissions=o.permissions(),
        expires_at=o.time("expiresAt"),
        seconds_remaining=math.floor(o.number("secondsRemaining")),
    )


def parse_request_update(payload: object) -> RequestUpdate:
    o = _Obj(payload, "request update")
    return RequestUpdate(request_id=o.text("requestId"), status=o.choice("status", RequestStatus))


def parse_jwt(payload: object) -> str:
    jwt = _Obj(payload, "sandbox login answer").text("jwt")
    if not jwt:
        raise MalformedResponse("sandbox login answer: empty 'jwt'")
    return jwt


def parse_share_token(payload: object) -> ShareToken:
    o = _Obj(payload, "share token")
    return ShareToken(token=o.text("token"), expires_at=o.time("expiresAt"))


def parse_verify(payload: object, *, idempotency_key: str, replayed: bool) -> VerifyResult:
    o = _Obj(payload, "verify answer")
    verified = o.flag("verified")
    token = o.text("token")
    if not verified:
        return VerifyResult(
            verified=False,
            token=token,
            idempotency_key=idempotency_key,
            replayed=replayed,
            deny_reason=o.choice("denyReason", DenyReason),
            message=o.text("message", optional=True),
        )
    return VerifyResult(
        verified=True,
        token=token,
        idempotency_key=idempotency_key,
        replayed=replayed,
        claims=o.mapping("claims"),
        permissions=o.permissions(),
        proof_type=o.text("proofType"),
        verified_at=o.time("verifiedAt"),
        corridor=o.text("corridor"),
        recommendation=o.text("recommendation"),
    )


def parse_outcome_receipt(payload: object) -> OutcomeReceipt:
    o = _Obj(payload, "outcome receipt")
    return OutcomeReceipt(
        outcome_id=o.text("outcomeId"),
        token=o.text("token"),
        outcome=o.choice("outcome", Outcome),
        product_type=o.text("productType"),
        amount=o.number("amount"),
        currency=o.text("currency"),
        fsi_score_at_decision=o.integer("fsiScoreAtDecision", optional=True),
        tier=o.text("tier", optional=True),
        reported_at=o.time("reportedAt"),
    )


def parse_cohorts(payload: object) -> CohortReport:
    o = _Obj(payload, "cohorts answer")
    tiers = []
    for index, item in enumerate(o.items("tiers")):
        row = _Obj(item, f"cohort row #{index}")
        by_outcome = row.mapping("byOutcome")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in by_outcome.values()):
            raise MalformedResponse(f"cohort row #{index}: byOutcome counts should be integers")
        tiers.append(
            CohortTier(
                tier=row.text("tier"),
                verifications=row.integer("verifications"),
                outcomes_reported=row.integer("outcomesReported"),
                by_outcome=dict(by_outcome),
                observed_default_rate=row.number("observedDefaultRate", optional=True),
                expected_default_rate=row.number("expectedDefaultRate", optional=True),
            )
        )
    return CohortReport(generated_at=o.time("generatedAt"), tiers=tuple(tiers))


def parse_webhook_envelope(payload: object) -> WebhookEvent:
    o = _Obj(payload, "webhook event")
    return WebhookEvent(
        id=o.text("id"),
        type=o.text("type"),
        created_at=o.time("createdAt"),
        api_version=o.integer("apiVersion"),
        livemode=o.flag("livemode"),
        data=o.mapping("data"),
        test=bool(o.flag("test", optional=True)),
    )
