"""Who is calling: an institution by its key, or a sandbox user by a JWT.

User JWTs stand in for the PASSID app's login; they are signed with PyJWT
(HS256) and short-lived, and carry the profile whose claims they unlock.
"""

from __future__ import annotations

from datetime import timedelta

import jwt
from flask import request

from app.config import current_settings
from app.plumbing.database import db, utcnow
from app.sandbox.errors import ApiError
from app.sandbox.models import SandboxInstitution
from app.sandbox.profiles import PROFILES

JWT_ISSUER = "passid-sandbox"
JWT_AUDIENCE = "passid-app"
JWT_LIFETIME = timedelta(minutes=30)


def current_institution() -> SandboxInstitution:
    key = request.headers.get("X-Institution-Key", "").strip()
    if not key:
        raise ApiError(401, "UNAUTHORIZED", "Missing X-Institution-Key header.")
    if not key.startswith("sk_sandbox_"):
        raise ApiError(401, "UNAUTHORIZED", "This sandbox accepts only sandbox keys (sk_sandbox_…).")
    institution = db.session.execute(
        db.select(SandboxInstitution).filter_by(sandbox_key=key)
    ).scalar_one_or_none()
    if institution is None:
        raise ApiError(401, "UNAUTHORIZED", "Unknown institution key.")
    return institution


def issue_user_jwt(profile: str) -> str:
    now = utcnow()
    claims = {
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": profile,
        "iat": now,
        "exp": now + JWT_LIFETIME,
    }
    return jwt.encode(claims, current_settings().sandbox_jwt_secret, algorithm="HS256")


def current_user_profile() -> str:
    """The profile token of the user whose bearer JWT came with this request."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "UNAUTHORIZED", "Missing Authorization: Bearer <user JWT>.")
    try:
        claims = jwt.decode(
            token.strip(),
            current_settings().sandbox_jwt_secret,
            algorithms=["HS256"],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
        )
    except jwt.PyJWTError as error:
        raise ApiError(401, "UNAUTHORIZED", f"Invalid user JWT: {error}.") from None
    profile = claims.get("sub")
    if profile not in PROFILES:
        raise ApiError(401, "UNAUTHORIZED", "The user JWT names no sandbox profile.")
    return profile
