"""Passkeys (WebAuthn, by the `webauthn` library): registered from a staff member's own page, used at sign-in.

The relying party is this app's own origin (`own_origin`: PASSID_PUBLIC_URL, or the host the request
named, which Flask has already checked against PASSID_TRUSTED_HOSTS); its id is that origin's host name.
A browser refuses passkeys for an IP address, so on `http://127.0.0.1:5000` the page says to open
`http://localhost:5000` instead (`usable_here`), and anywhere but localhost they need HTTPS.

Each ceremony's challenge is kept in the signed session cookie with its purpose, its account and its
time, taken out (so used once) by the answer, and good for CHALLENGE_LIFETIME. A passkey also keeps the
hash of the last challenge it answered, so the same answer sent again with a copied cookie is refused;
its signature counter, where the authenticator keeps one, must move forward.

A second factor proves possession: user verification (PIN, fingerprint) is asked for where the
authenticator can do it, and not required.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import session
from flask_babel import gettext as _
from sqlalchemy import select

from app.config import current_settings
from app.plumbing.database import db, utcnow
from app.plumbing.own_origin import own_origin
from app.rules import audit
from app.staff.factors import FactorRefused, StaffPasskey, own_actor, passkey_detail
from app.staff.models import StaffUser

if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

CHALLENGE = "passkey_challenge"  # in the session
CHALLENGE_LIFETIME_SECONDS = 300
TIMEOUT_MS = 120_000
MAX_NAME_LENGTH = 80
# `webauthn` is imported by the functions that run a ceremony, not with this module: with the certificate and
# ASN.1 libraries it loads for attestation it costs about 7 MB in every worker, and only a staff member's passkey
# page or sign-in step uses it (a worker serving the widget never does).


def _malformed() -> tuple[type[Exception], ...]:
    """What an answer that is not even a credential fails with (the JSON shapes `webauthn` parses)."""
    from webauthn.helpers.exceptions import WebAuthnException

    return (WebAuthnException, ValueError, TypeError, KeyError)


def relying_party() -> tuple[str, str]:
    """(relying party id, expected origin): this app's own origin and its host name."""
    origin = own_origin()
    return urlsplit(origin).hostname or "", origin


def usable_here() -> bool:
    """Whether a browser will make passkeys here: not for an IP address (use a host name, such as localhost)."""
    host, _origin = relying_party()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(host)
    return False


def _user_handle(user: StaffUser) -> bytes:
    """The opaque id the authenticator files the account under: stable per account, no name in it."""
    return hashlib.sha256(f"passid-staff-user:{user.id}".encode()).digest()


def _keep_challenge(challenge: bytes, purpose: str, user: StaffUser) -> None:
    from webauthn.helpers import bytes_to_base64url

    session[CHALLENGE] = {"challenge": bytes_to_base64url(challenge), "purpose": purpose, "account": user.id,
                          "at": int(time.time())}


def _take_challenge(purpose: str, user: StaffUser) -> bytes:
    """The challenge this account was sent for `purpose`, once; FactorRefused when none is (still) waiting."""
    from webauthn.helpers import base64url_to_bytes

    kept = session.pop(CHALLENGE, None)
    fresh = (isinstance(kept, dict) and kept.get("purpose") == purpose and kept.get("account") == user.id
             and isinstance(kept.get("at"), int) and 0 <= time.time() - kept["at"] <= CHALLENGE_LIFETIME_SECONDS)
    if not fresh:
        raise FactorRefused(_("The passkey request has expired. Try again."))
    return base64url_to_bytes(kept["challenge"])


def _descriptors(passkeys: list[StaffPasskey]) -> list[PublicKeyCredentialDescriptor]:
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    found = []
    for passkey in passkeys:
        transports = []
        for value in (passkey.transports or "").split(","):
            try:
                transports.append(AuthenticatorTransport(value))
            except ValueError:
                continue
        found.append(PublicKeyCredentialDescriptor(id=base64url_to_bytes(passkey.credential_id),
                                                   transports=transports or None))
    return found


def _passkeys(user: StaffUser) -> list[StaffPasskey]:
    return list(db.session.execute(select(StaffPasskey).where(StaffPasskey.staff_id == user.id)).scalars())


# --- registration ---------------------------------------------------------------------------------


