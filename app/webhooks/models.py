"""Every webhook call we receive, stored before we answer.

A valid event is kept with its raw body and handled in the background; a
call whose signature fails is logged (type, claimed id, time, why) without
its body and never handled, so the console can show forged or misconfigured
deliveries without keeping what they carried.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.database import db, utcnow

SIGNATURE_RESULTS = ("valid", "invalid", "missing", "malformed")
HANDLING = ("pending", "handled", "failed", "rejected")


class WebhookReceipt(db.Model):
    __tablename__ = "webhook_receipt"
    __table_args__ = (Index("ix_webhook_receipt_due", "handling_status", "received_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Unique: the same event delivered twice is stored (and handled) once.
    event_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    claimed_event_id: Mapped[str | None] = mapped_column(String(64))
    event_type: Mapped[str | None] = mapped_column(String(40), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    signature_result: Mapped[str] = mapped_column(String(10), index=True)
    delivery_attempt: Mapped[int | None] = mapped_column(Integer)
    test: Mapped[bool] = mapped_column(default=False)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    handling_status: Mapped[str] = mapped_column(String(10))
    handling_error: Mapped[str | None] = mapped_column(String(500))
    handling_attempts: Mapped[int] = mapped_column(Integer, default=0)
    handled_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
