"""Rate limits per client on what costs PASSID calls: new QR sessions and token checks.

The counters live in the app's own database by default (`PASSID_RATE_LIMIT_STORAGE=database`,
see app/plumbing/rate_limit_storage.py), so the limits hold across every worker process and app server
with nothing extra to run. `memory://` counts per process; `redis://…` is a shared store too.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.config import current_settings, settings_of
from app.plumbing import rate_limit_storage  # noqa: F401  (registers the `database://` storage scheme with `limits`)
from app.plumbing.htmx import htmx

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def init_rate_limits(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings_of(app).rate_limit_storage)
    limiter.init_app(app)


def session_limit() -> str:
    return current_settings().rate_limit_sessions


def token_limit() -> str:
    return current_settings().rate_limit_tokens


def sign_in_limit() -> str:
    return current_settings().rate_limit_sign_in


def second_factor_limit() -> str:
    return current_settings().rate_limit_second_factor


def spinner_step() -> bool:
    """The htmx spinner step calls nothing upstream; its follow-up request is the one counted.

    Without JavaScript there is no follow-up: the same post does the work, and is counted once.
    """
    return bool(htmx)
