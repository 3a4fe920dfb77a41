"""`GET /api/results/<resultId>`: the institution's backend fetches a result from us.

The browser's `passid:success` event is a convenience, not a proof: the
backend takes the result id from it and asks us, with its own key, for what
was really verified.
"""

from __future__ import annotations

import hmac

from flask import Response, jsonify, request

from app import verifications
from app.passid_connection import passid_connection
from app.widget.routes import bp


@bp.get("/api/results/<result_id>")
def result(result_id: str) -> Response:
    presented = request.headers.get("X-Institution-Key", "")
    expected = passid_connection().api_key
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        return _error(401, "UNAUTHORIZED", "Send your institution key in X-Institution-Key.")
    row = verifications.find(result_id)
    if row is None:
        return _error(404, "NOT_FOUND", "No result has this id.")
    response = jsonify(verifications.result_document(row))
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    return response
