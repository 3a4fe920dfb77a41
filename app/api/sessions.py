"""`POST /api/sessions` and `GET /api/sessions/<id>`: the institution's server creates and reads sessions.

Both need the institution key (`app.api.auth`), the same as `/api/results`. A body that is not a
JSON object is refused like any bad field.
"""

from __future__ import annotations

from flask import Response, current_app, request

from app.api import bp
from app.api.auth import institution_key_required
from app.api.errors import api_document, api_error
from app.api.new_session import InvalidField, new_session
from app.rules import sessions

HOSTED_PAGE_PATH = "/verify/session"


@bp.post("/api/sessions")
@institution_key_required
def create() -> Response:
    try:
        wanted = new_session(request.get_json(silent=True), current_app.config)
    except InvalidField as problem:
        return api_error(400, "VALIDATION_ERROR", problem.message, field=problem.field)
    session = sessions.create(
        reference=wanted.reference,
        institution_name=wanted.institution_name,
        permissions=wanted.permissions,
        return_url=wanted.return_url,
        ttl_seconds=wanted.ttl_seconds,
        locale=wanted.locale,
    )
    document = sessions.session_document(session, sessions.state_of(session))
    return api_document({
        "id": session.id,
        "url": hosted_page_url(session.id),
        "reference": session.reference,
        "expiresAt": document["expiresAt"],
        "status": document["status"],
    }, 201)


@bp.get("/api/sessions/<session_id>")
@institution_key_required
def read(session_id: str) -> Response:
    session = sessions.find(session_id)
    if session is None:
        return api_error(404, "NOT_FOUND", "No session has this id.", field="id")
    return api_document(sessions.session_document(session, sessions.state_of(session)))


def hosted_page_url(session_id: str) -> str:
    """Absolute, from PUBLIC_BASE_URL: the bank's server hands it on, so no Host header of ours may shape it.

    The id travels in the query, not the path: the access log records paths only (`app.plumbing.access_log`).
    """
    return f"{current_app.config['PUBLIC_BASE_URL']}{HOSTED_PAGE_PATH}?id={session_id}"
