"""How the widget shows a session the institution's server created (`app.rules.sessions`).

Decisions, not views: which options a signed handle stands for, what a session that takes no
more attempts shows instead of a form, and where "Continue" goes. The routes render them.

Nothing here uses a cookie: the session id travels in the signed options handle every form of
the widget already carries (`signed_handles`), so a session works in a third-party iframe too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _

from app.passid import DenyReason
from app.rules import customer_wording, sessions, verifications
from app.rules.return_urls import continue_url
from app.rules.sessions import SessionState, SessionStatus, VerificationSession
from app.widget.options import WidgetOptions, locked_to_session, options_from
from app.widget.states import StateView


def options_for(values: Mapping[str, str]) -> WidgetOptions:
    """A session's locked options when `values` (signed, or the hosted page's) name a session; else the embed's."""
    session = sessions.find(values.get("session"))
    return options_from(values) if session is None else session_options(session, values)


def session_options(session: VerificationSession, values: Mapping[str, str]) -> WidgetOptions:
    return locked_to_session(values, session_id=session.id, institution_name=session.institution_name,
                             permissions=session.permissions, locale=session.locale)


def session_of(options: WidgetOptions) -> VerificationSession | None:
    return sessions.find(options.session_id) if options.session_id else None


def recorded_for(options: WidgetOptions) -> dict[str, Any]:
    """What a verification made in this widget records about its session (nothing outside one)."""
    return sessions.recorded_for(session_of(options))


def links(options: WidgetOptions, session: VerificationSession | None, *, closed: bool) -> dict[str, Any]:
    """The hosted page's "Continue" (not inside an embed: there the embedding page gets the event),
    and whether "Try again" is still offered."""
    if session is None:
        return {}
    url = continue_url(session.return_url, session.id) if session.return_url and not options.parent_origin else None
    return {"continue_url": url, "session_closed": closed}


def is_closed(session: VerificationSession) -> bool:
    return sessions.state_of(session).closed


def may_cancel(options: WidgetOptions) -> bool:
    """Whether the page offers "Cancel and return to <bank>": in an open session with somewhere to return to
    (its returnUrl) or someone to tell (the embedding page, through its event)."""
    session = session_of(options)
    return (session is not None and (bool(session.return_url) or bool(options.parent_origin))
            and not is_closed(session))


def cancelled_view(options: WidgetOptions, session: VerificationSession) -> StateView:
    """What the customer's own cancel shows where it does not go back to the bank's page itself: inside an embed
    (the embedding page gets `passid:cancel` and decides), or a session with no returnUrl. Reopened later, the
    link shows the closed session's neutral words (`closed_state`), as for a session the bank cancelled."""
    event = {"type": "passid:cancel", "sessionId": session.id} if options.parent_origin else None
    return StateView("declined", {"message": _("You cancelled this verification. Nothing more is needed here."),
                                  "heading": _("Verification cancelled"), "expired": False, "qr": False}, event)


def closed_state(options: WidgetOptions) -> tuple[StateView, dict[str, Any]] | None:
    """What a session shows once it takes no more attempts (first success, or expiry); None while it is open.

    Reopening the link shows this final state, never a new form, and never the claims again:
    the link may be found in a browser's history long after the customer left.
    """
    session = session_of(options)
    if session is None:
        return None
    state = sessions.state_of(session)
    if not state.closed:
        return None
    return _final_view(options, session, state), links(options, session, closed=True)


def _final_view(options: WidgetOptions, session: VerificationSession, state: SessionState) -> StateView:
    embedded = bool(options.parent_origin)
    result_id = state.result.id if state.result else None
    if state.status == SessionStatus.COMPLETED:
        event = {"type": "passid:success", "resultId": result_id, "sessionId": session.id}
        decision = verifications.verdict_of(state.result) if state.result else None
        approved = decision is not None and decision.verdict == "approve"
        return StateView("success", {"claims": {}, "lines": [], "approved": approved}, event if embedded else None)
    ended_by_sanctions = state.result is not None and sessions.is_sanctions_match(state.result)
    if ended_by_sanctions or state.status == SessionStatus.CANCELLED:
        # Ended by a sanctions match or by the bank: the same neutral words for both (naming the match would be
        # tipping-off), and the same event as any deny.
        reason = "denied" if ended_by_sanctions else "Session cancelled"
        event = {"type": "passid:decline", "reason": reason, "resultId": result_id, "sessionId": session.id}
        message = customer_wording.deny_message(DenyReason.HARD_DENY_SANCTIONS_MATCH, session.institution_name)
        return StateView("declined", {"message": message, "expired": False, "qr": False},
                         event if embedded else None)
    event = {"type": "passid:decline", "reason": "Session expired", "resultId": result_id, "sessionId": session.id}
    message = _("This verification link has expired. Please return to %(name)s to continue.",
                name=session.institution_name)
    return StateView("declined", {"message": message, "expired": False, "qr": False}, event if embedded else None)
