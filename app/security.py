"""Response headers every page gets, compression, and static files.

CSP allows no inline script at all; the one inline `<style>` (the theme
colour) carries a per-response nonce. `frame-ancestors` is the embed
allow-list, so a page that is not on it cannot even frame the widget.
HSTS is sent on HTTPS requests only (Talisman checks), i.e. behind TLS.
"""

from __future__ import annotations

from flask import Flask
from flask_compress import Compress
from flask_talisman import Talisman
from werkzeug.middleware.proxy_fix import ProxyFix
from whitenoise import WhiteNoise

from app.config import PROJECT_ROOT

compress = Compress()
talisman = Talisman()


def init_security(app: Flask) -> None:
    proxies = int(app.config.get("PASSID_TRUSTED_PROXIES", 0))
    if proxies:
        # Believe the proxy about the client address and https, so HSTS and secure cookies follow.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    origins = tuple(app.config["PASSID_ALLOWED_EMBED_ORIGINS"])
    policy = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "form-action": "'self'",
        "base-uri": "'none'",
        "object-src": "'none'",
        "frame-ancestors": " ".join(("'self'", *origins)),
    }
    talisman.init_app(
        app,
        force_https=False,
        strict_transport_security=True,
        strict_transport_security_max_age=31536000,
        # X-Frame-Options cannot list several origins; frame-ancestors above does the job.
        frame_options=None if origins else "SAMEORIGIN",
        content_security_policy=policy,
        content_security_policy_nonce_in=["style-src"],
        referrer_policy="strict-origin-when-cross-origin",
        session_cookie_secure=bool(app.config.get("SESSION_COOKIE_SECURE", False)),
        permissions_policy={"camera": "()", "microphone": "()", "geolocation": "()"},
    )
    app.config.setdefault("COMPRESS_MIMETYPES", [
        "text/html", "text/css", "text/javascript", "application/javascript", "application/json", "image/svg+xml",
    ])
    app.config.setdefault("COMPRESS_ALGORITHM", ["gzip", "br"])
    compress.init_app(app)
    serve_static_files(app)


def serve_static_files(app: Flask) -> None:
    """Static files through WhiteNoise: the gzip and brotli copies made at build time
    (`make assets`) go out as they are, so a first visit costs the compressed bytes."""

    def security_headers(headers, path: str, url: str) -> None:  # type: ignore[no-untyped-def]
        headers["X-Content-Type-Options"] = "nosniff"

    app.wsgi_app = WhiteNoise(  # type: ignore[method-assign]
        app.wsgi_app,
        root=str(PROJECT_ROOT / "static"),
        prefix="static/",
        max_age=3600,
        add_headers_function=security_headers,
    )
