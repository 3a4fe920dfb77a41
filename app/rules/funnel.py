"""The funnel: widgets shown, verifications started, and how each ended, counted with nothing about the person.

Three moments are recorded, and never a poll (polls are the app's hottest path; none gains a query):

- **shown**: the first screen of a journey drawn: the widget's page or a session's hosted page with its form
  (not a closed session's final state, not "Try again"), the branch counter's entry form;
- **started**: a QR request created, or a token PASSID checked (typed in the widget or at the counter);
- **ended**: the verification of that start recorded, by whichever part records it (the widget's poll or
  PASSID's webhook): approved (PASSID verified the person), denied (PASSID refused the token), declined (the
  customer declined in the app) or expired (the code ran out while the widget was still asking); or, for a
  QR start with no verification recorded `ABANDON_AFTER` past its code's expiry, abandoned (the customer left
  before the end, and nothing told us how it ended).

Every start ends once. A journey belongs to the hour it started in, its end included, so a period's
starts and ends are the same journeys; between its start and its end it is "in progress".

What an event keeps: its kind, the channel, whether the page ran JavaScript (known from the start on),
the page's language, the device class (phone or desktop: the layout the widget's stylesheet chose, which
widget.js reports on the start request; "unknown" without JavaScript and at the counter), the hour it
belongs to, and for an end its outcome, the verdict and the whole seconds from start to end. No id, token,
code, reference, claim or address: an erasure (`app.rules.retention`) leaves the counts as they are, and they
are kept as long as PASSID_RETENTION_DAYS, like everything else (the daily purge deletes older ones).

The one link between a start and its end: a QR start's open journey (`FunnelJourney`) holds PASSID's request
id until its verification is recorded or it is abandoned, a few minutes past its code's expiry, and is then
deleted; erasing a person clears the request ids of their open journeys, which then end as abandoned.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, Integer, String, delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from app.plumbing.database import Model, db, end_of, rows_changed, start_of, utcnow
from app.rules import verifications
from app.rules.verifications import FinalStatus, Verification

log = logging.getLogger(__name__)

# How long past its code's expiry a QR start may still get its verification (a poll after the countdown, a
# webhook's first retries: 0, 30 s, 5 min) before it counts as abandoned.
ABANDON_AFTER = timedelta(minutes=10)
SETTLE_JOB = "funnel-abandoned"
SETTLE_EVERY_SECONDS = 60.0
_SETTLE_BATCH = 500


class Kind(StrEnum):
    SHOWN = "shown"
    STARTED = "started"
    ENDED = "ended"


class Channel(StrEnum):
    """Where the journey ran. Whether its page ran JavaScript is a separate column (`scripted`)."""

    EMBED = "embed"  # the widget on the bank's page (embed.js), or its own page, outside a session
    HOSTED = "hosted"  # a session the bank's server created: its hosted page, or that page framed by embed.js
    BRANCH = "branch"  # the branch counter, and the QR flow it frames


class Device(StrEnum):
    """The layout the widget's stylesheet chose, `(pointer: coarse)` or not; never guessed from a fingerprint."""

    PHONE = "phone"
    DESKTOP = "desktop"
    UNKNOWN = "unknown"  # no JavaScript to tell us, or the branch counter (not the widget's layout)


