"""Counting rejected webhook calls: one row per hour, verdict and claimed event type.

`rejection_bucket` decides which counter a call adds to (a plain function);
`count_rejection` adds to it with one INSERT … ON CONFLICT DO UPDATE, which
SQLite and PostgreSQL both run atomically, so concurrent calls in several
processes never lose a count or collide on the unique key.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy.dialects import postgresql, sqlite

from app.plumbing.database import db, utcnow
from app.rules.webhook_receipts import (
    CONTRACT_EVENT_TYPES,
    OTHER_EVENT_TYPE,
    REJECTION_RESULTS,
    SignatureResult,
    WebhookRejection,
)


class Bucket(NamedTuple):
    hour: datetime
    signature_result: str
    event_type: str


def rejection_bucket(at: datetime, verdict: SignatureResult | str, claimed_type: str | None) -> Bucket:
    """The counter a rejected call adds to.

    The hour keeps the console readable and the rows few; the claimed type is
    kept only when it is one of the contract's, since anything a caller can
    vary freely would otherwise make one row per call.
    """
    if verdict not in REJECTION_RESULTS:
        raise ValueError(f"not a rejection verdict: {verdict!r}")
    event_type = claimed_type if claimed_type in CONTRACT_EVENT_TYPES else OTHER_EVENT_TYPE
    return Bucket(at.replace(minute=0, second=0, microsecond=0), SignatureResult(verdict).value, event_type)


def clean_claimed_id(raw: str | None) -> str | None:
    """A claimed event id fit to store: printable (PostgreSQL refuses NUL), at most 64 characters."""
    value = (raw or "")[:64]
    return value if value and value.isprintable() else None


def count_rejection(
    verdict: SignatureResult, claimed_type: str | None, claimed_id: str | None, *, refused: bool
) -> None:
    """Add one rejected call to its hour's count and commit."""
    now = utcnow()
    bucket = rejection_bucket(now, verdict, claimed_type)
    claimed = clean_claimed_id(claimed_id)
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(WebhookRejection).values(
        **bucket._asdict(), calls=1, refused=int(refused), first_at=now, last_at=now, last_claimed_event_id=claimed
    )
    statement = statement.on_conflict_do_update(
        index_elements=list(Bucket._fields),
        set_={
            "calls": WebhookRejection.calls + 1,
            "refused": WebhookRejection.refused + int(refused),
            "last_at": now,
            "last_claimed_event_id": claimed,
        },
    )
    db.session.execute(statement)
    db.session.commit()
