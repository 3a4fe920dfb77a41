"""Durable, signed outbound deliveries: one engine for every table of events we POST to someone.

An event becomes one row (`DeliveryColumns`) in the same transaction as the change it reports (an
outbox), so an event is never lost and never sent for a change that rolled back. The delivery pass
claims a row with one conditional UPDATE on (attempts, lease): the attempt number is part of the
claim, so two processes can never both send the same attempt. It then checks the URL's address
again (app/plumbing/outbound_targets.py), sends to that very address with a timeout, and records the
result and the next time to try, on the configured schedule.

Two tables use it: the sandbox's webhooks (PASSID's side of the wire) and the bank's notifications
(ours). Each is its own `DeliveryEngine`: its table, its job, its policy for addresses; the wire
format (envelope, signature and headers) is PASSID's for both, so one receiver reads either.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import urllib3
from flask import current_app
from requests import certs
from sqlalchemy import DateTime, Integer, LargeBinary, String, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from app.config import current_settings
from app.plumbing.background import wake_job
from app.plumbing.database import db, isoformat_z, rows_changed, utcnow
from app.plumbing.outbound_targets import SANDBOX_POLICY, RefusedTarget, TargetPolicy, WebhookTarget, resolve_target

log = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
BATCH = 20


class DeliveryColumns:
    """The columns every delivery table has (a mixin: each table adds its own, such as whose event it is).

    The body and signature are fixed when the event is created, so every attempt sends the same
    bytes, as PASSID's contract requires of its webhooks and ours promise the same.
    """

    event_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2048))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


@dataclass(frozen=True)
class DeliveryHeaders:
    """The names of the headers each attempt carries; PASSID's by default, so one receiver reads both."""

    signature: str = "X-PASSID-Signature"
    event_id: str = "X-PASSID-Event-Id"
    event_type: str = "X-PASSID-Event-Type"
    attempt: str = "X-PASSID-Delivery-Attempt"


