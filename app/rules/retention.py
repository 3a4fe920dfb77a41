"""Erasing a person's data: after PASSID_RETENTION_DAYS (the daily purge), or at once on request (redaction).

What "erased" means here is one rule for both. A verification keeps its record (id, times, status,
source, the institution's reference, its session, its tier, which outcome was reported, and when and
why it was erased); everything PASSID proved about the person, and everything that points back at
them, is set to NULL: claims, permissions, token, code, deny and decline reasons, recommendation,
corridor. The webhook receipts about it lose their raw body but keep their event id, so the same
signed event delivered again is still a duplicate (PASSID's signature carries no time: the event id
is the only defence against a replay). Its outcome report keeps which outcome it was and loses the
token, amount, notes and score. The links from its QR requests to its session are deleted. An analyst's
review note on it is erased (the decision, who made it and when stay). The funnel's counts (`app.rules.funnel`)
hold nothing of the person and stay; its journeys still open lose their request ids.

"One person", for a redaction: the verification named, every other verification with the same token
(a share token is one person's; the widget's row and a webhook's row of the same verify share it),
and every other verification made in the same session (the institution opened the session for one
applicant), followed until nothing new joins. Nothing wider (not the institution's reference, which
it may reuse), so a redaction never erases someone else.

Why nothing is left to recover: the erase is a committed UPDATE (or DELETE), so no page, API or query
shows it; then, on SQLite, secure_delete (app/plumbing/database.py) has zeroed the bytes the rows lost and a
TRUNCATE checkpoint empties the write-ahead log that still held the old pages. On PostgreSQL the old
row versions stay in the table files until VACUUM removes them, which runs right after each erase
(see `forget_erased_bytes` for what that does and does not guarantee).

Idempotent by construction: every step changes only rows not erased yet (a conditional UPDATE), so
two processes purging at once, or a purge and a redaction, erase each row once and count it once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, or_, select, update

from app.config import current_settings
from app.plumbing.database import db, isoformat_z, rows_changed, utcnow
from app.plumbing.encryption import lookup_hashes
from app.rules import audit, funnel, notifications, review, tombstones
from app.rules.outcomes import OutcomeReport
from app.rules.sessions import SessionRequest, VerificationSession
from app.rules.verifications import Verification
from app.rules.webhook_receipts import WebhookReceipt

log = logging.getLogger(__name__)

PURGE_JOB = "retention-purge"
PURGE_EVERY_SECONDS = 24 * 3600.0
RETENTION_REASON = "retention"  # the redaction_reason of what the purge erased
REASON_MAX = 500
# Followed this many steps at most: a share token and a session each tie a handful of rows together.
_LINK_STEPS = 10
_LOOKUP_BATCH = 500  # hashes in one IN (…), well inside every database's limit on bound parameters

# Everything a verification holds about the person; set to NULL by an erase.
_PERSONAL_COLUMNS = (
    "claims_json", "permissions_json", "token", "token_hash", "code", "code_hash", "deny_reason", "decline_reason",
    "recommendation", "corridor", "verdict_reasons", "deny_reason_hash",
)
# The tables an erase changes: what `forget_erased_bytes` cleans up after.
_TABLES = ("verification", "webhook_receipt", "outcome_report", "session_request", "review_decision",
           "verification_session", "funnel_journey")


@dataclass(frozen=True)
class Erased:
    """How many of each were erased (or, in a dry run, would be)."""

    verifications: int = 0
    webhook_bodies: int = 0
    outcome_reports: int = 0
    session_links: int = 0
    review_notes: int = 0
    sessions: int = 0  # erased by their reference (`redact_reference`)
    expired_tombstones: int = 0  # tombstones whose time was up (`purge`): deleted, nothing personal in them

    @property
    def total(self) -> int:
        return sum(getattr(self, part.name) for part in fields(self))

    def describe(self) -> str:
        """"2 verifications, 1 webhook body, 0 outcome reports, 0 session links": the CLI's line and the audit's.

        The sessions and expired tombstones are named only when there are some: most erasures reach neither.
        """
        words = {"verifications": ("verification", "verifications"),
                 "webhook_bodies": ("webhook body", "webhook bodies"),
                 "outcome_reports": ("outcome report", "outcome reports"),
                 "session_links": ("session link", "session links"),
                 "review_notes": ("review note", "review notes"),
                 "sessions": ("session", "sessions"),
                 "expired_tombstones": ("expired tombstone", "expired tombstones")}
        return ", ".join(f"{getattr(self, name)} {words[name][getattr(self, name) != 1]}" for name in words
                         if getattr(self, name) or name not in ("sessions", "expired_tombstones"))


class RedactionRefused(Exception):
    """A redaction that cannot be made; the message is one sentence for the operator."""


class UnknownResult(RedactionRefused):
    def __init__(self, result_id: str) -> None:
        super().__init__(f"no verification has the id {result_id[:80]!r}")


class UnknownReference(RedactionRefused):
    def __init__(self, reference: str) -> None:
        super().__init__(f"no verification or session has the reference {reference[:80]!r}")


class ReferenceAlreadyErased(RedactionRefused):
    def __init__(self, reference: str) -> None:
        super().__init__(f"every record of the reference {reference[:80]!r} was already erased")


class AlreadyRedacted(RedactionRefused):
    def __init__(self, row: Verification) -> None:
        assert row.redacted_at is not None
        super().__init__(f"{row.id} was already redacted on {row.redacted_at:%Y-%m-%d %H:%M} UTC "
                         f"({row.redaction_reason})")
        self.redacted_at = row.redacted_at


@dataclass(frozen=True)
class Redaction:
    """What one redaction erased: the verifications (the one named first) and the counts."""

    result_ids: tuple[str, ...]
    erased: Erased


def clean_reason(raw: str | None) -> str:
    """The reason as recorded: trimmed, 1–500 characters; ValueError with a sentence otherwise."""
    reason = " ".join((raw or "").split())
    if not 1 <= len(reason) <= REASON_MAX:
        raise ValueError(f"the reason must be 1–{REASON_MAX} characters")
    if "\x00" in reason:  # no database column takes one (PostgreSQL refuses it)
        raise ValueError("the reason cannot contain a NUL character")
    return reason


# --- redaction on request ------------------------------------------------------------------------


def redact(result_id: str, reason: str, *, actor: str | None = None) -> Redaction:
    """Erase the person behind `result_id` now, with `reason` recorded on each row and in the audit log.

    `actor`: audit.CLI_ACTOR from a command; None for the signed-in staff member.
    """
    reason = clean_reason(reason)
    row = db.session.get(Verification, result_id[:40])
    if row is None:
        raise UnknownResult(result_id)
    if row.redacted_at is not None:
        raise AlreadyRedacted(row)
    rows = _same_person([row])
    now = utcnow()
    erased = _erase_people(rows, [], now, reason)
    ids = (row.id, *sorted(found.id for found in rows if found.id != row.id))
    for erased_id in ids:
        detail = reason if erased_id == row.id else f"same person as {row.id}: {reason}"
        audit.note(audit.Action.REDACTED, subject=erased_id, detail=detail, actor=actor)
    db.session.commit()
    _wake_notifications()
    forget_erased_bytes()
    return Redaction(ids, erased)


def redact_reference(reference: str, reason: str, *, actor: str | None = None) -> Redaction:
    """Erase every record of the institution's own `reference` now: each verification and session that carries
    it, and every person they reach (by token and session, as `redact` does), with `reason` on each.

    For an erasure request the bank files under its own reference (a loan, an application): one call, and
    nothing of that customer is left in a second verification the request did not name.
    """
    reason = clean_reason(reason)
    reference = reference.strip()
    if not 1 <= len(reference) <= 64 or "\x00" in reference:
        raise UnknownReference(reference)
    sessions = list(db.session.execute(
        select(VerificationSession).where(VerificationSession.reference == reference)).scalars())
    session_ids = [session.id for session in sessions]
    named = list(db.session.execute(select(Verification).where(
        or_(Verification.reference == reference, Verification.session_id.in_(session_ids)))).scalars())
    if not sessions and not named:
        raise UnknownReference(reference)
    rows = _same_person([found for found in named if found.redacted_at is None])
    open_sessions = [session for session in sessions if session.redacted_at is None]
    if not rows and not open_sessions:
        raise ReferenceAlreadyErased(reference)
    now = utcnow()
    erased = _erase_people(rows, open_sessions, now, reason)
    ids = tuple(sorted(found.id for found in rows))
    for erased_id in (*ids, *(session.id for session in open_sessions)):
        audit.note(audit.Action.REDACTED, subject=erased_id, detail=f"every record of its reference: {reason}",
                   actor=actor)
    db.session.commit()
    _wake_notifications()
    forget_erased_bytes()
    return Redaction(ids, erased)


def _erase_people(rows: list[Verification], sessions: list[VerificationSession], now: datetime,
                  reason: str) -> Erased:
    """Erase these verifications and sessions and all that hangs on them; tombstone each erased value.

    In the caller's transaction. The tombstones (`app.rules.tombstones`) are what keeps the erase permanent: the
    token hashes it clears are what a later webhook about the person would otherwise have been matched by.
    """
    tokens = _token_hashes(rows)
    session_ids = {found.session_id for found in rows if found.session_id} | {each.id for each in sessions}
    request_ids = {found.request_id for found in rows if found.request_id} | set(db.session.execute(
        select(SessionRequest.request_id).where(SessionRequest.session_id.in_(session_ids))).scalars())
    tombstones.bury(tokens=[found.token for found in rows], request_ids=request_ids, session_ids=session_ids,
                    now=now)
    funnel.forget_requests(request_ids)  # the funnel's counts stay; an open journey loses the request id
    chosen = Verification.id.in_([found.id for found in rows])
    _announce_redacted(rows, now)
    notes = review.erase_notes(chosen)  # selected by what the next step changes: first
    return Erased(
        verifications=_erase_verifications(chosen, now, reason),
        webhook_bodies=_erase_receipts(or_(WebhookReceipt.request_id.in_(request_ids),
                                           WebhookReceipt.token_hash.in_(tokens)), now),
        outcome_reports=_erase_reports(OutcomeReport.token_hash.in_(tokens)),
        session_links=_delete_links(or_(SessionRequest.request_id.in_(request_ids),
                                        SessionRequest.session_id.in_(session_ids))),
        review_notes=notes,
        sessions=_erase_sessions(VerificationSession.id.in_([each.id for each in sessions]), now),
    )


def _same_person(rows: list[Verification]) -> list[Verification]:
    """`rows` and the unerased verifications tied to them by a token or a session, followed to the end."""
    found = {row.id: row for row in rows}
    if not found:
        return []
    for _ in range(_LINK_STEPS):
        tokens = _token_hashes(found.values())
        sessions = {each.session_id for each in found.values() if each.session_id}
        if not tokens and not sessions:
            break
        linked = db.session.execute(
            select(Verification).where(
                Verification.redacted_at.is_(None),
                or_(Verification.token_hash.in_(tokens), Verification.session_id.in_(sessions)),
            )
        ).scalars().all()
        new = [each for each in linked if each.id not in found]
        if not new:
            break
        found.update((each.id, each) for each in new)
    return list(found.values())


def _token_hashes(rows: Iterable[Verification]) -> set[str]:
    """The hashes of these rows' tokens under every key of PASSID_DATA_KEY, not only the ones stored.

    Between a new key and `rotate-data-key`, rows written before hold their token's hash under the old
    key and rows written since (PASSID's webhooks, the outcome report) under the new one: matching the
    stored hashes alone would leave half of a person behind.
    """
    return {found for each in rows if each.token for found in lookup_hashes(each.token)}


# --- retention -----------------------------------------------------------------------------------


def retention_cutoff(now: datetime | None = None, days: int | None = None) -> datetime:
    """What was stored before this moment (naive UTC) is past retention."""
    keep = days if days is not None else current_settings().retention_days
    return (now or utcnow()) - timedelta(days=keep)


def purge(*, dry_run: bool = False, actor: str = audit.SYSTEM_ACTOR, now: datetime | None = None,
          days: int | None = None) -> Erased:
    """Erase everything stored before the retention cutoff; with `dry_run`, only count it.

    A run that erased something is audited (RETENTION_PURGED, with the counts); one that found
    nothing adds no entry, so the daily job of every process does not fill the log with zeros.
    """
    now = now or utcnow()
    cutoff = retention_cutoff(now, days)
    old_rows = (Verification.created_at < cutoff) & Verification.redacted_at.is_(None)
    old_receipts = (WebhookReceipt.received_at < cutoff) & _unerased_receipt()
    old_reports = (OutcomeReport.reported_at < cutoff) & _unerased_report()
    old_links = SessionRequest.created_at < cutoff
    # Every old verification's notes, erased or not: a note written about a row erased earlier is still about a person.
    old_notes = Verification.created_at < cutoff
    if dry_run:
        erased = Erased(
            verifications=_count(select(func.count()).select_from(Verification).where(old_rows)),
            webhook_bodies=_count(select(func.count()).select_from(WebhookReceipt).where(old_receipts)),
            outcome_reports=_count(select(func.count()).select_from(OutcomeReport).where(old_reports)),
            session_links=_count(select(func.count()).select_from(SessionRequest).where(old_links)),
            review_notes=_count(select(func.count()).select_from(review.ReviewDecision).where(
                review.ReviewDecision.note.is_not(None),
                review.ReviewDecision.verification_id.in_(select(Verification.id).where(old_notes)))),
            expired_tombstones=_count(select(func.count()).select_from(tombstones.ErasureTombstone).where(
                tombstones.ErasureTombstone.keep_until <= now)),
        )
        db.session.rollback()
        return erased
    expired = tombstones.expire(now)  # before new ones are added: a tombstone from this run is never due yet
    funnel.purge_before(cutoff)  # counts, with nothing personal in them, kept as long as the rest and no longer
    _bury_old(old_rows, old_links, now)
    if notifications.configured():
        _announce_redacted(db.session.execute(
            select(Verification.id, Verification.reference, Verification.session_id).where(old_rows)).all(), now)
    notifications.forget_settled(cutoff)  # sent (or given up) events name references: kept no longer than the rest
    notes = review.erase_notes(old_notes)  # selected by what the next step changes: first
    erased = Erased(
        verifications=_erase_verifications(old_rows, now, RETENTION_REASON),
        webhook_bodies=_erase_receipts(old_receipts, now),
        outcome_reports=_erase_reports(old_reports),
        session_links=_delete_links(old_links),
        review_notes=notes,
        expired_tombstones=expired,
    )
    if erased.total:
        audit.note(audit.Action.RETENTION_PURGED, actor=actor,
                   detail=f"older than {cutoff:%Y-%m-%d %H:%M} UTC: {erased.describe()}")
    db.session.commit()
    _wake_notifications()
    if erased.total:
        forget_erased_bytes()
    return erased


def _announce_redacted(rows: Iterable[Any], now: datetime) -> None:
    """Tell the bank's backend of each erased verification, in the erase's own transaction (one event each)."""
    if not notifications.configured():
        return
    for row in rows:
        notifications.enqueue("verification.redacted", {
            "resultId": row.id, "reference": row.reference, "sessionId": row.session_id,
            "redactedAt": isoformat_z(now)}, key=f"verification.redacted:{row.id}")


def _wake_notifications() -> None:
    if notifications.configured():
        notifications.wake()


def _bury_old(old_rows: Any, old_links: Any, now: datetime) -> None:
    """Tombstone what the purge is about to erase: a retried webhook or a late outcome must not restore it."""
    rows = db.session.execute(select(Verification.token, Verification.request_id, Verification.session_id)
                              .where(old_rows)).all()
    links = db.session.execute(select(SessionRequest.request_id).where(old_links)).scalars().all()
    tombstones.bury(tokens=[row.token for row in rows], request_ids=[*(row.request_id for row in rows), *links],
                    session_ids=[row.session_id for row in rows], now=now)


def purge_job() -> None:
    """The daily background pass (every serving process runs one; see `purge` for why that is safe)."""
    erased = purge(actor=audit.SYSTEM_ACTOR)
    if erased.total:
        log.info("retention purge erased %s", erased.describe())


# --- the erasing statements ----------------------------------------------------------------------


def _count(statement: Select[Any]) -> int:
    return int(db.session.execute(statement).scalar_one())


def _unerased_receipt() -> Any:
    return WebhookReceipt.body_erased_at.is_(None) & WebhookReceipt.body.is_not(None)


def _unerased_report() -> Any:
    return OutcomeReport.token_hash.is_not(None) | OutcomeReport.amount.is_not(None)


def _erase_verifications(where: Any, now: datetime, reason: str) -> int:
    """Erase the verifications matching `where` and not erased yet; keep which outcome each had reported."""
    _keep_reported_outcomes(where)
    return rows_changed(
        update(Verification)
        .where(where, Verification.redacted_at.is_(None))
        .values(
            redacted_at=now,
            redaction_reason=reason,
            **dict.fromkeys(_PERSONAL_COLUMNS),
        )
        .execution_options(synchronize_session=False)
    )


def _keep_reported_outcomes(where: Any) -> None:
    """Copy onto each verification about to be erased the outcome reported for its token, while it has one.

    Matched in Python on the token's hash under every key (`_token_hashes`), not in SQL on the stored
    hashes: a report made after a new key was added is hashed under that key, the verification under the
    old one until `rotate-data-key` runs.
    """
    rows = db.session.execute(
        select(Verification.id, Verification.token).where(
            where, Verification.redacted_at.is_(None), Verification.reported_outcome.is_(None),
            Verification.token.is_not(None))
    ).all()
    hashes = {row.id: lookup_hashes(row.token) for row in rows}
    wanted = sorted({found for each in hashes.values() for found in each})
    outcomes: dict[str, str] = {}
    for start in range(0, len(wanted), _LOOKUP_BATCH):
        for token_hash, reported in db.session.execute(
            select(OutcomeReport.token_hash, OutcomeReport.outcome)
            .where(OutcomeReport.token_hash.in_(wanted[start:start + _LOOKUP_BATCH]))
        ).tuples():
            outcomes[token_hash or ""] = reported
    for row_id, row_hashes in hashes.items():
        outcome = next((outcomes[found] for found in row_hashes if found in outcomes), None)
        if outcome is not None:
            db.session.execute(update(Verification).where(Verification.id == row_id)
                               .values(reported_outcome=outcome).execution_options(synchronize_session=False))


def _erase_receipts(where: Any, now: datetime) -> int:
    """Drop the raw bodies (and any error text quoting them); the event id, type and times stay.

    A receipt still waiting to be handled is not handled afterwards: with no body the handler gives it up.
    """
    return rows_changed(
        update(WebhookReceipt)
        .where(where, _unerased_receipt())
        .values(body=None, token_hash=None, handling_error=None, body_erased_at=now)
        .execution_options(synchronize_session=False)
    )


def _erase_reports(where: Any) -> int:
    return rows_changed(
        update(OutcomeReport)
        .where(where, _unerased_report())
        .values(token=None, token_hash=None, amount=None, notes=None, fsi_score=None)
        .execution_options(synchronize_session=False)
    )


def _erase_sessions(where: Any, now: datetime) -> int:
    """Mark sessions erased: they take no more attempts, the API answers only that; their return URL goes."""
    return rows_changed(
        update(VerificationSession)
        .where(where, VerificationSession.redacted_at.is_(None))
        .values(redacted_at=now, return_url=None)
        .execution_options(synchronize_session=False)
    )


def _delete_links(where: Any) -> int:
    return rows_changed(delete(SessionRequest).where(where).execution_options(synchronize_session=False))


# --- leaving nothing behind ----------------------------------------------------------------------


def forget_erased_bytes(tables: Iterable[str] = _TABLES) -> None:
    """After an erase has committed: make the database files forget the bytes it removed.

    SQLite: secure_delete (set on every connection, app/plumbing/database.py) already zeroed the bytes the
    rows lost, in the new page images; the write-ahead log still holds the old images until a
    checkpoint copies the new ones into the database file, and TRUNCATE then empties the log. A
    reader holding an older snapshot makes the checkpoint wait (busy timeout) and then give up: logged,
    and the next erase or purge (or SQLite's own automatic checkpoint) completes it.

    PostgreSQL: an UPDATE leaves the old row version (the old ciphertext) in the table until VACUUM
    removes it, so each table is vacuumed at once; a plain VACUUM, not FULL, which would lock the
    tables. What VACUUM cannot reach is the server's write-ahead log, its archives and backups: those
    keep the old (encrypted) bytes until they are recycled or expire. A failure here is logged, never
    raised: the erase itself has committed, and nothing can read what it removed.
    """
    engine = db.engine
    try:
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                busy, *_ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            if busy:
                log.warning("erased rows: the write-ahead log could not be emptied yet (a reader was busy)")
        elif engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                for table in tables:
                    connection.exec_driver_sql(f"VACUUM {table}")
    except Exception:
        log.warning("erased rows: the database could not reclaim their space now", exc_info=True)
