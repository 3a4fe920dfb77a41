"""Reading request bodies the way the contract says, one field at a time.

Each reader names the field it rejects, so a 400 always says which field is
wrong and why.
"""

from __future__ import annotations

from typing import Any

from flask import request

from app.sandbox.errors import validation_error
from app.sandbox.profiles import PERMISSIONS


def json_body(*, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; no body at all is `{}` where nothing is required.

    Whitespace alone is a body, and not JSON: it is refused like any other non-JSON body.
    """
    raw = request.get_data(cache=True)
    if not raw:
        if required:
            raise validation_error("body", "The request body must be a JSON object.")
        return {}
    try:
        payload = request.get_json(force=True, silent=True)
    except RecursionError:  # nested deeper than the JSON parser's stack
        payload = None
    if not isinstance(payload, dict):
        raise validation_error("body", "The request body must be a JSON object.")
    return payload


def storable_text(value: str) -> bool:
    """False for text no database column can hold: NUL (PostgreSQL refuses it) or lone surrogates."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def optional_string(body: dict[str, Any], name: str, *, max_length: int, min_length: int = 1) -> str | None:
    if body.get(name) is None:
        return None
    value = body[name]
    if not isinstance(value, str):
        raise validation_error(name, f"{name} must be a string.")
    if not storable_text(value):
        raise validation_error(name, f"{name} must not contain NUL or unpaired surrogate characters.")
    # The maximum counts what was sent, as the OpenAPI document's maxLength does; the minimum, what is kept.
    if len(value) > max_length or len(value.strip()) < min_length:
        raise validation_error(name, f"{name} must be {min_length}–{max_length} characters.")
    value = value.strip()
    return value


def required_string(body: dict[str, Any], name: str, *, max_length: int, min_length: int = 1) -> str:
    value = optional_string(body, name, max_length=max_length, min_length=min_length)
    if value is None:
        raise validation_error(name, f"{name} is required.")
    return value


def optional_int(body: dict[str, Any], name: str, *, minimum: int, maximum: int) -> int | None:
    if body.get(name) is None:
        return None
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise validation_error(name, f"{name} must be an integer.")
    if not minimum <= value <= maximum:
        raise validation_error(name, f"{name} must be between {minimum} and {maximum}.")
    return value


def optional_number(body: dict[str, Any], name: str, *, minimum: float) -> float | None:
    if body.get(name) is None:
        return None
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise validation_error(name, f"{name} must be a number.")
    if value < minimum or value > 1e15:
        raise validation_error(name, f"{name} must be between {minimum:g} and 1e15.")
    return value


def permissions_field(
    body: dict[str, Any], name: str = "permissions", *, allowed: list[str] | None = None
) -> list[str] | None:
    """A non-empty list of known permissions, deduplicated, in the contract's order."""
    if body.get(name) is None:
        return None
    value = body[name]
    if not isinstance(value, list) or not value:
        raise validation_error(name, f"{name} must be a non-empty list.")
    choices = allowed if allowed is not None else list(PERMISSIONS)
    for item in value:
        if not isinstance(item, str) or item not in PERMISSIONS:
            raise validation_error(
                name, f"Unknown permission {_quoted(item)}; choose from {', '.join(PERMISSIONS)}."
            )
        if item not in choices:
            raise validation_error(name, f"{item!r} was not requested; choose from {', '.join(choices)}.")
    return [p for p in PERMISSIONS if p in value]


def _quoted(value: object, limit: int = 40) -> str:
    """Echo a bad value back, but never a megabyte of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
