"""What PASSID does for each bridge call: requests, share tokens and verify.

Functions here take plain values, change rows in the session and return the
contract's answer as a dict; routes parse and commit. Every state change that
two callers could race for (fulfil, decline, consume a token) is one
conditional UPDATE whose row count says who won.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from app.plumbing.database import db, isoformat_z, rows_changed, utcnow
from app.sandbox import webhooks
from app.sandbox.errors import ApiError
from app.sandbox.identifiers import (
    display_code,
    new_api_key,
    new_id,
    new_request_code,
    new_share_token,
)
from app.sandbox.models import (
    SandboxInstitution,
    SandboxRequest,
    SandboxShareToken,
    SandboxVerification,
)
from app.sandbox.profiles import DENY_MESSAGES, DENY_TOKENS, PERMISSIONS, PROFILES

PROOF_TYPE = "passid.share.v1"
_GONE_CODES = {
    "expired": ("REQUEST_EXPIRED", "This verification request has expired."),
    "completed": ("REQUEST_COMPLETED", "This verification request was already completed."),
    "declined": ("REQUEST_DECLINED", "This verification request was declined."),
}


# --- workspace -------------------------------------------------------------

def onboard(institution_name: str, *, demo_slot: str | None = None) -> SandboxInstitution:
    institution = SandboxInstitution(
        id=new_id("inst"),
        name=institution_name,
        sandbox_key=new_api_key("sandbox"),
        live_key=new_api_key("live"),
        demo_slot=demo_slot,
    )
    db.session.add(institution)
    return institution


def onboarding_answer(institution: SandboxInstitution) -> dict[str, Any]:
    return {
        "institutionId": institution.id,
        "institutionName": institution.name,
        "sandboxKey": institution.sandbox_key,
        "liveKey": institution.live_key,
    }


# --- bridge requests (QR flow) ----------------------------------------------

def create_request(
    institution: SandboxInstitution,
    *,
    institution_name: str | None,
    permissions: list[str] | None,
    ttl_seconds: int | None,
) -> SandboxRequest:
    now = utcnow()
    request_row = SandboxRequest(
        id=new_id("req"),
        institution_id=institution.id,
        institution_name=institution_name or institution.name,
        code=_unused_code(now),
        permissions_json=json.dumps(permissions or list(PERMISSIONS)),
        status="pending",
        expires_at=now + timedelta(seconds=ttl_seconds or 600),
        created_at=now,
    )
    db.session.add(request_row)
    return request_row


def _unused_code(now: datetime) -> str:
    """A code no live pending request holds; 31^8 codes make a clash rare."""
    for _ in range(20):
        code = new_request_code()
        clash = db.session.execute(
            db.select(SandboxRequest.id).where(
                SandboxRequest.code == code,
                SandboxRequest.status == "pending",
                SandboxRequest.expires_at > now,
            )
        ).first()
        if clash is None:
            return code
    raise ApiError(503, "CODE_SPACE_EXHAUSTED", "Could not allocate a request code; try again.")


def created_answer(request_row: SandboxRequest) -> dict[str, Any]:
    return {
        "requestId": request_row.id,
        "code": display_code(request_row.code),
        "deepLink": f"passid://verify-request?r={request_row.id}&i={request_row.institution_id}",
        "expiresAt": isoformat_z(request_row.expires_at),
        "permissions": request_row.permissions,
        "status": "pending",
    }


def institution_view(request_row: SandboxRequest) -> dict[str, Any]:
    status = request_row.effective_status(utcnow())
    answer: dict[str, Any] = {
        "requestId": request_row.id,
        "status": status,
        "code": display_code(request_row.code),
        "expiresAt": isoformat_z(request_row.expires_at),
        "permissions": request_row.permissions,
        "institutionName": request_row.institution_name,
    }
    if status == "completed":
        answer["claims"] = json.loads(request_row.claims_json or "{}")
        answer["verifiedAt"] = isoformat_z(request_row.verified_at or request_row.created_at)
        answer["token"] = request_row.token
    elif status == "declined":
        answer["declineReason"] = request_row.decline_reason
    return answer


def public_view(request_row: SandboxRequest) -> dict[str, Any]:
    """What the customer's app may see: never claims; 410 once it is no longer pending."""
    now = utcnow()
    raise_if_gone(request_row, now)
    return {
        "requestId": request_row.id,
        "status": "pending",
        "institutionName": request_row.institution_name,
        "permissions": request_row.permissions,
        "expiresAt": isoformat_z(request_row.expires_at),
        "secondsRemaining": max(0, int((request_row.expires_at - now).total_seconds())),
    }


