"""Webhook signatures: `X-PASSID-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.

Verification works on the raw request bytes: re-serialised JSON differs in
whitespace and key order and would never match. Several secrets may be
configured at once so a secret can be rotated without dropping events.

As in stripe-python's `Webhook.construct_event`, a receiver verifies and parses
in one call (`parse_webhook_event`) and then works with the typed event only.
Parsing is bounded: a body that nests deeper than any PASSID event does is
refused as malformed, so neither json's own recursion limit nor anything that
walks the event later (storage, rendering) can be made to fail by depth.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from .bounded_json import MAX_NESTING, TooDeep, loads_bounded
from .errors import MalformedResponse, SignatureFailure, WebhookSignatureError
from .types import WebhookEvent, parse_webhook_envelope

SIGNATURE_HEADER = "X-PASSID-Signature"
_PREFIX = "sha256="
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")

#: The deepest nesting an event may have: the bound every JSON body the app reads shares (`bounded_json`).
MAX_EVENT_NESTING = MAX_NESTING


def sign_payload(raw_body: bytes, secret: str) -> str:
    """The header value PASSID sends for `raw_body`; also used by the sandbox to sign."""
    return _PREFIX + hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def _secret_list(secrets: str | Iterable[str]) -> list[str]:
    items = secrets.split(",") if isinstance(secrets, str) else list(secrets)
    cleaned = [item.strip() for item in items if item and item.strip()]
    if not cleaned:
        # A configuration error, not a bad request: failing loudly beats
        # accepting or silently rejecting every event.
        raise ValueError("no webhook secret configured")
    return cleaned


def verify_webhook_signature(raw_body: bytes, header: str | None, secrets: str | Iterable[str]) -> None:
    """Raise WebhookSignatureError unless `header` signs `raw_body` with one of `secrets`.

    `secrets` is a list or a comma-separated string (old and new during rotation).
    Every secret is compared in constant time, so timing reveals neither the
    digest nor which secret matched.
    """
    if not isinstance(raw_body, bytes | bytearray):
        raise TypeError("pass the raw request body bytes, not parsed or decoded text")
    candidates = _secret_list(secrets)
    if header is None or not header.strip():
        raise WebhookSignatureError(SignatureFailure.MISSING, f"missing {SIGNATURE_HEADER} header")
    value = header.strip()
    digest = value[len(_PREFIX) :].lower() if value.startswith(_PREFIX) else ""
    if not _HEX_DIGEST.fullmatch(digest):
        raise WebhookSignatureError(
            SignatureFailure.MALFORMED, f"malformed {SIGNATURE_HEADER} header: expected 'sha256=<64 hex digits>'"
        )
    provided = digest.encode("ascii")
    matched = False
    for secret in candidates:
        expected = sign_payload(bytes(raw_body), secret)[len(_PREFIX) :].encode("ascii")
        matched |= hmac.compare_digest(expected, provided)
    if not matched:
        raise WebhookSignatureError(SignatureFailure.MISMATCH, "webhook signature does not match any configured secret")


def parse_webhook_event(raw_body: bytes, header: str | None, secrets: str | Iterable[str]) -> WebhookEvent:
    """Verify, then parse the envelope; nothing is parsed before the signature checks out.

    Raises WebhookSignatureError (with its `reason`) for the signature, MalformedResponse
    for a signed body that is not a PASSID event.
    """
    verify_webhook_signature(raw_body, header, secrets)
    return read_webhook_event(raw_body)


def read_webhook_event(raw_body: bytes) -> WebhookEvent:
    """Parse a body whose signature was already checked (for instance when it was stored).

    The same bounded parse as `parse_webhook_event`, so a body that was accepted once
    parses again the same way, and one that was not raises MalformedResponse, never
    RecursionError.
    """
    return parse_webhook_envelope(_decode_bounded(bytes(raw_body)))


def _decode_bounded(raw_body: bytes) -> object:
    try:
        return loads_bounded(raw_body, MAX_EVENT_NESTING)
    except TooDeep:
        raise MalformedResponse(f"webhook body nests deeper than {MAX_EVENT_NESTING} levels") from None
    except ValueError as exc:  # includes bytes that are not UTF-8
        raise MalformedResponse(f"webhook body is not valid JSON: {exc}") from None
