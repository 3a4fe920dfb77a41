"""What an institution's server may ask for in `POST /api/sessions`, checked field by field.

A plain function from the parsed body to a `NewSession` or an `InvalidField`, so tests call it
without a request. Unlike the widget's query overrides (public, so an invalid one falls back
quietly), this body comes from the institution's own server: a typo there is refused with the
field's name, as PASSID's own API does, rather than verifying with options nobody chose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.config import (
    ALL_PERMISSIONS,
    LOCALES,
    SESSION_TTL_MAX_SECONDS,
    SESSION_TTL_MIN_SECONDS,
    Settings,
)
from app.plumbing.i18n import supported_locale
from app.rules.institution_names import listed_institution_name
from app.rules.return_urls import UnusableReturnUrl, checked_return_url
from app.rules.sessions import REFERENCE_MAX_LENGTH

FIELDS = ("reference", "permissions", "institutionName", "returnUrl", "ttlSeconds", "locale")


@dataclass(frozen=True)
class NewSession:
    reference: str
    permissions: tuple[str, ...]
    institution_name: str
    return_url: str | None
    ttl_seconds: int
    locale: str | None = None


class InvalidField(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def new_session(body: Any, settings: Settings) -> NewSession:
    if not isinstance(body, dict):
        raise InvalidField("body", "The body must be a JSON object.")
    for name in body:
        if name not in FIELDS:
            raise InvalidField(str(name)[:64], f"Unknown field; the fields are {', '.join(FIELDS)}.")
    return NewSession(
        reference=_reference(body.get("reference")),
        permissions=_permissions(body.get("permissions"), settings.permissions),
        institution_name=_institution_name(
            body.get("institutionName"), settings.institution_name, settings.institution_names
        ),
        return_url=_return_url(body.get("returnUrl"), settings.allowed_embed_origins),
        ttl_seconds=_ttl_seconds(body.get("ttlSeconds"), settings.session_ttl_seconds),
        locale=_locale(body.get("locale")),
    )


def _reference(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidField("reference", "Required: your application or customer id, 1 to 64 characters.")
    if len(value) > REFERENCE_MAX_LENGTH:
        raise InvalidField("reference", f"Must be at most {REFERENCE_MAX_LENGTH} characters.")
    if not value.isprintable():
        raise InvalidField("reference", "Must contain printable characters only.")
    return value


def _permissions(value: Any, configured: Iterable[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(configured)
    if not isinstance(value, list) or not value or not all(isinstance(p, str) for p in value):
        raise InvalidField("permissions", "Must be a non-empty list of permission names.")
    for permission in value:
        if permission not in ALL_PERMISSIONS:
            raise InvalidField("permissions", f"Unknown permission {permission[:40]!r}; "
                                              f"the permissions are {', '.join(ALL_PERMISSIONS)}.")
    return tuple(p for p in ALL_PERMISSIONS if p in value)


def _institution_name(value: Any, configured: str, also_allowed: Iterable[str]) -> str:
    if value is None:
        return configured
    listed = listed_institution_name(value, configured, also_allowed) if isinstance(value, str) else None
    if listed is not None:
        return listed
    raise InvalidField("institutionName", "Must be PASSID_INSTITUTION_NAME or one of PASSID_INSTITUTION_NAMES.")


def _return_url(value: Any, allowed_origins: Iterable[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField("returnUrl", "Must be a URL.")
    try:
        return checked_return_url(value, allowed_origins)
    except UnusableReturnUrl as problem:
        raise InvalidField("returnUrl", f"The return URL {problem}.") from None


def _ttl_seconds(value: Any, default: int) -> int:
    if value is None:
        return int(default)
    if isinstance(value, bool) or not isinstance(value, int) \
            or not SESSION_TTL_MIN_SECONDS <= value <= SESSION_TTL_MAX_SECONDS:
        raise InvalidField("ttlSeconds", f"Must be a whole number of seconds from {SESSION_TTL_MIN_SECONDS} "
                                         f"to {SESSION_TTL_MAX_SECONDS}.")
    return value


def _locale(value: Any) -> str | None:
    """The language the customer's page speaks, chosen by the institution (it knows its customer)."""
    if value is None:
        return None
    locale = supported_locale(value) if isinstance(value, str) else None
    if locale is None or locale not in LOCALES:  # never the pseudo-locale: it is for layout tests only
        raise InvalidField("locale", f"Must be one of {', '.join(LOCALES)} (a region such as pt-BR is fine).")
    return locale