def envelope_body(
    event_id: str, event_type: str, data: dict[str, Any], *, livemode: bool, test: bool = False
) -> bytes:
    """The contract's envelope as the exact bytes that are signed and sent (compact, UTF-8)."""
    envelope: dict[str, Any] = {
        "id": event_id,
        "type": event_type,
        "createdAt": isoformat_z(utcnow()),
        "apiVersion": 1,
        "livemode": livemode,
        "data": data,
    }
    if test:
        envelope["test"] = True
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class DeliveryEngine:
    """The delivery pass over one table. Its schedule and timeout are read at each attempt, from the running
    app's settings, so one engine object serves every app built in a process (tests build many)."""

    model: type[DeliveryColumns]  # a mapped model with the delivery columns
    job_name: str
    user_agent: str
    schedule: Callable[[], tuple[float, ...]]  # seconds before attempt 1, 2, ...; its length is the attempt count
    timeout: Callable[[], float]  # the read timeout of one attempt, in seconds
    policy: Callable[[], TargetPolicy] = lambda: SANDBOX_POLICY  # which addresses, decided at each attempt
    headers: DeliveryHeaders = DeliveryHeaders()
    log_label: str = "delivery"
    # Told how each attempt ended ("delivered", "retrying" or "failed": given up), for the metrics.
    on_attempt: Callable[[str], None] | None = None

    def add(self, **columns: Any) -> DeliveryColumns:
        """Add a pending delivery, due now, to the session (the caller commits)."""
        row = self.model(status=PENDING, attempts=0, next_attempt_at=utcnow(), **columns)  # type: ignore[call-arg]
        db.session.add(row)
        return row

    def add_once(self, unique_column: str, **columns: Any) -> str:
        """Add a pending delivery, due now, to the caller's transaction unless one with the same value in
        `unique_column` exists; returns the event id of the one that stands (new or earlier).

        Why INSERT ... ON CONFLICT DO NOTHING rather than catching IntegrityError: a failed INSERT aborts a
        PostgreSQL transaction, and with it the caller's own work (the change the event reports).
        """
        now = utcnow()
        values = {"status": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now, **columns}
        insert = sqlite_insert if db.session.get_bind().dialect.name == "sqlite" else postgresql_insert
        db.session.execute(insert(self.model).values(**values).on_conflict_do_nothing(index_elements=[unique_column]))
        key = getattr(self.model, unique_column)
        return str(db.session.execute(db.select(self.model.event_id).where(key == columns[unique_column])).scalar_one())

    def wake(self) -> None:
        """After a commit that added deliveries: run the pass now rather than at its next tick."""
        wake_job(current_app._get_current_object(), self.job_name)  # type: ignore[attr-defined]

    def deliver_due(self) -> int:
        """One pass: send every delivery whose time has come. Returns attempts made."""
        model = self.model
        now = utcnow()
        due = db.session.execute(
            db.select(model.event_id, model.attempts)
            .where(
                model.status == PENDING,
                model.next_attempt_at <= now,
                or_(model.lease_until.is_(None), model.lease_until < now),
            )
            .order_by(model.next_attempt_at)
            .limit(BATCH)
        ).all()
        db.session.rollback()
        made = 0
        for event_id, attempts in due:
            if self._claim(event_id, attempts):
                self._attempt(event_id)
                made += 1
        return made

    def _claim(self, event_id: str, attempts: int) -> bool:
        model = self.model
        now = utcnow()
        claimed = rows_changed(
            update(model)
            .where(
                model.event_id == event_id,
                model.status == PENDING,
                model.attempts == attempts,
                or_(model.lease_until.is_(None), model.lease_until < now),
            )
            .values(lease_until=now + timedelta(seconds=current_settings().job_lease_seconds))
        )
        db.session.commit()
        return claimed == 1

    def _attempt(self, event_id: str) -> None:
        delivery = db.session.get(self.model, event_id)
        if delivery is None:
            return
        attempt_number = delivery.attempts + 1
        timeout = self.timeout()
        status_code: int | None = None
        error: str | None = None
        try:
            # Checked again now, not only when it was set: the name may resolve elsewhere by now.
            target = resolve_target(delivery.url, self.policy())
        except RefusedTarget as refused:
            self._record_attempt(delivery, attempt_number, None, f"refused: {refused.short}")
            return
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            self.headers.signature: delivery.signature,
            self.headers.event_id: delivery.event_id,
            self.headers.event_type: delivery.event_type,
            self.headers.attempt: str(attempt_number),
        }
        try:
            status_code = post_to_checked_address(target, delivery.body, headers, timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        self._record_attempt(delivery, attempt_number, status_code, error)

    def _record_attempt(
        self, delivery: DeliveryColumns, attempt_number: int, status_code: int | None, error: str | None
    ) -> None:
        schedule: tuple[float, ...] = self.schedule()
        delivery.attempts = attempt_number
        delivery.last_status_code = status_code
        delivery.last_error = error
        delivery.lease_until = None
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = DELIVERED
            delivery.next_attempt_at = None
            result = DELIVERED
        elif attempt_number >= len(schedule):
            delivery.status = FAILED
            delivery.next_attempt_at = None
            result = FAILED
        else:
            delivery.next_attempt_at = utcnow() + timedelta(seconds=schedule[attempt_number])
            result = "retrying"
        db.session.commit()
        if self.on_attempt is not None:
            self.on_attempt(result)
        # No event id or URL in the line (ids stay out of logs); the delivery log in the database has them.
        log.info("%s %s attempt %d: %s", self.log_label, delivery.event_type, attempt_number,
                 status_code or (error or "").split(":")[0])


def post_to_checked_address(target: WebhookTarget, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` to an address `target` was checked with (the first that takes a connection); the status."""
    return request_checked_address(target, "POST", body, headers, timeout)


def request_checked_address(
    target: WebhookTarget, method: str, body: bytes | None, headers: dict[str, str], timeout: float
) -> int:
    """Send one request to an address `target` was checked with (the first that takes a connection); the status.

    Why urllib3 rather than requests: requests would resolve the host again, and a name can answer
    differently the second time (DNS rebinding). The connection goes to the checked address; the
    Host header, TLS SNI and the certificate check still use the name from the URL. No redirects
    are followed, no proxy from the environment is used, and nothing is retried here (the
    delivery schedule retries).
    """
    for address in target.addresses[:-1]:
        try:
            return _send_to(address, target, method, body, headers, timeout)
        except urllib3.exceptions.NewConnectionError:
            continue  # e.g. ::1 first while the receiver listens on 127.0.0.1 only: next checked address
    return _send_to(target.addresses[-1], target, method, body, headers, timeout)


def _send_to(
    address: str, target: WebhookTarget, method: str, body: bytes | None, headers: dict[str, str], timeout: float
) -> int:
    options: dict[str, Any] = {
        "port": target.port,
        "timeout": urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
        "retries": False,
        "maxsize": 1,
    }
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address, server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("REQUESTS_CA_BUNDLE") or certs.where(), **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, **options)
    try:
        answer = pool.urlopen(
            method, target.request_target, body=body, headers={**headers, "Host": target.host_header},
            redirect=False, assert_same_host=False, preload_content=False,
        )
        answer.close()  # the status is all we keep; the body is never read
        return answer.status
    finally:
        pool.close()
