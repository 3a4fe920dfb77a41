"""`GET /api/results/<resultId>`: the institution's backend fetches a result from us.

The browser's `passid:success` event is a convenience, not a proof: the
backend takes the result id from it and asks us, with its own key, for what
was really verified.
"""

from __future__ import annotations

from flask import Response

from app.api import bp
from app.api.auth import institution_key_required
from app.api.errors import api_document, api_error
from app.rules import verifications


@bp.get("/api/results/<result_id>")
@institution_key_required
def result(result_id: str) -> Response:
    row = verifications.find(result_id)
    if row is None:
        return api_error(404, "NOT_FOUND", "No result has this id.")
    return api_document(verifications.result_document(row))
