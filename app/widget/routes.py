"""The widget's routes, in the order a customer meets them.

Every route answers with one state partial (`templates/widget/_<state>.html`)
for htmx, or the whole page around that same partial for a plain request,
so the widget also works without JavaScript. Decisions — which final state,
which event, what a deny reason says — live in `states` and `messages`.

One view per URL: where the htmx spinner step and the plain form share a URL,
both reach the same plain function (`start_session`, `check_submitted_token`,
`poll_outcome`), never another view, so each action counts once against its
rate limit with or without JavaScript.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

import app.rules.sessions  # in full: `sessions` here is the widget's own (app.widget.sessions)
from app.config import current_settings, settings_of
from app.passid import PassidBusy, PassidError, RequestDetails, RequestStatus, ValidationError, restrict_claims
from app.plumbing import final_state_drawing, i18n
from app.plumbing.database import utcnow
from app.plumbing.htmx import htmx
from app.plumbing.metrics import metrics
from app.plumbing.own_origin import own_origin
from app.plumbing.passid_connection import passid_client, passid_connection
from app.plumbing.rate_limits import limiter, session_limit, spinner_step, token_limit
from app.rules import customer_wording as messages
from app.rules import funnel, verifications
from app.rules.finished_requests import EXTENSION as FINISHED_REQUESTS
from app.rules.finished_requests import FinishedRequests
from app.rules.finished_requests import install as install_finished_requests
from app.rules.return_urls import UnusableReturnUrl, cancelled_url, checked_return_url
from app.rules.token_forms import idempotency_key, submitted_token, valid_nonce
from app.widget import pending_polls, sessions, signed_handles, states
from app.widget.options import WidgetOptions, handle_query, options_from
from app.widget.polling import CHECKED_HEADER, UpstreamChecks
from app.widget.qr import qr_svg

bp = Blueprint("widget", __name__)
bp.add_app_template_global(messages.what_the_bank_sees, "what_the_bank_sees")


@bp.record_once
def _track_upstream_checks(state: BlueprintSetupState) -> None:
    """One record per process of which requests it asked about in their current check window (see `polling`)."""
    state.app.extensions["passid_upstream_checks"] = UpstreamChecks(settings_of(state.app).poll_check_seconds)
    install_finished_requests(state.app, verifications.request_ids_created_since)
    pending_polls.install(state.app)  # the pending poll's cheap path, only where the widget is mounted
    final_state_drawing.offer(state.app, draw_final_state)


@bp.before_request
def _speak_the_widget_s_language() -> None:
    """The locale its options carry (the session's, or the embed's `locale`) comes before the browser's.

    Said before anything is translated (messages are worded before the state that shows them), read only
    when something is: a pending poll's 204 translates nothing, so it never unsigns its options for this."""
    i18n.prefer_lazily(locale_of_this_request)


def locale_of_this_request() -> str | None:
    """The locale the widget's signed options carry (a session's options carry the session's, signed
    when its page was drawn); None leaves the choice to `?locale=` and the browser (the hosted page
    prefers its session's own, `session_page`). Read from the handle itself: a pending poll must cost
    no database query."""
    try:
        payload = options_payload()
    except HTTPException:  # a form too large or unreadable: its error page speaks `?locale=`'s or the browser's
        return None
    return None if payload is None else payload.get("locale")


def options_payload() -> dict[str, Any] | None:
    """The signed `o` field's contents, None when it is missing or altered; unsigned once per request
    (the language and the options both read it)."""
    if "passid_options_payload" not in g:
        try:
            g.passid_options_payload = signed_handles.unsign("options", request.values.get("o"))
        except signed_handles.InvalidHandle:
            g.passid_options_payload = None
    payload: dict[str, Any] | None = g.passid_options_payload
    return payload


# --- rendering ----------------------------------------------------------------------

# States a customer may leave a session from ("Cancel and return to <bank>"): not a spinner, not a final state.
CANCELLABLE_STATES = ("idle", "awaiting", "declined", "error")


