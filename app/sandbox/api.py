"""The sandbox's JSON API: one route per row of `spec/passid-api.md`.

Routes parse and authorise, call `bridge`/`outcomes`, commit, and answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date

from flask import Response, request
from sqlalchemy.exc import IntegrityError

from app.config import current_settings
from app.plumbing.database import db, isoformat_z, utcnow
from app.sandbox import bridge, outcomes, webhooks
from app.sandbox.auth import current_institution, current_user_profile, issue_user_jwt
from app.sandbox.blueprint import bp
from app.sandbox.errors import ApiError, json_response, raw_json_response, validation_error
from app.sandbox.identifiers import normalise_code, normalise_token
from app.sandbox.limits import onboard_limit, sandbox_limiter
from app.sandbox.models import SandboxIdempotencyRecord, SandboxInstitution
from app.sandbox.profiles import PROFILES
from app.sandbox.validation import (
    json_body,
    optional_int,
    optional_number,
    optional_string,
    permissions_field,
    required_string,
)
from app.sandbox.webhook_targets import RefusedTarget, resolve_webhook_target

_PRINTABLE = re.compile(r"^[\x20-\x7e]{1,255}$")
_URL = re.compile(r"^https?://[^\s/]+[^\s]*$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _min_ttl() -> int:
    return current_settings().sandbox_min_ttl_seconds


# --- workspace ---------------------------------------------------------------

@bp.post("/api/onboard")
@sandbox_limiter.limit(onboard_limit)
def onboard() -> Response:
    body = json_body()
    name = required_string(body, "institutionName", max_length=80)
    institution = bridge.onboard(name)
    db.session.commit()
    return json_response(bridge.onboarding_answer(institution), 201)


@bp.put("/api/institution/webhook")
def set_webhook() -> Response:
    institution = current_institution()
    body = json_body()
    url = required_string(body, "url", max_length=2048)
    if not _URL.match(url):
        raise validation_error("url", "url must be an http:// or https:// address.")
    secret = required_string(body, "secret", min_length=16, max_length=256)
    try:  # last, as it may ask DNS; checked again at each delivery, as DNS may change in between
        resolve_webhook_target(url)
    except RefusedTarget as refused:
        raise validation_error("url", str(refused)) from None
    institution.webhook_url = url
    institution.webhook_secret = secret
    db.session.commit()
    return json_response({"url": url, "secretSet": True})


@bp.get("/api/institution/webhook")
def get_webhook() -> Response:
    institution = current_institution()
    return json_response({"url": institution.webhook_url, "secretSet": bool(institution.webhook_secret)})


@bp.post("/api/institution/webhook/test")
def send_test_webhook() -> Response:
    institution = current_institution()
    if not institution.webhook_url:
        raise validation_error("url", "Register a webhook URL first (PUT /api/institution/webhook).")
    profile = PROFILES["KE8V-3TXY-Z72L"]
    data = {
        "token": profile.token,
        "claims": profile.claims_for(list(bridge.PERMISSIONS)),
        "permissions": list(bridge.PERMISSIONS),
        "proofType": bridge.PROOF_TYPE,
        "verifiedAt": isoformat_z(utcnow()),
        "corridor": profile.corridor,
        "recommendation": profile.recommendation,
    }
    event_id = webhooks.enqueue_event(institution, "verification.completed", data, test=True)
    webhooks.commit_and_wake()
    return json_response({"eventId": event_id}, 202)


@bp.get("/api/institution/webhook/deliveries")
def list_deliveries() -> Response:
    institution = current_institution()
    return json_response({"deliveries": webhooks.deliveries_for(institution)})


# --- bridge requests -----------------------------------------------------------

@bp.post("/api/bridge/request")
def create_request() -> Response:
    institution = current_institution()
    body = json_body(required=False)
    request_row = bridge.create_request(
        institution,
        institution_name=optional_string(body, "institutionName", max_length=80),
        permissions=permissions_field(body),
        ttl_seconds=optional_int(body, "ttlSeconds", minimum=_min_ttl(), maximum=3600),
    )
    db.session.commit()
    return json_response(bridge.created_answer(request_row), 201)


@bp.get("/api/bridge/request/<request_id>")
def get_request(request_id: str) -> Response:
    institution = current_institution()
    return json_response(bridge.institution_view(bridge.find_request(request_id, institution)))


@bp.get("/api/bridge/request/<request_id>/public")
def get_public_request(request_id: str) -> Response:
    return json_response(bridge.public_view(bridge.find_request(request_id)))


@bp.get("/api/bridge/request/code/<code>")
def get_request_by_code(code: str) -> Response:
    normal = normalise_code(code)
    if normal is None:
        raise validation_error("code", "A code is 8 letters and digits, like AB3X-7YQM.")
    return json_response(bridge.public_view(bridge.find_request_by_code(normal)))


@bp.post("/api/bridge/request/<request_id>/fulfill")
def fulfil_request(request_id: str) -> Response:
    profile = current_user_profile()
    request_row = bridge.find_request(request_id)
    body = json_body(required=False)
    bridge.raise_if_gone(request_row, utcnow())
    permissions = permissions_field(body, allowed=request_row.permissions)
    bridge.fulfil_request(request_row, profile, permissions)
    webhooks.commit_and_wake()
    return json_response({"requestId": request_row.id, "status": "completed"})


@bp.post("/api/bridge/request/<request_id>/decline")
def decline_request(request_id: str) -> Response:
    current_user_profile()
    request_row = bridge.find_request(request_id)
    body = json_body(required=False)
    reason = optional_string(body, "reason", max_length=200)
    bridge.decline_request(request_row, reason)
    db.session.commit()
    return json_response({"requestId": request_row.id, "status": "declined"})


# --- share tokens and verify ------------------------------------------------------

@bp.post("/api/sandbox/login")
def sandbox_login() -> Response:
    body = json_body()
    profile = body.get("profile")
    normal = normalise_token(profile) if isinstance(profile, str) else None
    if normal not in PROFILES:
        raise validation_error("profile", f"profile must be one of {', '.join(PROFILES)}.")
    return json_response({"jwt": issue_user_jwt(normal)})


@bp.post("/api/bridge/share")
def mint_share_token() -> Response:
    profile = current_user_profile()
    body = json_body()
    institution_id = required_string(body, "institutionId", max_length=64)
    institution = db.session.get(SandboxInstitution, institution_id)
    if institution is None:
        raise validation_error("institutionId", "No institution has this id.")
    share = bridge.mint_share_token(
        profile,
        institution,
        permissions_field(body),
        optional_int(body, "ttlSeconds", minimum=_min_ttl(), maximum=86400),
    )
    db.session.commit()
    return json_response(
        {"token": f"PASSID-{share.token}", "expiresAt": isoformat_z(share.expires_at)}, 201
    )


@bp.delete("/api/bridge/share/<token>")
def revoke_share_token(token: str) -> Response:
    profile = current_user_profile()
    normal = normalise_token(token)
    if normal is None:
        raise validation_error("token", "That is not a PASSID token.")
    bridge.revoke_share_token(profile, normal)
    db.session.commit()
    return Response(status=204)


@bp.post("/api/bridge/verify")
def verify() -> Response:
    institution = current_institution()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _PRINTABLE.match(key):
        raise validation_error("Idempotency-Key", "Idempotency-Key must be 1–255 printable characters.")
    body = json_body()
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    if key is not None:
        earlier = _idempotent_answer(institution, key, fingerprint)
        if earlier is not None:
            return earlier
    raw_token = body.get("token")
    token = normalise_token(raw_token) if isinstance(raw_token, str) else None
    if token is None:
        raise validation_error("token", "token must be a PASSID token like PASSID-KE8V-3TXY-Z72L.")
    answer = json.dumps(bridge.verify_token(institution, token), separators=(",", ":"), ensure_ascii=False)
    answer_bytes = answer.encode()
    if key is not None:
        db.session.add(
            SandboxIdempotencyRecord(
                institution_id=institution.id,
                key=key,
                body_fingerprint=fingerprint,
                status_code=200,
                response_body=answer_bytes,
            )
        )
    try:
        webhooks.commit_and_wake()
    except IntegrityError:
        # The same key raced us and won: our effects roll back, theirs stand.
        db.session.rollback()
        earlier = _idempotent_answer(institution, key or "", fingerprint)
        if earlier is None:
            raise
        return earlier
    return raw_json_response(answer_bytes, 200)


def _idempotent_answer(institution: SandboxInstitution, key: str, fingerprint: str) -> Response | None:
    record = db.session.execute(
        db.select(SandboxIdempotencyRecord).filter_by(institution_id=institution.id, key=key)
    ).scalar_one_or_none()
    if record is None or (utcnow() - record.created_at).total_seconds() > 86400:
        if record is not None:  # older than 24 h: the key is free again
            db.session.delete(record)
            db.session.flush()
        return None
    if record.body_fingerprint != fingerprint:
        raise ApiError(
            422, "IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used with a different request body."
        )
    return raw_json_response(record.response_body, record.status_code, {"Idempotent-Replayed": "true"})


# --- outcomes and cohorts ------------------------------------------------------------

@bp.post("/api/bridge/outcome")
def report_outcome() -> Response:
    institution = current_institution()
    body = json_body()
    raw_token = required_string(body, "token", max_length=64)
    token = normalise_token(raw_token)
    if token is None:
        raise validation_error("token", "token must be a PASSID token like KE8V-3TXY-Z72L.")
    outcome = required_string(body, "outcome", max_length=20)
    if outcome not in outcomes.OUTCOMES:
        raise validation_error("outcome", f"outcome must be one of {', '.join(outcomes.OUTCOMES)}.")
    product_type = required_string(body, "productType", max_length=80)
    amount = optional_number(body, "amount", minimum=0)
    if amount is None:
        raise validation_error("amount", "amount is required.")
    currency = (optional_string(body, "currency", max_length=3, min_length=3) or "USD").upper()
    if not _CURRENCY.match(currency):
        raise validation_error("currency", "currency must be an ISO-4217 code like USD.")
    notes = optional_string(body, "notes", max_length=1000)
    if outcome == "other" and not notes:
        raise validation_error("notes", "notes are required when the outcome is 'other'.")
    answer = outcomes.report_outcome(
        institution,
        token=token,
        outcome=outcome,
        product_type=product_type,
        amount=amount,
        currency=currency,
        notes=notes,
    )
    webhooks.commit_and_wake()
    return json_response(answer, 201)


@bp.get("/api/bridge/cohorts")
def cohorts() -> Response:
    institution = current_institution()
    from_date = _date_param("from")
    to_date = _date_param("to")
    if from_date and to_date and from_date > to_date:
        raise validation_error("from", "from must not be after to.")
    product_type = request.args.get("productType") or None
    if product_type is not None and (len(product_type) > 80 or "\x00" in product_type):
        raise validation_error("productType", "productType must be at most 80 characters, without NUL.")
    return json_response(
        outcomes.cohorts(institution, from_date=from_date, to_date=to_date, product_type=product_type)
    )


def _date_param(name: str) -> date | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        if not _DATE.match(raw):  # fromisoformat also takes `20261125` and `2026-W48-3`
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise validation_error(name, f"{name} must be a date like 2026-11-25.") from None