def registration_options(user: StaffUser) -> str:
    """The options for `navigator.credentials.create`, as JSON; the challenge waits in the session."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    rp_id, _origin = relying_party()
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=f"{current_settings().institution_name} · PASSID Verify",
        user_name=user.username,
        user_id=_user_handle(user),
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=_descriptors(_passkeys(user)),  # the same authenticator twice adds nothing
    )
    _keep_challenge(options.challenge, "register", user)
    return options_to_json(options)


def default_name(user: StaffUser) -> str:
    return _("Passkey %(num)d", num=len(_passkeys(user)) + 1)


def register(user: StaffUser, credential: Any, name: str) -> StaffPasskey:
    """Check the browser's answer to `registration_options` and keep the passkey (committed, audited)."""
    from webauthn import verify_registration_response
    from webauthn.helpers import bytes_to_base64url

    expected_challenge = _take_challenge("register", user)
    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(credential=credential, expected_challenge=expected_challenge,
                                                expected_rp_id=rp_id, expected_origin=origin)
    except _malformed():
        raise FactorRefused(_("The browser's answer could not be checked, so no passkey was added.")) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    taken = db.session.execute(select(StaffPasskey.id).where(StaffPasskey.credential_id == credential_id)).first()
    if taken:
        raise FactorRefused(_("This passkey is registered already."))
    listed = credential.get("response", {}).get("transports") if isinstance(credential, dict) else None
    transports = ",".join(t for t in listed if isinstance(t, str))[:200] if isinstance(listed, list) else None
    passkey = StaffPasskey(
        staff_id=user.id, credential_id=credential_id, public_key=verified.credential_public_key,
        sign_count=verified.sign_count, created_at=utcnow(), transports=transports,
        name=" ".join(name.split())[:MAX_NAME_LENGTH] or default_name(user),
    )
    db.session.add(passkey)
    audit.note(audit.Action.SECOND_FACTOR_ENROLLED, subject=user.username, actor=own_actor(user),
               detail=passkey_detail(passkey.name))
    db.session.commit()
    return passkey


# --- sign-in --------------------------------------------------------------------------------------


def authentication_options(user: StaffUser) -> str:
    """The options for `navigator.credentials.get`, naming this account's passkeys; the challenge waits."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    rp_id, _origin = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id, timeout=TIMEOUT_MS, allow_credentials=_descriptors(_passkeys(user)),
        user_verification=UserVerificationRequirement.PREFERRED)
    _keep_challenge(options.challenge, "sign_in", user)
    return options_to_json(options)


class PasskeyFailed(FactorRefused):
    """A sign-in answer refused; `why` says why, in English, for the audit log."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


def authenticate(user: StaffUser, credential: Any) -> StaffPasskey:
    """Check the browser's answer to `authentication_options`: the passkey it used, or PasskeyFailed.

    The passkey's counter and last challenge move on in the session, committed with the sign-in.
    """
    from webauthn import verify_authentication_response

    refused = _("The passkey was not accepted. Try again, or use another way to sign in.")
    try:
        expected_challenge = _take_challenge("sign_in", user)
    except FactorRefused as expired:
        raise PasskeyFailed(str(expired), "no challenge waiting (expired or used)") from None
    credential_id = credential.get("id") if isinstance(credential, dict) else None
    passkey = db.session.execute(select(StaffPasskey).where(
        StaffPasskey.staff_id == user.id, StaffPasskey.credential_id == str(credential_id)[:1400])).scalar_one_or_none()
    if passkey is None:
        raise PasskeyFailed(refused, "not a passkey of this account")
    challenge_hash = hashlib.sha256(expected_challenge).hexdigest()
    if passkey.last_challenge_hash == challenge_hash:
        raise PasskeyFailed(refused, "an answer already used")
    rp_id, origin = relying_party()
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=expected_challenge, expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count)
    except _malformed():
        raise PasskeyFailed(refused, "signature, origin or counter did not hold") from None
    passkey.sign_count, passkey.last_used_at = verified.new_sign_count, utcnow()
    passkey.last_challenge_hash = challenge_hash
    return passkey


def remove(user: StaffUser, passkey_id: int) -> StaffPasskey | None:
    """Delete one of the account's passkeys (the caller audits and commits); None when it has no such passkey."""
    passkey = db.session.get(StaffPasskey, passkey_id)
    if passkey is None or passkey.staff_id != user.id:
        return None
    db.session.delete(passkey)
    return passkey
