"""The answer to an HTTP error that no part handled itself: a page in the reader's language, or JSON for machines.

A customer's browser can meet a 404 (a mistyped or outdated link), a 405 (a widget URL opened
with the wrong method, say after a reload), a 413, a 429 or a 500 outside what the widget's own
states cover; Werkzeug's stock pages for these are English. Here every such error becomes
`templates/errors/error.html`, one plain sentence in the request's locale (`app.plumbing.i18n`) with a way
back. Its strings are customer strings (`messages`, complete in all ten locales), so the page is whole
in any locale: on a staff page's own route it speaks a staff language as that page does, and on an
unknown staff URL the browser's.

Machines keep machine answers: under /api/ and /webhooks/ the same errors are PASSID's JSON error
shape, `{"error": {"code", "message"}}`, as their views already answer. The sandbox's API has its own
handlers (app/sandbox/errors.py) and hands everything else on to these.

Status codes and the headers an error carries (`Allow` on a 405, `Retry-After`) are kept; the
page names no exception and shows no trace (Flask, or the sandbox, logs the 500's cause).

A stored value no key of this server decrypts (`app.plumbing.encryption.DataKeyError`: a server left behind in a
key rotation) is a 500 whose fix is a setting: the operator's sentence on a staff page and in the
backend API's JSON, one line in the log, and for a customer the same translated page as any 500.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from app.api.errors import api_error
from app.plumbing.encryption import UNDECRYPTABLE, DataKeyError
from app.plumbing.i18n import html_lang
from app.plumbing.request_guards import BUSY_SENTENCE
from app.rules import customer_wording as messages

log = logging.getLogger(__name__)

# Paths whose callers read JSON, never a page.
MACHINE_PREFIXES = ("/api/", "/webhooks/")
# Staff pages: "Start again" leads to the staff sign-in.
STAFF_PREFIXES = ("/console", "/branch", "/staff")

_JSON_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}
# Headers an error answer must keep; Content-Type and Content-Length are the page's own.
_KEPT_HEADERS = frozenset({"allow", "retry-after", "www-authenticate"})


def init_error_pages(app: Flask) -> None:
    """Register before the sandbox mounts: its handlers pass non-API errors on to this one."""
    app.register_error_handler(HTTPException, error_answer)
    app.register_error_handler(DataKeyError, undecryptable_answer)


def undecryptable_answer(_error: DataKeyError) -> Response:
    """A row no key of this server decrypts, met on its own page or API answer (a list marks it instead).

    One line in the log, not a traceback: the fix is a setting, not a bug. The operator's sentence goes
    only where the bank's own people or servers read it (staff pages, the backend API); PASSID's webhook
    calls get the plain JSON 500, and a customer the translated page (`_error_page`).
    """
    log.error("%s %s: a stored value cannot be decrypted with any key of this server (PASSID_DATA_KEY, "
              "PASSID_DATA_KEYS_DECRYPT_ONLY); restore the key it was encrypted with", request.method, request.path)
    if request.path.startswith("/api/"):
        return api_error(500, "DATA_KEY", UNDECRYPTABLE)
    if request.path.startswith(MACHINE_PREFIXES):
        return api_error(500, "INTERNAL_ERROR", "Something went wrong on our side.")
    if request.path.startswith(STAFF_PREFIXES):  # the operator's sentence, as a page like every other
        return _error_page(500, sentence=UNDECRYPTABLE)
    return _error_page(500)


def error_answer(error: HTTPException) -> Response | HTTPException:
    """The page or JSON document for `error`, with its status and its Allow / Retry-After headers."""
    if error.response is not None or error.code is None:  # an answer someone already made: as it is
        return error
    status = error.code
    answer = _json_error(status, error) if request.path.startswith(MACHINE_PREFIXES) else _error_page(status)
    for name, value in error.get_headers():
        if name.lower() in _KEPT_HEADERS:
            answer.headers[name] = value
    return answer


def _json_error(status: int, error: HTTPException) -> Response:
    code = _JSON_CODES.get(status, "ERROR" if status < 500 else "INTERNAL_ERROR")
    message = "Something went wrong on our side." if status >= 500 else (error.description or error.name)
    return api_error(status, code, message)  # the shape integrators already read, never cached


def _error_page(status: int, *, sentence: str | None = None) -> Response:
    title, words = page_words(status)
    page = render_template("errors/error.html", title=title, sentence=sentence or words, back_url=_way_back())
    response = Response(page, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def busy_answer(app: Flask, environ: dict[str, Any]) -> tuple[str, bytes]:
    """The 503 a request meets when its class's body slots are full (app/plumbing/request_guards.py), worded
    before its body is read: from the URL and Accept-Language only (the widget's forms name the embed's
    `locale` in their URLs for this).

    A customer's or a staff member's browser gets a page in its language with "Try again" back to the page it
    was on; an htmx post from the widget gets that same view alone, which the widget swaps in as its error
    state. Machines keep the sentence as plain text, as the API document says. Content type and bytes; the
    English sentence if anything here fails, since a refusal must never fail.
    """
    try:
        with app.request_context(environ):
            title, sentence = page_words(503)
            if request.path.startswith((*MACHINE_PREFIXES, "/sandbox/api/")):
                return "text/plain; charset=utf-8", (sentence + "\n").encode()
            back = _same_origin(request.headers.get("HX-Current-URL") or request.referrer) or _way_back()
            words = {"title": title, "sentence": sentence, "back_url": back, "back_label": _("Try again")}
            if request.headers.get("HX-Request") == "true":
                return "text/html; charset=utf-8", render_template("errors/_view.html", heading="h2", **words).encode()
            return "text/html; charset=utf-8", render_template("errors/error.html", **words).encode()
    except Exception:
        log.warning("the busy answer could not be drawn; sending the plain sentence", exc_info=True)
        return "text/plain; charset=utf-8", BUSY_SENTENCE


def _same_origin(url: str | None) -> str | None:
    """`url` when it is a page of this very origin (the page the request came from), else None."""
    return url if url and url.startswith(request.host_url) else None


def page_words(status: int) -> tuple[str, str]:
    """The heading and the sentence for `status`: what happened, then what to do."""
    if status == 404:
        return _("Page not found"), _("We couldn't find this page. Check the address, or start again.")
    title = _("Something went wrong")
    if status == 405:
        return title, _("This page can't be opened this way. Please start again.")
    if status == 413:
        return title, _("What you sent is too large. Please start again.")
    if status == 429:
        return title, messages.rate_limited_message()
    if status == 500:
        return title, _("Something went wrong on our side. Please try again in a moment.")
    if status > 500:
        return title, _("The service is busy. Please try again in a moment.")
    return title, _("We couldn't handle this request. Please start again.")


def _way_back() -> str | None:
    """Where "Start again" leads: the staff sign-in (which sends a signed-in account home), the sandbox
    phone's first page, or the widget in the same language."""
    if request.path.startswith(STAFF_PREFIXES):
        return url_for("staff.sign_in")
    if request.path.startswith("/sandbox/") and "sandbox" in current_app.blueprints:
        # Only when mounted: in a live app a /sandbox URL's 404 is any other URL's, hinting at nothing.
        return url_for("sandbox.phone_home")
    return url_for("widget.page", locale=html_lang())
