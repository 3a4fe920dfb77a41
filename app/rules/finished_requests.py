"""Which QR requests finished lately, known in this process without asking the database on every poll.

Why: every waiting widget polls every 2.5 s, and between upstream checks (see `app.widget.polling`)
the only question a pending poll has is "is this request recorded?". Asked of the database on every
poll, that one indexed SELECT cost a pending poll about 0.4 ms in-process on SQLite and 0.6 ms on
PostgreSQL, where it is also a network round trip, and it capped how many widgets PostgreSQL held.

So each process keeps the set of request ids recorded lately:
- a row this process records goes in at once (`note`, called by `verifications.record`);
- rows other processes record (the webhook handled by another worker or host) arrive by a lazy
  refresh: a poll that finds the set older than `REFRESH_SECONDS` runs one query for the request ids
  of rows created since the previous refresh began, less `OVERLAP` (commits that landed after their
  `created_at` was stamped, and clocks that differ between hosts). One thread refreshes at a time;
  the others answer from the set as it is and never wait.
- ids are forgotten `KEEP` after they arrived, so the set cannot grow forever. A request lives at
  most an hour, and at and after its expiry every poll asks PASSID anyway.

A request missing from the set is not proof it is unrecorded: the upstream check, when due, asks
PASSID, and a final answer for a row another process already wrote returns that row from
`verifications.record`. The set only decides that a poll between checks may answer "pending" alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from flask import current_app
from flask.sansio.app import App
from sqlalchemy.exc import SQLAlchemyError

from app.plumbing.database import utcnow

log = logging.getLogger(__name__)

EXTENSION = "passid_finished_requests"

# Completion from another process shows at most this much later than a query per poll would show it
# (a poll in that window answers "pending" and the widget's next poll, 2.5 s on, shows success).
REFRESH_SECONDS = 0.05
# How far before the previous refresh each refresh looks again: a row stamped, then committed late
# (SQLite's busy timeout is 10 s), or stamped by a host whose clock runs behind ours.
OVERLAP = timedelta(seconds=10)
# Longer than any request lives (an hour), so a live request's id is never forgotten early.
KEEP = timedelta(hours=2)


class FinishedRequests:
    """Request ids recorded lately (by any process), refreshed lazily from the database."""

    def __init__(
        self,
        created_since: Callable[[datetime], Iterable[str]],
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        overlap: timedelta = OVERLAP,
        keep: timedelta = KEEP,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._created_since = created_since
        self._refresh_seconds = refresh_seconds
        self._overlap = overlap
        self._keep_seconds = keep.total_seconds()
        self._clock = clock
        self._wall_clock = wall_clock
        self._ids: dict[str, float] = {}  # request id -> when it arrived (clock)
        self._arrivals: deque[tuple[float, str]] = deque()  # the same, oldest first, for expiry
        self._changing = threading.Lock()  # guards _ids and _arrivals against concurrent writers
        self._refreshing = threading.Lock()  # one refresher at a time; the others do not wait
        self._refreshed_at: float | None = None  # clock; None: never, so the first poll refreshes
        # The first refresh looks back as far as an id is kept: rows other processes recorded before
        # this one started (a worker restarted mid-flow) are known from its first poll on.
        self._look_from: datetime = wall_clock() - keep

    def note(self, request_id: str) -> None:
        """This process just recorded (or found) a final row for the request."""
        with self._changing:
            self._add(request_id, self._clock())

    def holds(self, request_id: str) -> bool:
        """Whether the request is known to be recorded, refreshing first if the set is stale."""
        self.refresh_if_stale()
        return self.knows(request_id)

    def is_stale(self) -> bool:
        """Whether the next `holds` would refresh first (the widget's pending-poll layer, outside Flask, runs
        the refresh inside an app context only then)."""
        refreshed_at = self._refreshed_at
        return refreshed_at is None or self._clock() - refreshed_at >= self._refresh_seconds

    def knows(self, request_id: str) -> bool:
        """Whether the set holds the request as it is, without refreshing (see `is_stale`)."""
        return request_id in self._ids

    def refresh_if_stale(self) -> None:
        """One query for rows created since the last refresh (less the overlap), by one thread at a time.

        A failed query is logged and leaves the set as it was: the next refresh looks back from the
        same point, so nothing is missed, and the poll answers as before from what the set holds.
        """
        if not self.is_stale():
            return
        if not self._refreshing.acquire(blocking=False):
            return  # another thread is refreshing: answer from the set as it is
        try:
            started = self._wall_clock()
            try:
                found = list(self._created_since(self._look_from - self._overlap))
            except SQLAlchemyError as error:
                log.warning("could not refresh the finished requests: %s", error)
                self._refreshed_at = self._clock()  # retry after the interval, not on every poll
                return
            now = self._clock()
            with self._changing:
                for request_id in found:
                    self._add(request_id, now)
                self._expire(now)
            self._look_from = started
            self._refreshed_at = now
        finally:
            self._refreshing.release()

    def _add(self, request_id: str, now: float) -> None:
        if request_id not in self._ids:
            self._ids[request_id] = now
            self._arrivals.append((now, request_id))

    def _expire(self, now: float) -> None:
        while self._arrivals and now - self._arrivals[0][0] > self._keep_seconds:
            _, request_id = self._arrivals.popleft()
            self._ids.pop(request_id, None)

    def __len__(self) -> int:
        return len(self._ids)


def install(app: App, created_since: Callable[[datetime], Iterable[str]]) -> FinishedRequests:
    """One record per app in each process (tests build several apps in one process)."""
    finished = app.extensions.get(EXTENSION)
    if finished is None:
        finished = app.extensions[EXTENSION] = FinishedRequests(created_since)
    return finished


def finished_requests() -> FinishedRequests | None:
    """This app's record, or None where the widget (which installs it) is not mounted."""
    return current_app.extensions.get(EXTENSION)