def render_state(state: str, options: WidgetOptions, status: int = 200, **context: Any) -> Response:
    """The partial for htmx, or the full page around the same partial."""
    assert state in states.STATES
    context.update(
        state=state,
        options=options,
        options_handle=signed_handles.sign("options", handle_query(options)),
    )
    if "cancellable" not in context:  # only a session's page asks its database
        context["cancellable"] = (state in CANCELLABLE_STATES and options.session_id is not None
                                  and not context.get("session_closed") and sessions.may_cancel(options))
    template = f"widget/_{state}.html" if htmx else "widget/page.html"
    response = Response(render_template(template, **context), status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def signed_options() -> WidgetOptions:
    """Options from the signed `o` field (a session's locked ones when it names a session);
    a missing or altered one means configuration defaults."""
    payload = options_payload()
    return options_from({}) if payload is None else sessions.options_for(payload)


def new_form_nonce() -> str:
    return secrets.token_urlsafe(16)


def idle(options: WidgetOptions, *, nonce: str | None = None, error: str | None = None,
         status: int = 200, token: str = "", notice: str | None = None, first_screen: bool = False) -> Response:
    """The form, unless a session takes no more attempts: then its final state (every way back to
    the form passes here: reset, "Try again", an old page's error); a journey's `first_screen` is `shown`."""
    closed = session_closed(options)
    if closed is not None:
        return closed
    if first_screen:
        shown(options)
    return render_state("idle", options, status, nonce=nonce or new_form_nonce(), error=error, token=token,
                        notice=notice)


@dataclass(frozen=True)
class Retry:
    """What "Try again" does from the error state: the form it submits."""

    method: str
    url: str
    fields: dict[str, str] = field(default_factory=dict)


def error_state(options: WidgetOptions, *, retry: Retry) -> Response:
    """PASSID slow, down or answering nonsense: say so, offer "Try again", never a raw error page."""
    event = {"type": "passid:error", "message": "PASSID could not be reached"} if options.parent_origin else None
    return render_state("error", options, 502, retry=retry, event=event)


@bp.errorhandler(429)
def too_many(error: Exception) -> Response:
    """A friendly word in the widget, not a bare 429 page."""
    return idle(signed_options(), error=messages.rate_limited_message(), status=429)


# --- idle -------------------------------------------------------------------------------

@bp.get("/verify")
def page() -> Response:
    return idle(options_from(request.args), first_screen=True)


@bp.get("/verify/session")
def session_page() -> Response:
    """The hosted page of a session the institution's server created (`POST /api/sessions` gives its url).

    Its name and permissions are the session's, whatever the query says; embed.js's data-session
    opens the same page in its iframe, with the theme and the allowed origin as for any embed.
    """
    session = app.rules.sessions.find(request.args.get("id"))
    if session is None:
        return unknown_session()
    i18n.prefer(session.locale)  # before anything on the page is translated
    return idle(sessions.session_options(session, request.args), first_screen=True)


def unknown_session() -> Response:
    """A link or poll that names no session we know: the translated error page (404), nothing about why.

    Its way back is the page the customer came from, when that page is one the bank allowed (an embedding
    origin): we do not know the bank's page of a session we do not know, and an unlisted referrer may be anyone.
    """
    try:  # the same rule as a session's own return URL: http(s), no user name, an allowed origin
        back: str | None = checked_return_url(request.referrer or "", current_settings().allowed_embed_origins)
    except UnusableReturnUrl:
        back = None
    sentence = _("Unknown verification session. Return to the page you came from and start again.")
    page = render_template("errors/error.html", title=_("Page not found"), sentence=sentence, back_url=back)
    response = Response(page, status=404, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/verify/session/cancel")
@limiter.shared_limit(session_limit, scope="widget-sessions")
def cancel_session() -> BaseResponse:
    """The customer's "Cancel and return to <bank>": the session ends as cancelled (as the bank's own cancel
    does, `POST /api/sessions/<id>/cancel`), then the hosted page goes back to its returnUrl with
    `session=<id>&status=cancelled`; inside an embed the embedding page gets `passid:cancel` instead.

    A session already over (a success in another tab, its time up) is not cancelled: its final state is shown,
    with its own way back, so the bank's page never hears "cancelled" of a session that completed.
    """
    options = signed_options()
    session = sessions.session_of(options)
    if session is None:
        return unknown_session()
    try:
        app.rules.sessions.cancel(session)
    except app.rules.sessions.SessionClosed:
        closed = session_closed(options)
        assert closed is not None  # the session is over: its final state
        return closed
    if session.return_url and not options.parent_origin:
        response = redirect(cancelled_url(session.return_url, session.id), 303)
        response.headers["Cache-Control"] = "no-store"
        return response
    view = sessions.cancelled_view(options, session)
    return render_state(view.state, options, event=view.event, session_closed=True, cancellable=False,
                        **view.context)


def session_closed(options: WidgetOptions) -> Response | None:
    """A session's final state once it takes no more attempts; None outside a session or while it is open."""
    closed = sessions.closed_state(options)
    if closed is None:
        return None
    view, links = closed
    return render_state(view.state, options, event=view.event, **view.context, **links)


@bp.get("/verify/reset")
def reset() -> Response:
    """Back to idle; "Try again" after an error keeps its form nonce so a retry reuses its key."""
    nonce = request.args.get("n", "")
    return idle(signed_options(), nonce=valid_nonce(nonce))


# --- QR flow ------------------------------------------------------------------------------

@bp.post("/verify/qr")
@limiter.shared_limit(session_limit, scope="widget-sessions", exempt_when=spinner_step)
def requesting() -> Response:
    """"Verify with the PASSID app": show the spinner first (htmx), which then asks for the session; without
    JavaScript this post starts the session itself (the spinner step alone is not counted)."""
    if htmx:
        return render_state("requesting", signed_options())
    return start_session(signed_options())


@bp.post("/verify/qr/session")
@limiter.shared_limit(session_limit, scope="widget-sessions")
def create_session() -> Response:
    """The spinner's follow-up: the session itself."""
    return start_session(signed_options())


def start_session(options: WidgetOptions) -> Response:
    """Ask PASSID for a QR request: the awaiting state with its code, or the error state."""
    closed = session_closed(options)
    if closed is not None:
        return closed
    try:
        created = passid_client().create_request(
            institution_name=options.institution_name,
            permissions=list(options.permissions),
            ttl_seconds=current_settings().request_ttl_seconds,
        )
    except PassidError:
        current_app.logger.warning("create_request failed", exc_info=True)
        return error_state(options, retry=Retry("post", url_for("widget.requesting", locale=options.locale)))
    handle = signed_handles.sign(
        "request",
        {
            "r": created.request_id,
            "c": created.code,
            "d": created.deep_link,
            "x": created.expires_at.isoformat(),
        },
    )
    session = sessions.session_of(options)
    if session is not None:  # so its webhook records it for the session if no poll of ours comes again
        app.rules.sessions.note_request(created.request_id, session)
    funnel.note_qr_started(funnel_journey(options), created.request_id, created.expires_at)
    upstream_checks().seen_pending(created.request_id, created.expires_at)
    return awaiting(options, handle)


def awaiting(options: WidgetOptions, handle: str) -> Response:
    session = signed_handles.unsign("request", handle)
    expires_at = datetime.fromisoformat(session["x"])
    seconds = max(0, int((expires_at - datetime.now(UTC)).total_seconds()))
    connection = passid_connection()
    phone_url = f"{connection.base_url}/phone?r={session['r']}" if connection.sandbox else None
    # The link is clicked on our origin: only PASSID's own scheme, never a javascript: or web URL.
    deep_link = session["d"] if session["d"].lower().startswith("passid://") else None
    return render_state(
        "awaiting",
        options,
        handle=handle,
        code=session["c"],
        qr=qr_svg(session["d"], _("QR code to scan with the PASSID app")),
        deep_link=deep_link,
        seconds_remaining=seconds,
        minutes_left=messages.minutes_left_sentences(seconds),
        phone_url=phone_url,
    )


@bp.get("/verify/qr/status")
def poll() -> Response:
    """The 2.5 s poll: 204 while pending (htmx swaps nothing), else the final state."""
    try:
        session = signed_handles.unsign("request", request.args.get("h"))
    except signed_handles.InvalidHandle:
        return unknown_session()
    outcome = poll_outcome(session)
    if outcome is not None:
        return outcome
    pending_polls.found_pending(session)  # its next polls may be answered before Flask, until a check is due
    answer = still_pending()
    checked_mark = g.pop("passid_checked_mark", None)
    if checked_mark is not None:  # this poll asked PASSID: the widget says so with its next polls (`polling`)
        answer.headers[CHECKED_HEADER] = checked_mark
    return answer


def poll_outcome(session: dict[str, Any]) -> Response | None:
    """The final state (or the error state) of the request in `session`; None while it is pending.

    Our records first (a webhook may have finished the request); PASSID only
    when `polling` says it is time to ask. Between checks "our records" is this
    process's set of requests finished lately (`app.rules.finished_requests`): no query.
    """
    request_id = session["r"]
    expires_at = datetime.fromisoformat(session["x"])
    webhooks = bool(passid_connection().webhook_secrets)
    finished_lately = finished_requests().holds(request_id)  # at most one query per process every 50 ms
    # The pending-poll layer may have made this poll's check: what PASSID said is drawn below, not asked again.
    layer_answer = checked_by_the_layer(request_id)
    checked_by_layer = layer_answer is not None
    reported = request.headers.get(CHECKED_HEADER)  # an earlier poll of this widget asked in this window
    if not finished_lately and not checked_by_layer and not upstream_checks().should_ask(
            request_id, expires_at, webhooks=webhooks, reported=reported):
        # Between checks, and no process recorded it lately: no database, no PASSID.
        return poll_answered("records", None)
    # A due check asks PASSID without a lookup first: a row the set missed (another process wrote it within
    # the last refresh interval) is found by `record` below once PASSID reports the final state.
    finished = verifications.find_by_request(request_id) if finished_lately else None
    if finished is not None:
        if finished.code is None:
            verifications.attach_code(request_id, session["c"])
        options = signed_options()
        if options.session_id:  # its webhook may have recorded it first, knowing no session
            verifications.attach_session(request_id, **sessions.recorded_for(options))
        return poll_answered("records", view_over() if result_view_over(finished) else final_state(options, finished))
    if finished_lately and not upstream_checks().should_ask(request_id, expires_at, webhooks=webhooks,
                                                            reported=reported):
        return poll_answered("records", None)  # known finished, but its row is gone (erased): wait for the check
    # The window of this ask, for the widget to send back (`polling.CHECKED_HEADER`), whatever the call takes.
    mark = upstream_checks().mark(request_id, expires_at) if webhooks else None
    try:
        if isinstance(layer_answer, PassidError):
            raise layer_answer
        details = layer_answer if layer_answer is not None else passid_client().get_request(request_id)
    except PassidBusy as error:
        if datetime.now(UTC) < expires_at:
            upstream_checks().forget(request_id)  # PASSID is slow for others already: ask at the next poll
            return poll_answered("passid", None)
        return poll_answered("passid", status_check_failed(signed_options(), error), "error")  # not "pending"
    except PassidError as error:
        return poll_answered("passid", status_check_failed(signed_options(), error), "error")
    if details.status == RequestStatus.PENDING:
        g.passid_checked_mark = mark  # for `poll` to tell the widget
        return poll_answered("passid", None)  # (the options are unsigned only when something is drawn)
    options = signed_options()
    finished = verifications.record(
        source=verifications.Source.QR,
        status=details.status,
        request_id=request_id,
        code=session["c"],
        token=details.token,
        claims=restrict_claims(details.claims, options.permissions) if details.claims else None,
        permissions=[str(p) for p in details.permissions],
        decline_reason=details.decline_reason,
        verified_at=details.verified_at,
        **sessions.recorded_for(options),
    )
    # `record` may have found an old row the set did not hold: its result view is over too.
    return poll_answered("passid", view_over() if result_view_over(finished) else final_state(options, finished))


def checked_by_the_layer(request_id: str) -> RequestDetails | PassidError | None:
    """What PASSID answered the pending-poll layer's check of this poll (`pending_polls.CHECKED`): its details,
    or the failure to raise where a call of our own would have; None when the layer made no check of it."""
    checked = request.environ.pop(pending_polls.CHECKED, None)
    if checked is None or checked[0] != request_id:
        return None
    answer: RequestDetails | PassidError = checked[1]
    return answer


def poll_answered(answered_by: str, answer: Response | None, state: str | None = None) -> Response | None:
    """Count the poll (`passid_widget_polls_total`): who answered it (our records, or PASSID asked) and what it
    drew (pending while None, else final, or the error state); pass the answer through."""
    watched = metrics()
    if watched is not None:
        watched.poll_answered(answered_by, state or ("pending" if answer is None else "final"))
    return answer


def result_view_over(finished: verifications.Finished) -> bool:
    view_seconds = current_settings().result_view_seconds
    return signed_handles.result_view_over(finished.created_at, utcnow(), view_seconds)


def view_over() -> Response:
    """An old handle of a finished request: idle again, with no result in it (410 Gone)."""
    return idle(signed_options(), notice=messages.view_over_message(), status=410)


@limiter.request_filter
def _poll_is_never_limited() -> bool:
    """The poll has no rate limit, so the limiter skips it before resolving limits (a tenth of a pending
    poll's work). Limiting it per address would be wrong anyway: a branch's tablets share one address,
    and the poll calls PASSID only as `polling` allows."""
    return request.endpoint == "widget.poll"


def status_check_failed(options: WidgetOptions, error: PassidError) -> Response:
    # One line, no traceback: in an outage every widget's check lands here.
    current_app.logger.warning("PASSID status check failed: %s", error)
    return error_state(options, retry=Retry("get", url_for("widget.resume"), {"h": request.args.get("h", "")}))


def still_pending() -> Response:
    """htmx swaps nothing on a 204; a plain (no-JavaScript) reload gets the QR page again."""
    if htmx:
        # An empty body said so (Content-Length 0, dropped from a 204 on the way out): Flask-Compress
        # leaves it alone, where it used to gzip or brotli nothing on every poll and label it so.
        return Response(b"", status=204)
    return awaiting(signed_options(), request.args.get("h", ""))


def upstream_checks() -> UpstreamChecks:
    return current_app.extensions["passid_upstream_checks"]


def finished_requests() -> FinishedRequests:
    return current_app.extensions[FINISHED_REQUESTS]


@bp.get("/verify/qr/resume")
def resume() -> Response:
    """"Try again" after a failed poll: back to the same QR if it is still pending."""
    handle = request.args.get("h", "")
    try:
        session = signed_handles.unsign("request", handle)
    except signed_handles.InvalidHandle:
        return idle(signed_options())
    outcome = poll_outcome(session)
    return awaiting(signed_options(), handle) if outcome is None else outcome


# --- manual flow ------------------------------------------------------------------------------

@bp.post("/verify/token")
@limiter.shared_limit(token_limit, scope="widget-tokens", exempt_when=spinner_step)
def verifying() -> Response:
    """Submit a token: the spinner first (htmx), which then asks for the check; without
    JavaScript this post checks the token itself (the spinner step alone is not counted)."""
    options = signed_options()
    token, nonce = submitted_token()
    if token is None or nonce is None:
        return idle(options, nonce=nonce, error=messages.token_format_message(), status=422,
                    token=request.form.get("token", "")[:100])
    if htmx:
        return render_state("verifying", options, token=token, nonce=nonce)
    return check_submitted_token(options, token, nonce)


@bp.post("/verify/token/check")
@limiter.shared_limit(token_limit, scope="widget-tokens")
def check_token() -> Response:
    """The spinner's follow-up: the check itself."""
    options = signed_options()
    token, nonce = submitted_token()
    if token is None or nonce is None:
        return idle(options, nonce=nonce, error=messages.token_format_message(), status=422)
    return check_submitted_token(options, token, nonce)


def check_submitted_token(options: WidgetOptions, token: str, nonce: str) -> Response:
    """Verify a well-formed token with the form's key: the final state, or idle/error to try again."""
    closed = session_closed(options)
    if closed is not None:
        return closed
    key = idempotency_key(nonce, token)
    journey = funnel_journey(options)  # started as it is submitted
    try:
        result = passid_client().verify(token, idempotency_key=key)
    except ValidationError:
        return idle(options, nonce=nonce, error=messages.token_format_message(), status=422)
    except PassidError:
        current_app.logger.warning("verify failed", exc_info=True)
        return error_state(options, retry=Retry("get", url_for("widget.reset"), {"n": nonce}))
    with funnel.checking_token(journey):
        finished = verifications.record_verify_result(
            result, source=verifications.Source.MANUAL, idempotency_key=key, wanted=options.permissions,
            **sessions.recorded_for(options),
        )
    return final_state(options, finished)


# --- the funnel ---------------------------------------------------------------------------------

def funnel_channel(options: WidgetOptions) -> funnel.Channel:
    return funnel.channel_of(session=options.session_id is not None, framed_by_us=options.parent_origin == own_origin())


def shown(options: WidgetOptions) -> None:
    """A journey's first screen, counted in the funnel; not the counter's framed QR flow: its counter counted it."""
    channel = funnel_channel(options)
    if channel != funnel.Channel.BRANCH:
        funnel.note_shown(channel, i18n.chosen_locale())


def funnel_journey(options: WidgetOptions) -> funnel.Journey:
    """What a start is counted under (`app.rules.funnel`): the page's channel and language, whether it runs
    JavaScript (htmx sent it), and the layout widget.js reported (never a fingerprint of the device)."""
    return funnel.Journey(channel=funnel_channel(options), scripted=bool(htmx), locale=i18n.chosen_locale(),
                          device=funnel.device_of(request.headers.get(funnel.LAYOUT_HEADER)))


# --- final states ---------------------------------------------------------------------------------

def final_state(options: WidgetOptions, finished: verifications.Finished) -> Response:
    """Draw what `states.final_view` decided; in a session, with its id in the event and its "Continue".

    An erased verification (`app.rules.retention`) is never drawn: a later poll, resume or replayed form of it
    gets what an old handle gets, idle with no result in it.
    """
    if finished.redacted_at is not None:
        return view_over()
    view = states.final_view(finished, options, current_settings().customer_claims)
    session = sessions.session_of(options)
    if session is None:
        return render_state(view.state, options, event=view.event, **view.context)
    event = {**view.event, "sessionId": session.id} if view.event else None
    # Over once it succeeded, ran out, or a sanctions match ended it: then no "Try again".
    closed = view.state == "success" or sessions.is_closed(session)
    return render_state(view.state, options, event=event, **view.context,
                        **sessions.links(options, session, closed=closed))


def draw_final_state(status: str, deny_reason: str | None = None, *, parent_origin: str | None = None) -> str:
    """A final state for a made-up verification (no claims), drawn by `final_state` as an htmx poll meets it.

    Offered to the rest of the app through `app.plumbing.final_state_drawing`, so the go-live checklist looks
    at what customers see without importing the widget. Needs a request context (the caller's: it decides the
    host and the language); `parent_origin` draws it inside an embed on that page, with the event it receives.
    """
    finished = verifications.Finished(
        result_id="checklist-result", status=verifications.FinalStatus(status), claims=None, token=None,
        request_id="req_checklist", deny_reason=deny_reason, decline_reason=None,
    )
    options = options_from({})
    if parent_origin is not None:
        options = replace(options, parent_origin=parent_origin)
    return final_state(options, finished).get_data(as_text=True)
