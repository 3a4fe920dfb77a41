"""When the widget's 2.5 s poll asks PASSID, and when our own records answer it.

With webhooks configured, PASSID tells us a QR request completed by sending
`verification.completed`, which the receiver records within milliseconds.
Asking PASSID on every poll as well would double the latency of each poll,
spend PASSID's rate budget, and cap how many widgets one machine holds. So a
pending poll asks PASSID at most once every `PASSID_POLL_CHECK_SECONDS` per
request (per worker process) and answers the polls in between from our
records: completion still shows at the next poll after the webhook, and the
check catches what no webhook reports (a decline on the phone) or a webhook
that went missing, within that many seconds. At or after the request's expiry
every poll asks, so "Generate new code" is never late. Without a webhook
secret every poll asks, as the React component does.

"Our records" between checks is not a database query per poll: each process
keeps the ids of requests recorded lately (`app.rules.finished_requests`, refreshed
by one query every 50 ms at most), so a pending poll between checks touches
neither PASSID nor the database. A due check asks PASSID without a lookup
first: each worker checks each request on its own schedule, so with several
workers checks are a large share of all polls; and a final answer for a row
the set missed returns that row from `verifications.record`.

Nor does such a poll reach Flask once Flask has found its handle pending: the
widget's WSGI layer (`app.widget.pending_polls`) answers it with Flask's own
empty 204 while no check is due (`is_due`, which unlike `should_ask` does not
count as the ask, so the due poll reaches Flask and Flask asks PASSID), the
request has not expired and the set above does not hold it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from cachetools import TTLCache

# A request lives at most an hour; one entry per live request per worker.
_MAX_TRACKED = 200_000


class UpstreamChecks:
    """Which requests this process asked PASSID about recently, forgotten after `every_seconds`."""

    def __init__(self, every_seconds: float) -> None:
        self.every_seconds = every_seconds
        self._lock = threading.Lock()
        self._recent: TTLCache[str, bool] | None = (
            TTLCache(maxsize=_MAX_TRACKED, ttl=every_seconds, timer=time.monotonic) if every_seconds > 0 else None
        )

    def seen_pending(self, request_id: str) -> None:
        """We just learned from PASSID that this request is pending (created it, or asked)."""
        if self._recent is not None:
            with self._lock:
                self._recent[request_id] = True

    def forget(self, request_id: str) -> None:
        """The ask did not happen: let the next poll ask."""
        if self._recent is not None:
            with self._lock:
                self._recent.pop(request_id, None)

    def is_due(self, request_id: str, expires_at: datetime, *, webhooks: bool) -> bool:
        """Would `should_ask` say yes now? Without counting as the ask: the widget's pending-poll layer
        (`app.widget.pending_polls`) asks this and sends a due poll on to Flask, whose `should_ask` then
        marks the ask and goes to PASSID (had the layer marked it, Flask would skip the check)."""
        if self._recent is None or not webhooks or datetime.now(UTC) >= expires_at:
            return True
        with self._lock:
            return request_id not in self._recent

    def should_ask(self, request_id: str, expires_at: datetime, *, webhooks: bool) -> bool:
        """Ask PASSID now? Yes without webhooks, at expiry, or when the last ask is old enough.

        A yes also counts as the ask, so the threads of one worker that poll
        the same request at once do not all go to PASSID.
        """
        if self._recent is None or not webhooks or datetime.now(UTC) >= expires_at:
            return True
        with self._lock:
            if request_id in self._recent:
                return False
            self._recent[request_id] = True
            return True
