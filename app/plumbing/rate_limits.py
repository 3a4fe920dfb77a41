"""Rate limits per client on what costs PASSID calls: new QR sessions and token checks.

The counters live in the app's own database by default (`PASSID_RATE_LIMIT_STORAGE=database`,
see app/plumbing/rate_limit_storage.py), so the limits hold across every worker process and app server
with nothing extra to run. `memory://` counts per process; `redis://…` is a shared store too. While a
shared store does not answer, each process counts in memory.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from app.config import current_settings, settings_of
from app.plumbing import rate_limit_storage  # noqa: F401  (registers the `database://` storage scheme with `limits`)
from app.plumbing.htmx import htmx
from app.plumbing.metrics import UNMATCHED, metrics


def count_refusal(_limit: RequestLimit) -> Response | None:
    """Every refusal (429) counted under the URL rule it refused, never the client's address (the limit's key)."""
    watched = metrics()
    if watched is not None:
        rule = request.url_rule
        watched.rate_limit_refusals.labels(rule.rule if rule is not None else UNMATCHED).inc()
    return None  # the refusal itself is the limiter's (and each part's 429 handler's)


limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True, on_breach=count_refusal)


# How long a request waits for Redis to connect or answer before its process counts in memory (below).
REDIS_TIMEOUT_SECONDS = 1.0


def init_rate_limits(app: Flask) -> None:
    storage = settings_of(app).rate_limit_storage
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage)
    if storage.startswith(("redis://", "rediss://", "redis+unix://")):
        # Every outbound call has a timeout: a Redis that stops answering would otherwise hold each thread that
        # asks it, for ever. The URI's own `?socket_timeout=…` wins over these (redis-py reads it last).
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {
            "socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS})
    # A shared store that stops answering (Redis down) must not turn every QR start, token check and sign-in
    # into a 500: each process counts in its own memory until the store answers again (Flask-Limiter tries it
    # now and then, and logs both moves), so the limits hold per process meanwhile.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
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
