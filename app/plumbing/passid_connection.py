"""How the app reaches PASSID: base URL and key, live or embedded sandbox.

With the embedded sandbox and no key configured, the key is the demo
institution's, onboarded on first use. The factory supplies that lookup so
this module never imports the sandbox.

Every client made here is watched through the hooks the PASSID client offers (it knows nothing of
the app): each call is counted and timed in the metrics (`passid_upstream_calls_total`), the last time
PASSID answered is kept for `/readyz` (`UpstreamWatch`), and each call carries the id of the request
that made it (`X-Request-Id`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app

from app.config import settings_of
from app.passid import PassidClient
from app.plumbing import request_ids
from app.plumbing.metrics import Metrics, metrics

# Outcomes that show PASSID up and answering this app: a success, or an error it chose to answer with
# (a 404 for an unknown request, a 429). A 401 is not one: with a refused key nothing works.
ANSWERED = frozenset({"ok", "client_error", "rate_limited"})


@dataclass(frozen=True)
class PassidConnection:
    base_url: str
    api_key: str
    institution_id: str | None
    webhook_secrets: tuple[str, ...]
    timeout_seconds: float
    sandbox: bool


DemoLookup = Callable[[], PassidConnection]


def set_demo_lookup(app: Flask, lookup: DemoLookup) -> None:
    app.extensions["passid_demo_lookup"] = lookup


def passid_connection(app: Flask | None = None) -> PassidConnection:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cached = app.extensions.get("passid_connection")
    if cached is not None:
        return cached
    settings = settings_of(app)
    if settings.passid_api_key:
        connection = PassidConnection(
            base_url=settings.passid_url,
            api_key=settings.passid_api_key,
            institution_id=None,
            webhook_secrets=settings.passid_webhook_secrets,
            timeout_seconds=settings.passid_timeout_seconds,
            sandbox=settings.passid_api_key.startswith("sk_sandbox_"),
        )
    elif "passid_demo_lookup" in app.extensions:
        connection = app.extensions["passid_demo_lookup"]()
    else:  # load_settings forbids this; say so plainly should a caller build the config by hand
        raise RuntimeError("PASSID_API_KEY is not set and there is no embedded sandbox to lend a demo key")
    app.extensions["passid_connection"] = connection
    return connection


class UpstreamWatch:
    """One process's view of PASSID's calls: counted in the metrics, and when PASSID last answered."""

    def __init__(self, watched_metrics: Metrics | None) -> None:
        self.metrics = watched_metrics
        self.last_answered: float | None = None  # time.monotonic() of the last answer, in this process

    def observe(self, endpoint: str, outcome: str, seconds: float) -> None:
        if outcome in ANSWERED:
            self.last_answered = time.monotonic()
        if self.metrics is not None:
            self.metrics.upstream_call(endpoint, outcome, seconds)

    def answered_within(self, seconds: float) -> bool:
        last = self.last_answered
        return last is not None and time.monotonic() - last <= seconds


def upstream_watch(app: Flask) -> UpstreamWatch:
    watch = app.extensions.get("passid_upstream_watch")
    if watch is None:
        watch = app.extensions.setdefault("passid_upstream_watch", UpstreamWatch(metrics(app)))
    return watch


def watched_client(app: Flask, connection: PassidConnection, *, timeout: tuple[float, float]) -> PassidClient:
    """A client of `connection` under the process's cap on calls in flight, watched as the module says."""
    return PassidClient(connection.base_url, connection.api_key, timeout=timeout, in_flight=_in_flight(app),
                        observe=upstream_watch(app).observe, extra_headers=request_ids.outbound_headers)


_clients = threading.local()


def _in_flight(app: Flask) -> threading.Semaphore:
    """The process's cap on calls waiting on PASSID, shared by every thread's client."""
    cap = app.extensions.get("passid_in_flight")
    if cap is None:
        cap = app.extensions.setdefault(
            "passid_in_flight", threading.BoundedSemaphore(settings_of(app).max_calls_in_flight)
        )
    return cap


def passid_client() -> PassidClient:
    """A client for this thread (a requests.Session is not shared across threads).

    All of them share one cap on calls in flight, so a PASSID that stops
    answering holds a few threads until their timeout, not every thread of
    the process: webhooks, pages and polls answered from records go on.
    """
    connection = passid_connection()
    client: PassidClient | None = getattr(_clients, "client", None)
    if client is None or getattr(_clients, "connection", None) is not connection:
        timeout = connection.timeout_seconds
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        client = watched_client(app, connection, timeout=(min(3.05, timeout), timeout))
        _clients.client, _clients.connection = client, connection
    return client
