"""Rate limits inside the sandbox: onboarding, per client address.

Why: onboarding needs no credentials, so without a limit anyone can fill the sandbox's tables with
institutions. Why a Limiter of its own: the sandbox imports nothing from the rest of the app (it
also runs on its own). It counts in whatever storage the app configured for Flask-Limiter
(`RATELIMIT_STORAGE_URI`, shared by every worker process when the app sets one; memory when the
sandbox runs alone), under its own key prefix so its counters never mix with the app's.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.config import current_settings

sandbox_limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True, key_prefix="sandbox")


def init_limits(app: Flask) -> None:
    """Attach the sandbox's limiter; it answers 429 with Retry-After through the sandbox's error handler."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")  # the app sets its own first; alone: memory
    sandbox_limiter.init_app(app)


def onboard_limit() -> str:
    """PASSID_SANDBOX_RATE_LIMIT_ONBOARD, read per request so each app keeps its own setting."""
    return current_settings().sandbox_rate_limit_onboard
