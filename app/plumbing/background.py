"""Background work on APScheduler, with the durable state in our own tables.

Each job is a short "do what is due" pass over rows that carry their own
next-attempt time and lease, so a restart loses nothing (the rows are still
there) and two processes never do the same attempt (the lease is claimed with
one conditional UPDATE). APScheduler only decides *when* a pass runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from flask import Flask

from app.config import settings_of
from app.plumbing.metrics import metrics

log = logging.getLogger(__name__)

Job = Callable[[], object]
_start_lock = threading.Lock()


def register_job(app: Flask, name: str, job: Job, *, every_seconds: float | None = None) -> None:
    """Declare a periodic pass; it runs only once `start_background_jobs` is called.

    Every JOB_INTERVAL_SECONDS unless `every_seconds` says otherwise (the daily retention purge).
    """
    app.extensions.setdefault("passid_jobs", {})[name] = (job, every_seconds)


def start_background_jobs(app: Flask) -> BackgroundScheduler | None:
    """Start the passes in this process (serving processes only, never in CLI commands)."""
    with _start_lock:
        if not settings_of(app).background_jobs or "passid_scheduler" in app.extensions:
            return app.extensions.get("passid_scheduler")
        return _start(app)


def _start(app: Flask) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
    interval = settings_of(app).job_interval_seconds
    for name, (job, every_seconds) in app.extensions.get("passid_jobs", {}).items():
        scheduler.add_job(
            _in_app_context(app, name, job),
            "interval",
            seconds=every_seconds or interval,
            id=name,
            name=name,  # what APScheduler's own log lines call it
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(),
        )
    scheduler.start()
    app.extensions["passid_scheduler"] = scheduler
    return scheduler


def wake_job(app: Flask, name: str) -> None:
    """Run a pass now rather than at its next tick (new work just arrived).

    A stopped scheduler is left alone: `shutdown(wait=True)` holds the scheduler's lock while a pass
    finishes, and that pass may be delivering a webhook to this very process, whose receiver wakes a
    job; waiting for the lock there would hold both until the delivery's timeout.
    """
    scheduler: BackgroundScheduler | None = app.extensions.get("passid_scheduler")
    if scheduler is None or scheduler.state == STATE_STOPPED:
        return
    try:
        scheduler.modify_job(name, next_run_time=datetime.now(scheduler.timezone))
    except Exception:  # the job may be mid-run; its next tick picks the work up
        log.debug("could not wake job %s", name, exc_info=True)


def _in_app_context(app: Flask, name: str, job: Job) -> Job:
    """The pass as the scheduler runs it: in the app's context, a failure logged (not raised into the
    scheduler), and each run counted and timed in the metrics under the job's name."""
    watched = metrics(app)

    def run() -> None:
        started = time.perf_counter()
        result = "ok"
        with app.app_context():
            try:
                job()
            except Exception:
                result = "failed"
                log.exception("background job failed; it runs again at its next tick")
        if watched is not None:
            watched.job_runs.labels(name, result).inc()
            watched.job_seconds.labels(name).observe(time.perf_counter() - started)

    return run
