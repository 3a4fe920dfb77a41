"""What keeps an erased person erased: a tombstone per erased token, request and session, with nothing personal in it.

Why one is needed: an erase (`app.rules.retention`) clears a verification's token and its keyed hash, so a later
event about that token — PASSID's retry of a webhook that failed before the erase, an `outcome.reported`, the
widget's poll racing the erase — would find no record of the person and store them again, in full. A
tombstone holds only the keyed hash (app/plumbing/encryption.py) of the erased value, under every key of the keyring
(a webhook arriving between a new key and `rotate-data-key` is hashed under either), which nobody without
the data key can turn back into a token. Anything about a tombstoned value is acknowledged and counted on
its tombstone (`later_events`), and nothing of it is stored.

How long: PASSID retries a failed delivery for 2 h 35 min (the contract's 0, 30 s, 5 min, 30 min, 2 h), and
an operator may redeliver from its dashboard or report an outcome days later; so `KEEP_MARGIN` past the
retry schedule, and never longer than PASSID_RETENTION_DAYS, the longest we keep anything of the person.
The daily purge (`app.rules.retention.purge`) deletes tombstones whose time is up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import DateTime, Index, Integer, String, and_, delete, or_, update
from sqlalchemy.orm import Mapped, mapped_column

from app.config import DEFAULT_RETRY_SCHEDULE, current_settings
from app.plumbing.database import Model, db, rows_changed, utcnow
from app.plumbing.encryption import hash_column, lookup_hashes

# Past PASSID's last retry: a delivery queue held up by an outage, a redelivery by hand, a late outcome report.
KEEP_MARGIN = timedelta(days=7)
_LOOKUP_BATCH = 500  # hashes in one IN (…), well inside every database's limit on bound parameters


class Kind(StrEnum):
    TOKEN = "token"  # a share token (what verifications, outcome reports and most webhooks are about)
    REQUEST = "request"  # a QR request id (`verification.completed` with a requestId, the widget's poll)
    SESSION = "session"  # a session the institution's server created (a verification recorded for it)


class ErasureTombstone(Model):
    __tablename__ = "erasure_tombstone"
    __table_args__ = (Index("ix_erasure_tombstone_subject", "kind", "subject_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # a Kind
    subject_hash: Mapped[str] = mapped_column(hash_column())  # the erased value's keyed hash, under one key
    erased_at: Mapped[datetime] = mapped_column(DateTime)
    keep_until: Mapped[datetime] = mapped_column(DateTime, index=True)
    # How many events, polls or records about it came after the erase (each acknowledged, none stored).
    later_events: Mapped[int] = mapped_column(Integer, default=0)
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime)


def keep_for(retention_days: int | None = None) -> timedelta:
    """How long a tombstone is kept: the retry schedule plus `KEEP_MARGIN`, at most the retention period."""
    days = retention_days if retention_days is not None else current_settings().retention_days
    return min(timedelta(seconds=sum(DEFAULT_RETRY_SCHEDULE)) + KEEP_MARGIN, timedelta(days=days))


def _hashes(values: Iterable[str | None]) -> set[str]:
    return {found for value in values if value for found in lookup_hashes(value)}


def bury(*, tokens: Iterable[str | None] = (), request_ids: Iterable[str | None] = (),
         session_ids: Iterable[str | None] = (), token_hashes: Iterable[str | None] = (),
         now: datetime | None = None) -> int:
    """Add tombstones for these erased values (and for stored token hashes whose token is not at hand).

    In the caller's transaction, so the erase and its tombstones commit together. A value already
    tombstoned gets no second row; its time is not extended (a purge re-reaching it changes nothing).
    """
    now = now or utcnow()
    keep_until = now + keep_for()
    wanted = {
        Kind.TOKEN: _hashes(tokens) | {found for found in token_hashes if found},
        Kind.REQUEST: _hashes(request_ids),
        Kind.SESSION: _hashes(session_ids),
    }
    added = 0
    for kind, hashes in wanted.items():
        new = sorted(hashes - _existing(kind, hashes))
        db.session.add_all(ErasureTombstone(kind=kind.value, subject_hash=found, erased_at=now,
                                            keep_until=keep_until, later_events=0) for found in new)
        added += len(new)
    return added


def _existing(kind: Kind, hashes: set[str]) -> set[str]:
    wanted = sorted(hashes)
    found: set[str] = set()
    for start in range(0, len(wanted), _LOOKUP_BATCH):
        found.update(db.session.execute(
            db.select(ErasureTombstone.subject_hash).where(
                ErasureTombstone.kind == kind.value,
                ErasureTombstone.subject_hash.in_(wanted[start:start + _LOOKUP_BATCH]))).scalars())
    return found


def _subject(token: str | None, request_id: str | None, session_id: str | None) -> list[tuple[Kind, list[str]]]:
    return [(kind, lookup_hashes(value)) for kind, value in
            ((Kind.TOKEN, token), (Kind.REQUEST, request_id), (Kind.SESSION, session_id)) if value]


def erased_at(*, token: str | None = None, request_id: str | None = None,
              session_id: str | None = None) -> datetime | None:
    """When the person this token, request or session was about was erased; None when it was not (or long ago).

    One query whatever is asked: a signed webhook asks about its token and its request on every delivery."""
    subjects = [(kind, hashes) for kind, hashes in _subject(token, request_id, session_id) if hashes]
    if not subjects:
        return None
    return db.session.execute(
        db.select(ErasureTombstone.erased_at).where(
            or_(*(and_(ErasureTombstone.kind == kind.value, ErasureTombstone.subject_hash.in_(hashes))
                  for kind, hashes in subjects)),
            ErasureTombstone.keep_until > utcnow()).limit(1)).scalar_one_or_none()


def count_later_event(*, token: str | None = None, request_id: str | None = None,
                      session_id: str | None = None) -> None:
    """Add one to the tombstones of what an event, poll or record refused now was about (in the caller's
    transaction): the count an operator reads to see erased people still being sent about."""
    now = utcnow()
    for kind, hashes in _subject(token, request_id, session_id):
        if hashes:
            rows_changed(update(ErasureTombstone)
                         .where(ErasureTombstone.kind == kind.value, ErasureTombstone.subject_hash.in_(hashes))
                         .values(later_events=ErasureTombstone.later_events + 1, last_event_at=now)
                         .execution_options(synchronize_session=False))


def refused(*, token: str | None = None, request_id: str | None = None,
            session_id: str | None = None) -> datetime | None:
    """`erased_at`, and when it is not None, the event counted (committed): the one call a receiver makes."""
    when = erased_at(token=token, request_id=request_id, session_id=session_id)
    if when is not None:
        count_later_event(token=token, request_id=request_id, session_id=session_id)
        db.session.commit()
    return when


def expire(now: datetime | None = None) -> int:
    """Delete the tombstones whose time is up (the daily purge); how many went."""
    return rows_changed(delete(ErasureTombstone).where(ErasureTombstone.keep_until <= (now or utcnow()))
                        .execution_options(synchronize_session=False))


def later_events_total() -> int:
    """Events, polls and records refused about erased people, over the tombstones still kept."""
    return int(db.session.execute(db.select(db.func.coalesce(db.func.sum(ErasureTombstone.later_events), 0)))
               .scalar_one())
