"""`GET /api/results/<resultId>`: the institution's backend fetches a result from us.

The browser's `passid:success` event is a convenience, not a proof: the
backend takes the result id from it and asks us, with its own key, for what
was really verified.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from flask import Response, jsonify, request

from app import verifications
from app.passid_connection import passid_connection
from app.widget.routes import bp


@bp.get("/api/results/<result_id>")
def result(result_id: str) -> Response:
    refused = institution_key_refused()
    if refused is not None:
        return refused
    row = verifications.find(result_id)
    if row is None:
        return api_error(404, "NOT_FOUND", "No result has this id.")
    return api_document(verifications.result_document(row))


def institution_key_refused() -> Response | None:
    """401 unless the request carries the institution's key (compared in constant time); None when it does.

    The one check for every backend API (`/api/results`, `/api/sessions`): the same key PASSID issued us.
    """
    presented = request.headers.get("X-Institution-Key", "")
    expected = passid_connection().api_key
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        return api_error(401, "UNAUTHORIZED", "Send your institution key in X-Institution-Key.")
    return None


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
