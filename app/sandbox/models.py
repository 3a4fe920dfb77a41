"""The sandbox's own tables: PASSID's side of the wire, prefixed `sandbox_`.

JSON-ish columns (permissions, claims) are stored as text so the same schema
runs on SQLite and PostgreSQL without dialect types.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.plumbing.database import Model, utcnow
from app.plumbing.outbound_delivery import DeliveryColumns


class SandboxInstitution(Model):
    __tablename__ = "sandbox_institution"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    sandbox_key: Mapped[str] = mapped_column(String(80), unique=True, index=True)
    live_key: Mapped[str] = mapped_column(String(80), unique=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(String(256))
    # Set only on the one institution `make run` onboards; unique, so two
    # processes starting at once cannot both create one.
    demo_slot: Mapped[str | None] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SandboxRequest(Model):
    __tablename__ = "sandbox_request"
    __table_args__ = (Index("ix_sandbox_request_code_status", "code", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("sandbox_institution.id"), index=True)
    institution_name: Mapped[str] = mapped_column(String(80))
    code: Mapped[str] = mapped_column(String(8))
    permissions_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    claims_json: Mapped[str | None] = mapped_column(Text)
    granted_permissions_json: Mapped[str | None] = mapped_column(Text)
    token: Mapped[str | None] = mapped_column(String(19))
    decline_reason: Mapped[str | None] = mapped_column(String(200))

    @property
    def permissions(self) -> list[str]:
        return json.loads(self.permissions_json)

    def effective_status(self, now: datetime) -> str:
        """A pending request past its expiry reads `expired` without a sweeper."""
        if self.status == "pending" and now >= self.expires_at:
            return "expired"
        return self.status


class SandboxShareToken(Model):
    __tablename__ = "sandbox_share_token"

    token: Mapped[str] = mapped_column(String(19), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("sandbox_institution.id"), index=True)
    profile: Mapped[str] = mapped_column(String(19))
    permissions_json: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def permissions(self) -> list[str]:
        return json.loads(self.permissions_json)


class SandboxVerification(Model):
    """Every verify and every fulfilled request: outcomes and cohorts read this."""

    __tablename__ = "sandbox_verification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("sandbox_institution.id"), index=True)
    token: Mapped[str] = mapped_column(String(19), index=True)
    approved: Mapped[bool] = mapped_column(Boolean)
    deny_reason: Mapped[str | None] = mapped_column(String(40))
    fsi_score: Mapped[int | None] = mapped_column(Integer)
    tier: Mapped[str | None] = mapped_column(String(1))
    request_id: Mapped[str | None] = mapped_column(String(40))
    verified_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SandboxIdempotencyRecord(Model):
    """The first answer to a keyed verify, kept byte for byte for replay."""

    __tablename__ = "sandbox_idempotency"
    __table_args__ = (UniqueConstraint("institution_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("sandbox_institution.id"))
    key: Mapped[str] = mapped_column(String(255))
    body_fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class SandboxOutcome(Model):
    __tablename__ = "sandbox_outcome"
    __table_args__ = (UniqueConstraint("institution_id", "token"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("sandbox_institution.id"), index=True)
    token: Mapped[str] = mapped_column(String(19))
    outcome: Mapped[str] = mapped_column(String(20))
    product_type: Mapped[str] = mapped_column(String(80))
    amount: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    notes: Mapped[str | None] = mapped_column(Text)
    fsi_score: Mapped[int | None] = mapped_column(Integer)
    tier: Mapped[str | None] = mapped_column(String(1))
    reported_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SandboxWebhookDelivery(DeliveryColumns, Model):
    """One event to one institution's URL: the outbox row the delivery pass works through.

    The delivery columns (event, URL, body and signature fixed at creation, attempts, lease) are the
    engine's (app/plumbing/outbound_delivery.py); the institution it is for is the sandbox's own.
    """

    __tablename__ = "sandbox_webhook_delivery"
    __table_args__ = (Index("ix_sandbox_delivery_due", "status", "next_attempt_at"),)

    institution_id: Mapped[str] = mapped_column(ForeignKey("sandbox_institution.id"), index=True)
