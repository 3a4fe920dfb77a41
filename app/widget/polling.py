"""When the widget's 2.5 s poll asks PASSID, and when our own records answer it.

With webhooks configured, PASSID tells us a QR request completed by sending
`verification.completed`, which the receiver records within milliseconds.
Asking PASSID on every poll as well would double the latency of each poll,
spend PASSID's rate budget, and cap how many widgets one machine holds. So a
pending poll asks PASSID only inside the request's check windows and answers
the polls in between from our records: completion still shows at the next
poll after the webhook, and the check catches what no webhook reports (a
decline on the phone) or a webhook that went missing, within about
`PASSID_POLL_CHECK_SECONDS` plus one poll. At or after the request's expiry
every poll asks, so "Generate new code" is never late. Without a webhook
secret every poll asks, as the React component does.

Check windows, the same on every worker and host with nothing shared: with
P = `PASSID_POLL_CHECK_SECONDS` and W = `WINDOW_SECONDS` (the widget's 2.5 s
poll plus a margin), a poll is a check when it falls in
[expires − k·P − W, expires − k·P) for some k ≥ 1, where `expires` is the
request's expiry, signed into the handle every poll carries. Every worker
computes the same windows for a request, so the widget's one poll in a window
asks wherever it lands, and the polls between windows ask nowhere. Why not
"each worker asks when its own last ask is P old" (as before): a worker sees
a given widget only every poll-interval × workers on average, so with two
workers nearly every other poll it saw was past its own schedule, and about
half of all polls asked PASSID; with windows it is one poll per window, 1 in 3
at P = 7.5 s. Each worker asks at most once per window: the threads of one
worker polling the same request at once do not all go to PASSID. When P ≤ W
the windows cover all time, and every poll asks (tests set 0 for that).

A window wider than the gap between two polls holds two of them now and then
(a fifth of windows), and when they reach different workers or hosts, neither
knows the other asked. The widget knows: a poll that asked PASSID is answered
with `PASSID-Checked: <mark>` (the window's end and the request, `window_mark`), which
widget.js sends back with its next polls; a poll carrying the mark of the
window it falls in does not ask again. The mark only ever spares a check of the
widget that sends it (a wrong one is simply not equal), and a page without our
script gets the checks it got before.

"Our records" between checks is not a database query per poll: each process
keeps the ids of requests recorded lately (`app.rules.finished_requests`, refreshed
by one query every 50 ms at most), so a pending poll between checks touches
neither PASSID nor the database. A due check asks PASSID without a lookup
first; a final answer for a row the set missed returns that row from
`verifications.record`.

Nor does such a poll reach Flask once Flask has found its handle pending: the
widget's WSGI layer (`app.widget.pending_polls`) answers it with Flask's own
empty 204 while the request has not expired and the set above does not hold
it, and makes the due checks too (`is_due`, which does not count as the ask,
then `should_ask`, which does), handing Flask only what PASSID says is no
longer pending.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Callable
from datetime import datetime

from cachetools import TTLCache

# The widget polls every 2.5 s (templates/widget/_awaiting.html, `every 2500ms`).
POLL_SECONDS = 2.5
# A window is wider than the poll interval so a widget's poll almost never misses one. htmx re-arms its
# `every` timer as it sends each poll, so the gaps between polls as the server sees them are 2.5 s plus the
# change in network and queueing delay from one poll to the next (within our 250 ms p99 at full load), plus
# timer lateness: a browser tab in the background runs its timers on whole seconds, which makes every gap 3 s.
# Half a second covers all of these; a wider window only makes two polls share a window more often (a fifth
# of windows at 0.5 s); the second asks only where neither this process nor the widget's report says the
# first did (a page without widget.js whose two polls land on different workers).
WINDOW_MARGIN_SECONDS = 0.5
WINDOW_SECONDS = POLL_SECONDS + WINDOW_MARGIN_SECONDS
# A request lives at most an hour; one entry per live request per worker.
_MAX_TRACKED = 200_000
ALWAYS = -1  # `check_window`'s answer when every poll asks
# The response header that tells the widget its poll asked PASSID in this window, and the request header that
# tells us so back (module docstring).
CHECKED_HEADER = "PASSID-Checked"


def check_window(seconds_left: float, every: float, width: float = WINDOW_SECONDS) -> int | None:
    """The check window a poll `seconds_left` before its request's expiry falls in, or None between windows.

    Window k (k ≥ 1) is the `width` seconds before `expires − k·every`: a poll with
    k·every < seconds_left ≤ k·every + width. A pure function of numbers every process has the same of
    (the expiry is in the handle), so every worker and host agrees. `ALWAYS` (a negative number) when
    every poll asks: at or after expiry, and when the windows cover all time (every ≤ width).
    """
    if seconds_left <= 0 or every <= width:
        return ALWAYS
    k = math.ceil(seconds_left / every) - 1  # every·k < seconds_left ≤ every·(k + 1)
    if k >= 1 and seconds_left - k * every <= width:
        return k
    return None


def window_mark(request_id: str, expires_at: datetime, window: int, every: float) -> str:
    """A check window of a request, named: the window's end in epoch milliseconds and a checksum of the request
    id (requests created in the same second share an expiry; a page that moves on to a new request must not
    carry the old one's windows over). Whole numbers, so a client can work it out too (bench/capacity.lua
    plays widget.js); nothing in it is secret or personal."""
    end = round(expires_at.timestamp() * 1000) - window * round(every * 1000)
    return f"{end}-{zlib.crc32(request_id.encode()):08x}"


class UpstreamChecks:
    """Whether a pending poll asks PASSID now (check windows, module docstring), and which this process asked."""

    def __init__(self, every_seconds: float, *, window_seconds: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        """`clock` is wall time, as the expiry is (tests pass a hand-driven one)."""
        self.every_seconds = every_seconds
        self.window_seconds = window_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._always = every_seconds <= window_seconds
        # request id -> the window this process asked in; lives one window, so it never outlives the window.
        self._asked: TTLCache[str, int] = TTLCache(maxsize=_MAX_TRACKED, ttl=window_seconds, timer=time.monotonic)
        # request ids whose next poll asks whatever the windows say (the last ask did not happen).
        self._owed: TTLCache[str, bool] = TTLCache(maxsize=_MAX_TRACKED, ttl=max(every_seconds, window_seconds),
                                                   timer=time.monotonic)

    def _window(self, expires_at: datetime) -> int | None:
        return check_window(expires_at.timestamp() - self.clock(), self.every_seconds, self.window_seconds)

    def mark(self, request_id: str, expires_at: datetime) -> str | None:
        """The mark of the check window a poll of this request falls in now, for `CHECKED_HEADER` on the answer
        of a poll that asked; None outside windows or when every poll asks."""
        if self._always:
            return None
        window = self._window(expires_at)
        return None if window is None or window < 0 else window_mark(request_id, expires_at, window,
                                                                      self.every_seconds)

    def seen_pending(self, request_id: str, expires_at: datetime) -> None:
        """We just learned from PASSID that this request is pending (created it): no check in this window here."""
        if self._always:
            return
        window = self._window(expires_at)
        if window is not None and window >= 0:
            with self._lock:
                self._asked[request_id] = window
                self._owed.pop(request_id, None)

    def forget(self, request_id: str) -> None:
        """The ask did not happen (PASSID busy): the next poll asks, in a window or not."""
        if not self._always:
            with self._lock:
                self._owed[request_id] = True

    def is_due(self, request_id: str, expires_at: datetime, *, webhooks: bool, reported: str | None = None) -> bool:
        """Would `should_ask` say yes now? Without counting as the ask: the widget's pending-poll layer
        (`app.widget.pending_polls`) asks this of every poll it may answer, and only a due one goes on to
        `should_ask` and PASSID."""
        return self._due(request_id, expires_at, webhooks=webhooks, reported=reported, take=False)

    def should_ask(self, request_id: str, expires_at: datetime, *, webhooks: bool,
                   reported: str | None = None) -> bool:
        """Ask PASSID now? Yes without webhooks, at expiry, when asked to (`forget`), or at the first
        poll this process sees in one of the request's check windows, unless the poll reports (`reported`,
        its `CHECKED_HEADER`) that an earlier poll of it asked in this window, wherever that one went.

        A yes also counts as the ask, so the threads of one worker that poll
        the same request at once do not all go to PASSID.
        """
        return self._due(request_id, expires_at, webhooks=webhooks, reported=reported, take=True)

    def _due(self, request_id: str, expires_at: datetime, *, webhooks: bool, reported: str | None,
             take: bool) -> bool:
        """The one rule `is_due` and `should_ask` share; `take` records a yes as this window's ask."""
        if self._always or not webhooks:
            return True
        window = self._window(expires_at)
        if window is not None and window < 0:
            return True
        with self._lock:
            if request_id in self._owed:
                if take:
                    del self._owed[request_id]
                    if window is not None:
                        self._asked[request_id] = window
                return True
            if window is None or self._asked.get(request_id) == window:
                return False
            if reported is not None and reported == window_mark(request_id, expires_at, window,
                                                                self.every_seconds):
                return False  # an earlier poll of this widget asked in this window, on another worker or host
            if take:
                self._asked[request_id] = window
            return True
