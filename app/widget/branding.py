"""The institution's logo (`GET /verify/logo`) and PASSID's favicon (`GET /favicon.ico`).

The logo comes from PASSID_LOGO_PATH (checked at start-up: an image of at most 100 KB) and is served by
this app, never from a third-party URL, so the widget's CSP keeps `img-src 'self'`. Its URL carries a
hash of its bytes (`?v=`), so it is cached for a year and a new logo shows at the next deploy. An SVG
logo is a document that could hold scripts: its response is sandboxed by its own CSP and never sniffed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import Response, abort, current_app, redirect, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.config import LOGO_SUFFIXES, current_settings
from app.plumbing.static_assets import IMMUTABLE, asset_url
from app.widget.routes import bp

# An image, loaded by <img> and never framed: no page may frame it (the page's own frame-ancestors is replaced).
LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"
_EXTENSION = "passid_logo"


@dataclass(frozen=True)
class Logo:
    body: bytes
    mimetype: str
    version: str  # the first hex digits of the bytes' SHA-256


def configured_logo() -> Logo | None:
    """The configured logo, read once per app (the file was checked when the app started)."""
    extensions = current_app.extensions
    if _EXTENSION not in extensions:
        path = current_settings().logo_path
        logo = None
        if path is not None:
            body = path.read_bytes()
            logo = Logo(body, LOGO_SUFFIXES[path.suffix.lower()], hashlib.sha256(body).hexdigest()[:12])
        extensions[_EXTENSION] = logo
    return extensions[_EXTENSION]


@bp.app_template_global()
def logo_url() -> str | None:
    """The logo's URL with its content hash, or None when no logo is configured."""
    logo = configured_logo()
    return url_for("widget.logo", v=logo.version) if logo else None


@bp.get("/verify/logo")
def logo() -> Response:
    found = configured_logo()
    if found is None:
        abort(404)
    response = Response(found.body, content_type=found.mimetype)  # as is: no charset on an image
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = LOGO_POLICY
    return response


@bp.get("/favicon.ico")
def favicon() -> BaseResponse:
    """Browsers ask for /favicon.ico when a page names no icon (a PDF, an error page): send them to ours."""
    response = redirect(asset_url("favicon.svg"), 302)
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response
