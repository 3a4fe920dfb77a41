"""Signed handles: how a widget remembers its session without cookies.

Inside a cross-site iframe with third-party cookies blocked there is no
session cookie to lean on, so everything a later call needs (which PASSID
request, with which options) travels in the page as a handle signed with the
app's secret (itsdangerous). A handle cannot be forged or altered, and only
the page that created a request ever holds its handle, so nobody else can
poll it or read its claims through us.

A handle is still a bearer credential: whoever holds the URL sees what the
widget sees. So it stays out of logs (see `app.plumbing.access_log`), and once its
request has finished it shows the result for PASSID_RESULT_VIEW_SECONDS only
(`result_view_over`): long enough for the page to move on, too short for an
old URL found later to show someone's claims.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.config import current_settings

# A QR request lives at most an hour (the contract's maximum TTL); a handle a
# little longer, so the page can still show what happened at the end.
MAX_AGE_SECONDS = 2 * 3600


class InvalidHandle(Exception):
    """A handle that is missing, altered, expired or of the wrong kind."""


def _serializer(kind: str) -> URLSafeTimedSerializer:
    return serializer_for(current_settings().secret_key, kind)


@lru_cache(maxsize=32)
def serializer_for(secret_key: str, kind: str) -> URLSafeTimedSerializer:
    """The serializer of `kind`'s handles under `secret_key` (the pending-poll layer holds its own). Made once
    per key and kind, not on every poll (building one checks its serializer's type each time)."""
    return URLSafeTimedSerializer(secret_key, salt=f"passid-widget-{kind}")


def sign(kind: str, payload: dict[str, Any]) -> str:
    return _serializer(kind).dumps(payload)


def unsign(kind: str, handle: str | None) -> dict[str, Any]:
    return unsign_with(_serializer(kind), handle)


def unsign_with(serializer: URLSafeTimedSerializer, handle: str | None) -> dict[str, Any]:
    """`unsign` with a serializer the caller holds (`serializer_for`): no app context needed."""
    if not handle or len(handle) > 4096:
        raise InvalidHandle("missing handle")
    try:
        payload = serializer.loads(handle, max_age=MAX_AGE_SECONDS)
    except BadSignature as error:
        raise InvalidHandle(str(error)) from None
    if not isinstance(payload, dict):
        raise InvalidHandle("wrong shape")
    return payload


def result_view_over(recorded_at: datetime | None, now: datetime, view_seconds: float) -> bool:
    """Whether a finished request, recorded at `recorded_at` (naive UTC, as stored), may no longer be shown."""
    return recorded_at is not None and now - recorded_at > timedelta(seconds=view_seconds)