def raise_if_gone(request_row: SandboxRequest, now: datetime) -> None:
    status = request_row.effective_status(now)
    if status != "pending":
        code, message = _GONE_CODES[status]
        raise ApiError(410, code, message)


def find_request(request_id: str, institution: SandboxInstitution | None = None) -> SandboxRequest:
    # A NUL can be in no id, and PostgreSQL refuses it in a query: not found, not a 500.
    request_row = None if "\x00" in request_id else db.session.get(SandboxRequest, request_id)
    if request_row is None or (institution is not None and request_row.institution_id != institution.id):
        raise ApiError(404, "NOT_FOUND", "No such verification request.")
    return request_row


def find_request_by_code(code: str) -> SandboxRequest:
    request_row = db.session.execute(
        db.select(SandboxRequest).filter_by(code=code).order_by(SandboxRequest.created_at.desc()).limit(1)
    ).scalar_one_or_none()
    if request_row is None:
        raise ApiError(404, "NOT_FOUND", "No verification request has this code.")
    return request_row


def fulfil_request(request_row: SandboxRequest, profile_token: str, permissions: list[str] | None) -> None:
    """Share & Verify: mint a token for the institution, complete the request, send the event."""
    now = utcnow()
    raise_if_gone(request_row, now)
    profile = PROFILES[profile_token]
    granted = permissions or request_row.permissions
    claims = profile.claims_for(granted)
    token = new_share_token()
    won = rows_changed(
        update(SandboxRequest)
        .where(
            SandboxRequest.id == request_row.id,
            SandboxRequest.status == "pending",
            SandboxRequest.expires_at > now,
        )
        .values(
            status="completed",
            claims_json=json.dumps(claims),
            granted_permissions_json=json.dumps(granted),
            token=token,
            verified_at=now,
        )
    )
    if won != 1:
        db.session.rollback()
        raise_if_gone(find_request(request_row.id), utcnow())
        raise ApiError(410, "REQUEST_COMPLETED", "This verification request was already completed.")
    db.session.add(
        SandboxShareToken(
            token=token,
            institution_id=request_row.institution_id,
            profile=profile_token,
            permissions_json=json.dumps(granted),
            expires_at=now + timedelta(seconds=900),
            created_at=now,
            used_at=now,
        )
    )
    _record_approval(request_row.institution_id, token, profile_token, now, request_id=request_row.id)
    institution = db.session.get_one(SandboxInstitution, request_row.institution_id)
    data = _approval(token, profile_token, granted, now)
    data.pop("verified")
    data["requestId"] = request_row.id
    webhooks.enqueue_event(institution, "verification.completed", data)


def decline_request(request_row: SandboxRequest, reason: str | None) -> None:
    now = utcnow()
    raise_if_gone(request_row, now)
    won = rows_changed(
        update(SandboxRequest)
        .where(
            SandboxRequest.id == request_row.id,
            SandboxRequest.status == "pending",
            SandboxRequest.expires_at > now,
        )
        .values(status="declined", decline_reason=reason or "Declined by the customer")
    )
    if won != 1:
        db.session.rollback()
        raise_if_gone(find_request(request_row.id), utcnow())
        raise ApiError(410, "REQUEST_DECLINED", "This verification request was declined.")


# --- share tokens and verify (manual flow) ----------------------------------

