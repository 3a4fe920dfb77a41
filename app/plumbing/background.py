"""Background work on APScheduler, with the durable state in our own tables.

Each job is a short "do what is due" pass over rows that carry their own
next-attempt time and lease, so a restart loses nothing (the rows are still
there) and two processes never do the same attempt (the lease is claimed with
one conditional UPDATE). APScheduler only decides *when* a pass runs.

An idle process backs off: a pass that reports it found nothing to do (it returns 0) puts its next run
twice as far off, up to IDLE_BACKOFF times the job's interval; a pass that did something, or a wake
(`wake_job`, called where new work is stored in this process), brings it back to its interval. Every
serving process runs every pass, and each idle pass is a query: with several workers, hosts and a quiet
night, those queries were most of what an idle server did. Work stored in this process is woken at once
either way; what the back-off can delay is work that only falls due (a retry's time, a lapsed lease, a
row another process stored), by at most the back-off's ceiling.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from flask import Flask

from app.config import settings_of
from app.plumbing.metrics import metrics

log = logging.getLogger(__name__)

Job = Callable[[], object]
_start_lock = threading.Lock()
# How far an idle pass backs off: at most this many times its interval (4 s at the default 1 s).
IDLE_BACKOFF = 4
# How many times more a pass runs at once when woken while it ran (then its next tick takes over).
RERUNS_WHEN_WOKEN = 2
WOKEN = "passid_jobs_woken"  # app.extensions: job name -> when `wake_job` last woke it (monotonic)
WAKER = "passid_job_waker"  # app.extensions: the scheduler's JobWaker


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
            _in_app_context(app, name, job, every_seconds or interval),
            "interval",
            seconds=every_seconds or interval,
            id=name,
            name=name,  # what APScheduler's own log lines call it
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(),
        )
    scheduler.start()
    app.extensions[WAKER] = JobWaker(scheduler)
    app.extensions["passid_scheduler"] = scheduler
    return scheduler


def wake_job(app: Flask, name: str) -> None:
    """Run a pass now rather than at its next tick (new work just arrived).

    Never blocks: the job is moved by the scheduler's `JobWaker` thread, not by the caller.
    """
    app.extensions.setdefault(WOKEN, {})[name] = time.monotonic()  # a pass running now must not put it off
    waker: JobWaker | None = app.extensions.get(WAKER)
    if waker is not None:
        waker.wake(name)


class JobWaker:
    """Moves woken jobs' next run to now, from a thread of its own.

    Why not in the caller's thread: moving a job takes the scheduler's lock, and `shutdown(wait=True)` holds
    that lock while it waits for the passes still running. A pass that wakes a job (a notification it just
    queued), or a request that a pass waits for (a webhook the sandbox delivers to this very process, whose
    receiver wakes the handling pass), would then wait for the lock while shutdown waits for it: the stop
    would hang until the delivery's timeout, or for good. Here only this thread waits, and it ends with the
    scheduler.
    """

    def __init__(self, scheduler: BackgroundScheduler) -> None:
        self._scheduler = scheduler
        self._names: queue.SimpleQueue[str | None] = queue.SimpleQueue()  # None: stop
        self._stopped = False
        scheduler.add_listener(lambda _event: self._stop(), EVENT_SCHEDULER_SHUTDOWN)
        self._thread = threading.Thread(target=self._run, name="passid job waker", daemon=True)
        self._thread.start()

    def wake(self, name: str) -> None:
        if not self._stopped:  # once stopped nobody reads the queue: it must not grow
            self._names.put(name)

    def _stop(self) -> None:
        self._stopped = True
        self._names.put(None)

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            if self._scheduler.state == STATE_STOPPED:
                return
            try:
                self._scheduler.modify_job(name, next_run_time=datetime.now(self._scheduler.timezone))
            except Exception:  # e.g. the scheduler stopped meanwhile; the job's next tick picks the work up
                log.debug("could not wake job %s", name, exc_info=True)


def _in_app_context(app: Flask, name: str, job: Job, interval: float) -> Job:
    """The pass as the scheduler runs it: in the app's context, a failure logged (not raised into the
    scheduler), each run counted and timed in the metrics under the job's name; while passes find nothing,
    ticks are skipped (`IdleBackoff`) unless the job was woken since its last pass.

    A wake while the pass runs makes it run again at once (up to RERUNS_WHEN_WOKEN times a tick): the new
    work may have been stored after its query, and the scheduler drops a wake that finds the job running
    (one instance at a time), so the work would otherwise wait for the next tick.

    The back-off skips ticks rather than moving the job's next run: a pass must not take the scheduler's
    lock, which `shutdown(wait=True)` holds while it waits for that very pass to end."""
    watched = metrics(app)
    backoff = IdleBackoff(interval)

    def woken_at() -> float:
        return float(app.extensions.get(WOKEN, {}).get(name, float("-inf")))

    def run_once() -> object:
        started = time.perf_counter()
        result = "ok"
        done: object = None
        with app.app_context():
            try:
                done = job()
            except Exception:
                result = "failed"
                log.exception("background job failed; it runs again at its next tick")
        if watched is not None:
            watched.job_runs.labels(name, result).inc()
            watched.job_seconds.labels(name).observe(time.perf_counter() - started)
        return done

    def run() -> None:
        began = time.monotonic()
        if not backoff.due(began, woken_at()):
            return
        for _ in range(1 + RERUNS_WHEN_WOKEN):
            done = run_once()
            woken_meanwhile = woken_at() >= began
            backoff.ran(began, None if woken_meanwhile else done)  # woken: no back-off either
            if not woken_meanwhile:
                return
            began = time.monotonic()

    return run


class IdleBackoff:
    """Whether a tick runs its pass: always after a pass that did something (or said nothing either way,
    returning None) or after a wake; after passes in a row that returned 0, only once twice as long as the
    last wait has passed, up to IDLE_BACKOFF times the interval."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.wait = interval
        self._last_pass = float("-inf")

    def due(self, now: float, woken_at: float) -> bool:
        # A tick comes a hair early or late: a tenth of the interval's slack keeps the waits whole ticks.
        return woken_at >= self._last_pass or now - self._last_pass >= self.wait - self.interval / 10

    def ran(self, began: float, done: object) -> None:
        self._last_pass = began
        idle = done == 0 and not isinstance(done, bool | type(None))
        self.wait = min(self.wait * 2, self.interval * IDLE_BACKOFF) if idle else self.interval
