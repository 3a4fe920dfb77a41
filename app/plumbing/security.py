"""Response headers every page gets, compression, static files, and which hosts we answer for.

CSP allows no inline script at all; the one inline `<style>` (the theme
colour) carries a per-response nonce. Framing: only the widget's pages (and
the error pages its URLs answer) may be framed, by our own pages (branch mode's QR flow) and by the embed allow-list
(`frame-ancestors`); every other page (staff sign-in, console, branch, the
sandbox) says `frame-ancestors 'none'` and `X-Frame-Options: DENY`, so a partner
site cannot frame a staff page and trick a click. HSTS is sent on HTTPS
requests only (Talisman checks), i.e. behind TLS. A request naming a host we
do not serve (Flask's TRUSTED_HOSTS) gets a short 400 page.
"""

from __future__ import annotations

import logging
from typing import Any
from wsgiref.headers import Headers

from flask import Flask, Response, request
from flask_babel import gettext as _
from flask_compress import Compress
from flask_talisman import Talisman
from markupsafe import escape
from werkzeug.exceptions import SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import PROJECT_ROOT, settings_of
from app.plumbing.i18n import html_lang, text_direction
from app.plumbing.static_assets import IMMUTABLE, FreshCopiesOnly, fingerprinted_names, install_fingerprints

compress = Compress()
log = logging.getLogger(__name__)

# Blueprints whose pages a partner site may frame: the widget (`/verify…`), nothing else.
FRAMEABLE_BLUEPRINTS = ("widget",)


class FramingTalisman(Talisman):
    """Talisman with one framing policy for the widget's pages and another for every other page.

    Talisman's per-view options are attributes of the view functions, which every app in
    a process shares, while the partner origins are per app; so the choice is made here,
    per request, by blueprint. `_get_local_options` is Talisman's (1.1.0, pinned) own hook
    for per-view options; tests/widget/test_security_headers.py fails if it changes.
    """

    def __init__(self, app: Flask, *, widget_options: dict[str, Any], **options: Any) -> None:
        self.widget_options = widget_options
        super().__init__(app, **options)

    def _get_local_options(self) -> dict[str, Any]:
        options = dict(super()._get_local_options())
        if request.blueprint in FRAMEABLE_BLUEPRINTS or _unrouted_widget_url():
            options.update(self.widget_options)
        return options

    def _set_content_security_policy_headers(self, headers: Any, options: dict[str, Any]) -> None:
        """A response that carries its own, stricter policy keeps it: the institution's logo (an SVG may hold
        scripts) is sandboxed whatever the page policy says (app/widget/branding.py)."""
        own = headers.get("Content-Security-Policy")
        super()._set_content_security_policy_headers(headers, options)
        if own:
            headers["Content-Security-Policy"] = own


def _unrouted_widget_url() -> bool:
    """A /verify URL that matched no route (a 404, or a 405 such as GET /verify/qr): no blueprint, but its
    error page (app/error_pages.py) shows in the partner's iframe like the widget's own pages."""
    return request.blueprint is None and (request.path == "/verify" or request.path.startswith("/verify/"))


def init_security(app: Flask) -> None:
    settings = settings_of(app)
    origins = settings.allowed_embed_origins
    app.register_error_handler(SecurityError, untrusted_host)
    policy = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "form-action": "'self'",
        "base-uri": "'none'",
        "object-src": "'none'",
        "frame-ancestors": "'none'",
    }
    # A widget form may lead to the bank's page: "Cancel and return" answers its post with a redirect to the
    # session's returnUrl, which is always on an allowed origin (app/rules/return_urls.py), and browsers hold
    # a form's redirects to form-action too.
    widget_policy = {**policy, "frame-ancestors": " ".join(("'self'", *origins)),
                     "form-action": " ".join(("'self'", *origins))}
    app.extensions["talisman"] = FramingTalisman(
        app,
        widget_options={
            "content_security_policy": widget_policy,
            # X-Frame-Options cannot list several origins; frame-ancestors above does the job.
            "frame_options": None if origins else "SAMEORIGIN",
        },
        force_https=False,
        strict_transport_security=True,
        strict_transport_security_max_age=31536000,
        frame_options="DENY",
        content_security_policy=policy,
        content_security_policy_nonce_in=["style-src"],
        referrer_policy="strict-origin-when-cross-origin",
        session_cookie_secure=settings.session_cookie_secure,
        permissions_policy={"camera": "()", "microphone": "()", "geolocation": "()"},
    )
    app.config.setdefault("COMPRESS_MIMETYPES", [
        "text/html", "text/css", "text/javascript", "application/javascript", "application/json", "image/svg+xml",
    ])
    app.config.setdefault("COMPRESS_ALGORITHM", ["gzip", "br"])
    compress.init_app(app)
    serve_static_files(app)


def init_proxy_fix(app: Flask) -> None:
    """Believe the proxy (PASSID_TRUSTED_PROXIES) about the client address, host and https, so HSTS and secure
    cookies follow. Installed around every layer that answers a request itself (static files, the widget's
    pending polls), so each of those sees, and the access log writes, the client's address, not the proxy's."""
    proxies = settings_of(app).trusted_proxies
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]


def untrusted_host(error: SecurityError) -> Response:
    """A Host (or trusted X-Forwarded-Host) not in TRUSTED_HOSTS: a short page in the visitor's language, like
    every error page, that never echoes the host. It links nowhere and loads nothing: no URL of ours can be
    built for a host we do not serve. The operator's fix goes to the log, once per such request."""
    log.warning("a request named a host this app does not serve: it answers only the names in "
                "PASSID_PUBLIC_URL or PASSID_TRUSTED_HOSTS")
    title = escape(_("Something went wrong"))
    sentence = escape(_("We couldn't handle this request. Please start again."))
    page = (f'<!doctype html>\n<html lang="{html_lang()}" dir="{text_direction()}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>'
            f"<body><main><h1>{title}</h1><p>{sentence}</p></main></body></html>\n")
    return Response(page, status=400, mimetype="text/html")


def serve_static_files(app: Flask) -> None:
    """Static files through WhiteNoise: the gzip and brotli copies made at build time
    (`make assets`) go out as they are, so a first visit costs the compressed bytes (those that still
    hold the file's current bytes: app/plumbing/static_assets.py).

    Templates link the fingerprinted names (app/plumbing/static_assets.py), kept for a year; the plain
    names answer too, for an hour."""
    root = PROJECT_ROOT / "static"
    names = fingerprinted_names(root)
    install_fingerprints(app, names)
    hashed_urls = {f"/static/{hashed}" for hashed in names.values()}

    def security_headers(headers: Headers, path: str, url: str) -> None:
        headers["X-Content-Type-Options"] = "nosniff"
        if url in hashed_urls:
            headers["Cache-Control"] = IMMUTABLE

    static_files = FreshCopiesOnly(
        app.wsgi_app,
        root=str(root),
        prefix="static/",
        max_age=3600,
        # Only our own pages load these (a partner's page loads /embed.js, which says so itself): no CORS
        # header, which WhiteNoise sends by default, on every file of every first visit.
        allow_all_origins=False,
        add_headers_function=security_headers,
    )
    for plain, hashed in names.items():
        static_files.add_file_to_dictionary(f"/static/{hashed}", str(root / plain))
    app.wsgi_app = static_files  # type: ignore[method-assign]