def mint_share_token(
    profile_token: str, institution: SandboxInstitution, permissions: list[str] | None, ttl_seconds: int | None
) -> SandboxShareToken:
    now = utcnow()
    share = SandboxShareToken(
        token=new_share_token(),
        institution_id=institution.id,
        profile=profile_token,
        permissions_json=json.dumps(permissions or list(PERMISSIONS)),
        expires_at=now + timedelta(seconds=ttl_seconds or 900),
        created_at=now,
    )
    db.session.add(share)
    return share


def revoke_share_token(profile_token: str, token: str) -> None:
    share = db.session.get(SandboxShareToken, token)
    if share is None or share.profile != profile_token:
        raise ApiError(404, "NOT_FOUND", "No such share token in this wallet.")
    if share.revoked_at is None:
        share.revoked_at = utcnow()


def verify_token(institution: SandboxInstitution, token: str) -> dict[str, Any]:
    """The verify answer for a normalised token, with its side effects in the session."""
    now = utcnow()
    if token in PROFILES:
        answer = _approval(token, token, list(PERMISSIONS), now)
        _record_approval(institution.id, token, token, now)
    elif token in DENY_TOKENS:
        answer = _denial(institution, token, DENY_TOKENS[token], now)
    else:
        answer = _verify_one_time(institution, token, now)
    event_type = "verification.completed" if answer["verified"] else "verification.denied"
    event_data = dict(answer)
    event_data.pop("verified")
    if not answer["verified"]:
        event_data = {"token": token, "deny_reason": answer["denyReason"], "message": answer["message"]}
    webhooks.enqueue_event(institution, event_type, event_data)
    return answer


def _verify_one_time(institution: SandboxInstitution, token: str, now: datetime) -> dict[str, Any]:
    share = db.session.get(SandboxShareToken, token)
    if share is None:
        return _denial(institution, token, "TOKEN_NOT_FOUND", now)
    if share.institution_id != institution.id:
        return _denial(institution, token, "INSTITUTION_MISMATCH", now)
    if share.revoked_at is not None:
        return _denial(institution, token, "TOKEN_REVOKED", now)
    if share.used_at is not None:
        return _denial(institution, token, "TOKEN_ALREADY_USED", now)
    if share.expires_at <= now:
        return _denial(institution, token, "TOKEN_EXPIRED", now)
    consumed = rows_changed(
        update(SandboxShareToken)
        .where(
            SandboxShareToken.token == token,
            SandboxShareToken.used_at.is_(None),
            SandboxShareToken.revoked_at.is_(None),
        )
        .values(used_at=now)
    )
    if consumed != 1:  # another verify won the race for this one-time token
        return _denial(institution, token, "TOKEN_ALREADY_USED", now)
    _record_approval(institution.id, token, share.profile, now)
    return _approval(token, share.profile, share.permissions, now)


def _approval(token: str, profile_token: str, permissions: list[str], now: datetime) -> dict[str, Any]:
    profile = PROFILES[profile_token]
    return {
        "verified": True,
        "token": token,
        "claims": profile.claims_for(permissions),
        "permissions": [p for p in PERMISSIONS if p in permissions],
        "proofType": PROOF_TYPE,
        "verifiedAt": isoformat_z(now),
        "corridor": profile.corridor,
        "recommendation": profile.recommendation,
    }


def _denial(institution: SandboxInstitution, token: str, reason: str, now: datetime) -> dict[str, Any]:
    db.session.add(
        SandboxVerification(
            institution_id=institution.id, token=token, approved=False, deny_reason=reason, verified_at=now
        )
    )
    return {"verified": False, "token": token, "denyReason": reason, "message": DENY_MESSAGES[reason]}


def _record_approval(
    institution_id: str, token: str, profile_token: str, now: datetime, *, request_id: str | None = None
) -> None:
    profile = PROFILES[profile_token]
    db.session.add(
        SandboxVerification(
            institution_id=institution_id,
            token=token,
            approved=True,
            fsi_score=profile.fsi_score,
            tier=profile.tier,
            request_id=request_id,
            verified_at=now,
        )
    )