class Outcome(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    DECLINED = "declined"
    EXPIRED = "expired"
    ABANDONED = "abandoned"


OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
# The ends a customer (or PASSID) answered: what "time from start to result" measures. An expiry's time is
# the code's lifetime, and an abandonment has no end to time.
ANSWERED: tuple[Outcome, ...] = (Outcome.APPROVED, Outcome.DENIED, Outcome.DECLINED)
_OUTCOME_OF_STATUS = {
    FinalStatus.COMPLETED: Outcome.APPROVED,
    FinalStatus.DENIED: Outcome.DENIED,
    FinalStatus.DECLINED: Outcome.DECLINED,
    FinalStatus.EXPIRED: Outcome.EXPIRED,
}
LAYOUT_HEADER = "PASSID-Layout"  # what widget.js sends on the widget's requests: "phone" or "desktop"


class FunnelEvent(Model):
    """One shown widget, one start or one end; nothing in it names a person or links to a verification."""

    __tablename__ = "funnel_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # a Kind
    channel: Mapped[str] = mapped_column(String(10))  # a Channel
    scripted: Mapped[bool | None] = mapped_column(Boolean)  # None for a shown widget: not known before a start
    locale: Mapped[str] = mapped_column(String(16))
    device: Mapped[str] = mapped_column(String(10))  # a Device
    hour: Mapped[datetime] = mapped_column(DateTime, index=True)  # the journey's start (a shown widget's own hour)
    outcome: Mapped[str | None] = mapped_column(String(10))  # an Outcome, for an end
    verdict: Mapped[str | None] = mapped_column(String(10))  # the app's verdict of an end that has a verification
    seconds: Mapped[int | None] = mapped_column(Integer)  # start to end, whole seconds, for an answered end


class FunnelJourney(Model):
    """A QR start waiting for its verification: what its end will be counted under, and until when it may come."""

    __tablename__ = "funnel_journey"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # PASSID's request id, so whichever part records the verification ends this journey; NULL once erased.
    request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    scripted: Mapped[bool] = mapped_column(Boolean)
    locale: Mapped[str] = mapped_column(String(16))
    device: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # the code's expiry


@dataclass(frozen=True)
class Journey:
    """What a start is counted under; the routes know it from the page (`channel_of`, `device_of`)."""

    channel: Channel
    scripted: bool
    locale: str
    device: Device
    started_at: datetime = field(default_factory=lambda: utcnow())


def channel_of(*, session: bool, framed_by_us: bool) -> Channel:
    """A session's page is "hosted" wherever it is shown; our own pages frame the widget only at the counter."""
    if session:
        return Channel.HOSTED
    return Channel.BRANCH if framed_by_us else Channel.EMBED


def device_of(reported: str | None) -> Device:
    """The layout widget.js reported; anything else (no JavaScript, a forged value) is unknown."""
    value = (reported or "").strip().lower()
    return Device(value) if value in (Device.PHONE, Device.DESKTOP) else Device.UNKNOWN


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _clip(locale: str) -> str:
    return locale[:16]


# --- recording -----------------------------------------------------------------------------------


@contextmanager
def _counting(what: str) -> Iterator[None]:
    """A count the customer's page does not wait on: the widget's first screen needed no database before the
    funnel, and a database that cannot take the count (locked, down) costs the count, never the page."""
    try:
        yield
        db.session.commit()
    except SQLAlchemyError as refused:
        db.session.rollback()
        # Its class only: the error's text quotes the statement's parameters, a request id among them.
        log.warning("funnel: %s not counted: the database did not take it (%s)", what, type(refused).__name__)


def note_shown(channel: Channel, locale: str) -> None:
    """A journey's first screen was drawn (whether it will run JavaScript, and on which layout, is not known yet)."""
    with _counting("a widget shown"):
        db.session.add(FunnelEvent(kind=Kind.SHOWN.value, channel=channel.value, scripted=None,
                                   locale=_clip(locale), device=Device.UNKNOWN.value, hour=hour_of(utcnow())))


def note_qr_started(journey: Journey, request_id: str, expires_at: datetime) -> None:
    """A QR request was created: the start, and the open journey its verification (or its expiry) will end."""
    with _counting("a QR start"):
        db.session.add(_event(Kind.STARTED, journey))
        db.session.add(FunnelJourney(
            request_id=request_id, channel=journey.channel.value, scripted=journey.scripted,
            locale=_clip(journey.locale), device=journey.device.value, started_at=journey.started_at,
            expires_at=expires_at.replace(tzinfo=None)))


_CHECKING: ContextVar[Journey | None] = ContextVar("funnel_token_check", default=None)


@contextmanager
def checking_token(journey: Journey) -> Iterator[None]:
    """Around recording a token's verify: a new verification is this journey's start and end at once.

    A replayed form (the same Idempotency-Key) records nothing new, so it counts nothing either.
    """
    reset = _CHECKING.set(journey)
    try:
        yield
    finally:
        _CHECKING.reset(reset)


@verifications.when_recorded
def _end_journey(row: Verification) -> None:
    """In the transaction that records `row`: the end of the journey it belongs to, if the funnel knows one."""
    checking = _CHECKING.get()
    if checking is not None and row.request_id is None:
        db.session.add(_event(Kind.STARTED, checking))
        db.session.add(_end(checking, row))
        return
    if row.request_id is None:
        return
    journey = db.session.execute(
        select(FunnelJourney).where(FunnelJourney.request_id == row.request_id)).scalar_one_or_none()
    # Deleted by id and counted only if this transaction deleted it: the abandoning pass may be ending it too.
    if journey is not None and rows_changed(delete(FunnelJourney).where(FunnelJourney.id == journey.id)) == 1:
        db.session.add(_end(_journey_of(journey), row))


def _journey_of(row: FunnelJourney) -> Journey:
    return Journey(Channel(row.channel), row.scripted, row.locale, Device(row.device), row.started_at)


def _event(kind: Kind, journey: Journey, **end: object) -> FunnelEvent:
    return FunnelEvent(kind=kind.value, channel=journey.channel.value, scripted=journey.scripted,
                       locale=_clip(journey.locale), device=journey.device.value, hour=hour_of(journey.started_at),
                       **end)


def _end(journey: Journey, row: Verification) -> FunnelEvent:
    outcome = _OUTCOME_OF_STATUS[FinalStatus(row.status)]
    took = max(0, round((utcnow() - journey.started_at).total_seconds()))
    return _event(Kind.ENDED, journey, outcome=outcome.value, verdict=row.verdict,
                  seconds=took if outcome in ANSWERED else None)


def settle_abandoned(now: datetime | None = None) -> int:
    """End as abandoned every open journey whose verification can no longer come; how many it ended.

    Safe in every process at once: a journey is ended by whoever deletes it (this pass or a late record).
    """
    cutoff = (now or utcnow()) - ABANDON_AFTER
    ended = 0
    while True:
        due = db.session.execute(select(FunnelJourney).where(FunnelJourney.expires_at < cutoff)
                                 .order_by(FunnelJourney.id).limit(_SETTLE_BATCH)).scalars().all()
        for journey in due:
            if rows_changed(delete(FunnelJourney).where(FunnelJourney.id == journey.id)) == 1:
                db.session.add(_event(Kind.ENDED, _journey_of(journey), outcome=Outcome.ABANDONED.value))
                ended += 1
        db.session.commit()
        if len(due) < _SETTLE_BATCH:
            return ended


def forget_requests(request_ids: Iterable[str]) -> None:
    """An erase (`app.rules.retention`): the open journeys keep their counts and lose the person's request ids.

    In the erase's transaction. Their verification will not be recorded (its tombstone refuses it), so each
    ends as abandoned when its time is up.
    """
    wanted = sorted(set(request_ids))
    for start in range(0, len(wanted), _SETTLE_BATCH):
        batch = wanted[start:start + _SETTLE_BATCH]
        db.session.execute(update(FunnelJourney).where(FunnelJourney.request_id.in_(batch))
                           .values(request_id=None).execution_options(synchronize_session=False))


def purge_before(cutoff: datetime) -> int:
    """The retention purge: events of hours before `cutoff` (and journeys started before it) go; how many events."""
    rows_changed(delete(FunnelJourney).where(FunnelJourney.started_at < cutoff)
                 .execution_options(synchronize_session=False))
    return rows_changed(delete(FunnelEvent).where(FunnelEvent.hour < hour_of(cutoff))
                        .execution_options(synchronize_session=False))


# --- counting ------------------------------------------------------------------------------------


@dataclass
class Counts:
    """One row of the funnel: a breakdown's value, or the whole period."""

    shown: int | None = 0  # None where it cannot be known (a device class, the no-JavaScript row)
    started: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    verdicts: dict[str, int] = field(default_factory=dict)
    seconds: list[int] = field(default_factory=list)  # every answered end's time, for the median and p90

    @property
    def ended(self) -> int:
        return sum(self.outcomes.values())

    @property
    def in_progress(self) -> int:
        """Started, not ended yet: QR codes still running (or within `ABANDON_AFTER` of their expiry)."""
        return self.started - self.ended

    @property
    def start_rate(self) -> float | None:
        """Starts per widget shown (above 1 when customers start again: "Generate new code" is a start)."""
        return self.started / self.shown if self.shown else None

    def rate(self, outcome: str) -> float | None:
        """The share of starts that ended so."""
        return self.outcomes[outcome] / self.started if self.started else None

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def p90_seconds(self) -> int | None:
        return percentile(self.seconds, 0.9)


def percentile(values: Sequence[int], share: float) -> int | None:
    """The nearest-rank percentile: the smallest value that `share` of the values are at most."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


NO_JAVASCRIPT = "nojs"  # the channel breakdown's extra row: starts whose page ran no JavaScript, any channel


@dataclass
class FunnelReport:
    """A period's funnel: the whole, and the same counts by channel, by locale and by device class."""

    first_day: date
    last_day: date
    total: Counts
    by_channel: dict[str, Counts]
    by_locale: dict[str, Counts]
    by_device: dict[str, Counts]

    def breakdowns(self) -> list[tuple[str, dict[str, Counts]]]:
        return [("channel", self.by_channel), ("locale", self.by_locale), ("device", self.by_device)]


def report(first_day: date, last_day: date) -> FunnelReport:
    """The funnel of the journeys that started on these UTC days (both included), after ending what is due.

    Two queries: the counts grouped in the database, and the answered ends' times (for the median and p90).
    """
    settle_abandoned()
    start, stop = start_of(first_day), end_of(last_day)
    period = [FunnelEvent.hour >= start, *([FunnelEvent.hour < stop] if stop is not None else [])]
    columns = (FunnelEvent.kind, FunnelEvent.channel, FunnelEvent.scripted, FunnelEvent.locale, FunnelEvent.device,
               FunnelEvent.outcome, FunnelEvent.verdict)
    grouped = db.session.execute(select(*columns, func.count()).where(*period).group_by(*columns)).all()
    times = db.session.execute(
        select(FunnelEvent.channel, FunnelEvent.scripted, FunnelEvent.locale, FunnelEvent.device, FunnelEvent.seconds)
        .where(*period, FunnelEvent.kind == Kind.ENDED.value, FunnelEvent.seconds.is_not(None))).all()
    return summarise(first_day, last_day, [Tally(*row) for row in grouped], [Timed(*row) for row in times])


@dataclass(frozen=True)
class Tally:
    """How many events of one kind share these values (a row of the grouped count)."""

    kind: str
    channel: str
    scripted: bool | None
    locale: str
    device: str
    outcome: str | None
    verdict: str | None
    count: int


@dataclass(frozen=True)
class Timed:
    channel: str
    scripted: bool | None
    locale: str
    device: str
    seconds: int


def summarise(first_day: date, last_day: date, tallies: Iterable[Tally], times: Iterable[Timed]) -> FunnelReport:
    """The report from grouped counts and times: a plain function, so its arithmetic is tested without a database."""
    found = FunnelReport(
        first_day, last_day, Counts(),
        by_channel={channel.value: Counts() for channel in Channel} | {NO_JAVASCRIPT: Counts(shown=None)},
        by_locale={}, by_device={device.value: Counts(shown=None) for device in Device},
    )
    for tally in tallies:
        for counts in _rows_of(found, tally.channel, tally.scripted, tally.locale, tally.device):
            if tally.kind == Kind.SHOWN:
                if counts.shown is not None:
                    counts.shown += tally.count
            elif tally.kind == Kind.STARTED:
                counts.started += tally.count
            elif tally.kind == Kind.ENDED and tally.outcome in counts.outcomes:
                counts.outcomes[tally.outcome] += tally.count
                if tally.verdict:
                    counts.verdicts[tally.verdict] = counts.verdicts.get(tally.verdict, 0) + tally.count
    for timed in times:
        for counts in _rows_of(found, timed.channel, timed.scripted, timed.locale, timed.device):
            counts.seconds.append(timed.seconds)
    found.by_locale = dict(sorted(found.by_locale.items()))
    return found


def _rows_of(found: FunnelReport, channel: str, scripted: bool | None, locale: str, device: str) -> list[Counts]:
    """Every row an event counts in: the whole, its channel (and the no-JavaScript row), its locale, its device."""
    rows = [found.total, found.by_channel.setdefault(channel, Counts()), found.by_locale.setdefault(locale, Counts()),
            found.by_device.setdefault(device, Counts(shown=None))]
    if scripted is False:
        rows.append(found.by_channel[NO_JAVASCRIPT])
    return rows
