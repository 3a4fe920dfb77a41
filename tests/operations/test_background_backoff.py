"""An idle process backs its background passes off, and new work still runs at once (app/plumbing/background.py).

The back-off is a pure rule over times the test gives; the wake runs on a real APScheduler in an in-process
app, with an interval long enough that no tick of its own comes during the test.
"""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask

from app.plumbing.background import (
    IDLE_BACKOFF,
    WAKER,
    IdleBackoff,
    register_job,
    start_background_jobs,
    wake_job,
)
from tests.support.waiting import PATIENCE, wait_until

pytestmark = pytest.mark.databases("sqlite")

NEVER = float("-inf")


def ticks_run(backoff: IdleBackoff, results: list[object], every: float = 1.0) -> list[float]:
    """Tick every `every` seconds; each pass that runs returns the next of `results`. The times that ran."""
    ran, now, pending = [], 0.0, list(results)
    while pending:
        if backoff.due(now, NEVER):
            backoff.ran(now, pending.pop(0))
            ran.append(now)
        now += every
    return ran


def test_idle_passes_run_ever_further_apart_up_to_the_ceiling() -> None:
    ran = ticks_run(IdleBackoff(1.0), [0] * 6)
    gaps = [later - earlier for earlier, later in zip(ran, ran[1:], strict=False)]
    assert gaps == [min(2.0 ** n, IDLE_BACKOFF) for n in range(1, 6)]


def test_a_pass_that_did_something_or_does_not_say_keeps_the_interval() -> None:
    assert ticks_run(IdleBackoff(1.0), [0, 0, 3, 0]) == [0.0, 2.0, 6.0, 7.0]
    assert ticks_run(IdleBackoff(1.0), [None, None, False, None]) == [0.0, 1.0, 2.0, 3.0]


def test_a_wake_runs_the_next_tick_whatever_the_back_off() -> None:
    backoff = IdleBackoff(1.0)
    for now in (0.0, 2.0, 6.0):  # three idle passes: the next would wait four seconds
        backoff.ran(now, 0)
    assert not backoff.due(7.0, NEVER)
    assert backoff.due(7.0, woken_at=6.5)


class Probe:
    """A job whose passes find nothing and record that they ran."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self) -> int:
        self.runs += 1
        return 0


def test_new_work_wakes_an_idle_job_at_once(app: Flask) -> None:
    probe = Probe()
    register_job(app, "backoff-probe", probe, every_seconds=30)
    assert start_background_jobs(app) is not None
    wait_until(lambda: probe.runs == 1, "the first pass, at start")
    wake_job(app, "backoff-probe")  # what storing new work in this process does
    wait_until(lambda: probe.runs >= 2, "the woken pass, long before the 30 s tick or any back-off")


def test_a_wake_never_waits_for_the_schedulers_lock_and_the_waker_ends_with_the_scheduler(app: Flask) -> None:
    """`shutdown(wait=True)` holds the scheduler's lock while it waits for the passes still running. A pass
    that wakes a job then (a notification it queued), or a request a pass waits for (a webhook the sandbox
    delivers to this very process), must not wait for that lock: the stop would hang with it."""
    started, go_on, woke = threading.Event(), threading.Event(), threading.Event()

    def waking_pass() -> None:
        started.set()
        go_on.wait(PATIENCE)
        wake_job(app, "backoff-probe")
        woke.set()

    probe = Probe()
    register_job(app, "waking", waking_pass, every_seconds=30)
    register_job(app, "backoff-probe", probe, every_seconds=30)
    scheduler = start_background_jobs(app)
    assert scheduler is not None and started.wait(PATIENCE)
    with scheduler._jobstores_lock:  # held as shutdown(wait=True) holds it while the pass runs
        go_on.set()
        woke_without_waiting = woke.wait(5)
    assert woke_without_waiting, "the pass waited for the scheduler's lock to wake a job"
    wait_until(lambda: probe.runs >= 2, "the woken pass, once the lock was free")
    waker = app.extensions[WAKER]
    scheduler.shutdown(wait=True)
    waker._thread.join(PATIENCE)
    assert not waker._thread.is_alive()


def test_a_wake_while_the_pass_runs_runs_it_again_at_once(app: Flask) -> None:
    """Work stored while its pass runs (after the pass's query, say) is not left for the next tick: the
    scheduler drops a wake that finds the job running, so the pass itself runs again."""
    first_running, go_on = threading.Event(), threading.Event()
    runs: list[float] = []

    def slow_pass() -> int:
        runs.append(time.monotonic())
        if len(runs) == 1:
            first_running.set()
            go_on.wait(PATIENCE)
        return 0

    register_job(app, "slow", slow_pass, every_seconds=30)
    scheduler = start_background_jobs(app)
    assert scheduler is not None and first_running.wait(PATIENCE)
    next_tick = scheduler.get_job("slow").next_run_time
    wake_job(app, "slow")  # what storing new work in this process does, while the pass runs
    wait_until(lambda: scheduler.get_job("slow").next_run_time != next_tick,
               "the scheduler's answer to the wake: the job is running, so no run now, the next tick in 30 s")
    go_on.set()
    wait_until(lambda: len(runs) >= 2, "the pass again, long before the 30 s tick", timeout=10)
