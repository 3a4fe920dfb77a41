"""The backend API's answers: JSON no cache keeps, and one error shape (PASSID's own)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, jsonify


def api_document(document: Mapping[str, Any], status: int = 200) -> Response:
    """A backend API answer: JSON that no cache keeps (it names a person's verification)."""
    response = jsonify(document)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def api_error(status: int, code: str, message: str, field: str | None = None) -> Response:
    """PASSID's own error shape, `{"error": {"code", "field"?, "message"}}`, which integrators already read."""
    error: dict[str, str] = {"code": code}
    if field is not None:
        error["field"] = field
    error["message"] = message
    return api_document({"error": error}, status)
