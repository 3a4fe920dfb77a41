"""What operators watch: Prometheus metrics, served in the text format at `/metrics` (app/health.py).

One `Metrics` per app, built by `init_metrics` and found with `metrics()` (None outside an app, so code
that also runs in a CLI command or a bare test needs no guard of its own). Each app has its own registry,
so the many apps a test process builds never add to one another's counts.

Under Granian every worker is a process of its own, and a scrape reaches one of them: the workers write
their figures to files in one folder per server (`app.plumbing.metrics_workers`), and `/metrics` adds up
every worker's, as prometheus_client's multiprocess mode does for gunicorn.

Names follow Prometheus's conventions (`passid_` first, the unit last, `_total` on counters), and every
label value comes from a short list fixed in the code: a URL rule (`/api/sessions/<session_id>`, never the
path), a method, a status, an outcome word, a job's or a pool's name. So no label ever carries an id, a
token, a reference, a claim or an address, and no client can make a new series by what it sends. The
widget's funnel, when it comes, belongs under `passid_widget_` beside the polls.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, has_app_context
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.config import settings_of
from app.plumbing.metrics_workers import share_between_workers

log = logging.getLogger(__name__)

EXTENSION = "passid_metrics"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes

# Seconds. Requests: the poll's budget is 250 ms at p99 (PRODUCT.md), so the buckets are fine below it.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Calls to PASSID: up to PASSID_TIMEOUT_SECONDS (at most 60).
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# From a webhook's arrival to its handling: a background pass's tick at best, a token verify's grace period
# (30 s) often, retries after failures at worst.
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
JOB_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)

# Methods a label may name; any other (a client may send anything) is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # a request no URL rule matched (404, or refused before routing)


class Metrics:
    """Every metric the app keeps, made in `registry` (None: files only, in multiprocess mode)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        def counter(name: str, documentation: str, labels: tuple[str, ...]) -> Counter:
            return Counter(name, documentation, labels, registry=registry)

        def histogram(name: str, documentation: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, documentation, labels, registry=registry, buckets=buckets)

        # RED per route: rate and errors from the counter, duration from the histogram.
        self.requests = counter(
            "passid_http_requests", "HTTP requests answered, by URL rule, method and status.",
            ("route", "method", "status"))
        self.request_seconds = histogram(
            "passid_http_request_duration_seconds",
            "Time from a request's arrival to its answer's last byte, by URL rule and method.",
            ("route", "method"), REQUEST_BUCKETS)
        # The widget's 2.5 s poll: answered from our records (no PASSID call) or by asking PASSID.
        self.polls = counter(
            "passid_widget_polls",
            "Widget status polls, by who answered (records: ours, no PASSID call; passid: PASSID asked) and the "
            "state drawn (pending, final, error).",
            ("answered_by", "state"))
        self.upstream_calls = counter(
            "passid_upstream_calls", "Calls to PASSID's API, by endpoint (the client's method) and outcome.",
            ("endpoint", "outcome"))
        self.upstream_seconds = histogram(
            "passid_upstream_call_duration_seconds", "Time each call to PASSID's API took, by endpoint.",
            ("endpoint",), UPSTREAM_BUCKETS)
        self.webhook_receipts = counter(
            "passid_webhook_receipts",
            "Calls to the webhook receiver, by result (accepted, duplicate, erased, invalid_signature, "
            "too_large, invalid_event, rate_limited).",
            ("result",))
        self.webhook_lag = histogram(
            "passid_webhook_handling_lag_seconds",
            "Time from a webhook's arrival to the end of its handling, by result (handled, failed, erased).",
            ("result",), LAG_BUCKETS)
        self.notifications = counter(
            "passid_notification_attempts",
            "Attempts to deliver a signed event to the bank's backend, by result (delivered; retrying: it failed "
            "and is tried again later; failed: the last try failed).",
            ("result",))
        self.verifications = counter(
            "passid_verifications_recorded",
            "Verifications recorded, by channel (qr, manual, branch, webhook, cli), final status and verdict.",
            ("channel", "status", "verdict"))
        self.rate_limit_refusals = counter(
            "passid_rate_limit_refusals", "Requests refused by a rate limit (429), by URL rule.", ("route",))
        self.body_slot_refusals = counter(
            "passid_body_slot_refusals",
            "Requests with a body refused 503 unread because their class's body slots were taken, by class.",
            ("pool",))
        # `task`, not `job`: Prometheus gives every target a `job` label of its own.
        self.job_runs = counter(
            "passid_background_job_runs", "Background passes run, by task (the job's name) and result (ok, failed).",
            ("task", "result"))
        self.job_seconds = histogram(
            "passid_background_job_duration_seconds", "Time each background pass took, by task (the job's name).",
            ("task",), JOB_BUCKETS)
        # Summed over live workers: what the database sees from this server.
        self.db_connections = Gauge(
            "passid_db_pool_connections",
            "Database connections of the app's pools, by state (open: held by a pool; in_use: lent to a request "
            "or a pass).", ("state",), registry=registry, multiprocess_mode="livesum")
        self.db_pool_limit = Gauge(
            "passid_db_pool_max_connections", "The most connections the app's pools may open (size and overflow).",
            registry=registry, multiprocess_mode="livesum")

        # The children of the metrics every request and poll touches, by their labels: `labels()` checks and
        # locks each time, three quarters of what counting a request cost (a few µs on every poll).
        self._per_request: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._per_poll: dict[tuple[str, str], Any] = {}

    # --- what the rest of the app calls ---------------------------------------------------------------

    def request_answered(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        key = (route, method, status)
        children = self._per_request.get(key)
        if children is None:
            children = self._per_request.setdefault(key, (
                self.requests.labels(route, method, str(status)), self.request_seconds.labels(route, method)))
        children[0].inc()
        children[1].observe(seconds)

    def upstream_call(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.upstream_calls.labels(endpoint, outcome).inc()
        self.upstream_seconds.labels(endpoint).observe(seconds)

    def poll_answered(self, answered_by: str, state: str) -> None:
        key = (answered_by, state)
        child = self._per_poll.get(key)
        if child is None:
            child = self._per_poll.setdefault(key, self.polls.labels(answered_by, state))
        child.inc()

    def watch_pool(self, engine: Engine) -> None:
        """Count the connections of `engine`'s pool as it opens, lends, takes back and closes them."""
        in_use = self.db_connections.labels("in_use")
        opened = self.db_connections.labels("open")
        pool = engine.pool
        size = getattr(pool, "size", None)
        overflow = getattr(pool, "_max_overflow", 0)
        if callable(size):
            self.db_pool_limit.inc(size() + max(0, overflow))
        event.listen(engine, "connect", lambda *_: opened.inc())
        event.listen(engine, "close", lambda *_: opened.dec())
        event.listen(engine, "close_detached", lambda *_: opened.dec())
        event.listen(engine, "checkout", lambda *_: in_use.inc())
        event.listen(engine, "checkin", lambda *_: in_use.dec())


def init_metrics(app: Flask, engines: Mapping[Any, Engine]) -> Metrics:
    """Build the app's metrics (shared between workers under Granian) and watch its database pools.

    Call before anything opens a connection, so the pool's gauges see every one.
    """
    disable_created_metrics()  # no `_created` series: the same output in one process and in many
    folder = share_between_workers(settings_of(app).instance_dir)
    registry = None if folder else CollectorRegistry(auto_describe=True)
    metrics = Metrics(registry)
    app.extensions[EXTENSION] = metrics
    app.extensions[EXTENSION + ".folder"] = folder
    app.extensions[EXTENSION + ".registry"] = registry
    for engine in engines.values():
        metrics.watch_pool(engine)
    return metrics


def metrics(app: Flask | None = None) -> Metrics | None:
    """The app's metrics; None outside an app context or for an app built without them."""
    if app is None:
        if not has_app_context():
            return None
        app = current_app
    return app.extensions.get(EXTENSION)


def exposition(app: Flask) -> bytes:
    """The text `/metrics` answers: this process's figures, or every worker's added up."""
    folder = app.extensions.get(EXTENSION + ".folder")
    if folder is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(folder))
        return generate_latest(registry)
    return generate_latest(app.extensions[EXTENSION + ".registry"])
