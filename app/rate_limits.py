"""Rate limits per client on what costs PASSID calls: new QR sessions and token checks.

Flask-Limiter keeps the counters in memory by default (one process); with
several processes set `PASSID_RATE_LIMIT_STORAGE` to a shared store such as
`redis://127.0.0.1:6379/0` so the limit holds across them.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def init_rate_limits(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["PASSID_RATE_LIMIT_STORAGE"])
    limiter.init_app(app)


def session_limit() -> str:
    return current_app.config["PASSID_RATE_LIMIT_SESSIONS"]


def token_limit() -> str:
    return current_app.config["PASSID_RATE_LIMIT_TOKENS"]


def sign_in_limit() -> str:
    return current_app.config["PASSID_RATE_LIMIT_SIGN_IN"]


def spinner_step() -> bool:
    """The htmx spinner step calls nothing upstream; its follow-up request is the one counted."""
    return request.headers.get("HX-Request") == "true"
