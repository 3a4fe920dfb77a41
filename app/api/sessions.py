"""`/api/sessions`: the institution's server creates sessions, reads one with every attempt, finds those of
one of its references, and cancels one.

All need the institution key (`app.api.auth`), the same as `/api/results`. A body that is not a
JSON object is refused like any bad field.
"""

from __future__ import annotations

from flask import Response, abort, request

from app.api import bp
from app.api.auth import institution_key_required
from app.api.errors import api_document, api_error
from app.api.new_session import InvalidField, new_session
from app.config import current_settings
from app.rules import sessions

HOSTED_PAGE_PATH = "/verify/session"


@bp.post("/api/sessions")
@institution_key_required
def create() -> Response:
    try:
        wanted = new_session(request.get_json(silent=True), current_settings())
    except InvalidField as problem:
        return api_error(400, "VALIDATION_ERROR", problem.message, field=problem.field)
    created = sessions.create(
        reference=wanted.reference,
        institution_name=wanted.institution_name,
        permissions=wanted.permissions,
        return_url=wanted.return_url,
        ttl_seconds=wanted.ttl_seconds,
        locale=wanted.locale,
    )
    document = sessions.session_document(created, sessions.state_of(created))
    return api_document({
        "id": created.id,
        "url": hosted_page_url(created.id),
        "reference": created.reference,
        "expiresAt": document["expiresAt"],
        "status": document["status"],
    }, 201)


@bp.get("/api/sessions")
@institution_key_required
def with_reference() -> Response:
    """`?reference=REF`: every session of one applicant, newest first, each as `GET /api/sessions/<id>` reads it."""
    reference = request.args.get("reference", "")
    if not reference:
        return api_error(400, "VALIDATION_ERROR", "Required: the reference your server gave its sessions.",
                         field="reference")
    if not sessions.is_usable_reference(reference):
        return api_error(400, "VALIDATION_ERROR",
                         f"Must be 1 to {sessions.REFERENCE_MAX_LENGTH} printable characters.", field="reference")
    found = sessions.with_reference(reference)
    return api_document({"reference": reference,
                         "sessions": [sessions.session_document(each, sessions.state_of(each)) for each in found]})


@bp.get("/api/sessions/<session_id>")
@institution_key_required
def read(session_id: str) -> Response:
    session = _session_or_404(session_id)
    return api_document(sessions.session_document(session, sessions.state_of(session)))


@bp.post("/api/sessions/<session_id>/cancel")
@institution_key_required
def cancel(session_id: str) -> Response:
    """End an open session: the customer's page shows it over, and nothing completes it afterwards."""
    session = _session_or_404(session_id)
    try:
        state = sessions.cancel(session)
    except sessions.SessionClosed as closed:
        return api_error(409, "SESSION_CLOSED", f"The session is {closed.state.status.value}; only an open "
                                                "session can be cancelled.")
    return api_document(sessions.session_document(session, state))


def _session_or_404(session_id: str) -> sessions.VerificationSession:
    """The session, or the API's 404 in its own shape (raised: Flask answers with the response given)."""
    session = sessions.find(session_id)
    if session is None:
        abort(api_error(404, "NOT_FOUND", "No session has this id.", field="id"))
    return session


def hosted_page_url(session_id: str) -> str:
    """Absolute, from PUBLIC_BASE_URL: the bank's server hands it on, so no Host header of ours may shape it.

    The id travels in the query, not the path: the access log records paths only (`app.plumbing.access_log`).
    """
    return f"{current_settings().public_base_url}{HOSTED_PAGE_PATH}?id={session_id}"
