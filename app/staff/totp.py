"""Authenticator-app codes (TOTP, RFC 6238, by `pyotp`): enrolment with a QR code, checking a code once.

The secret is made here, shown once as a QR code (drawn by `qrcode`, as the widget's are) and as text,
and stored encrypted with the data keyring (`StaffTotp.secret`). It counts as a factor only after the
staff member types a code from their app (`confirm`): a mistyped secret must not lock anyone out.

A code is accepted for its own 30-second step and one step either side (phones' clocks drift), and only
once: the step of the last code accepted is kept, and a code of that step or an earlier one is refused
as replayed, in SQL (`UPDATE … WHERE last_step < step`), so two requests racing with one code cannot
both win.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Literal

import pyotp
import qrcode
from flask_babel import gettext as _
from markupsafe import Markup
from pyotp.utils import strings_equal
from qrcode.image.svg import SvgPathImage
from sqlalchemy import or_, update

from app.config import current_settings
from app.plumbing.database import db, rows_changed, utcnow
from app.rules import audit
from app.staff.factors import AUTHENTICATOR_APP, FactorRefused, StaffTotp, own_actor
from app.staff.models import StaffUser

DIGITS = 6
VALID_WINDOW = 1  # steps either side of now
# An unconfirmed secret is offered again for this long (a reload shows the same QR), then replaced.
UNCONFIRMED_LIFETIME = timedelta(minutes=30)
_CODE = re.compile(r"^\d{6}$")

# The clock codes are checked against: time.time, which tests move to another 30-second step.
clock: Callable[[], float] = time.time

Check = Literal["ok", "wrong", "replayed"]


def normalised(typed: str | None) -> str | None:
    """Six digits, as typed with or without spaces and dashes ("123 456"); None for anything else."""
    code = re.sub(r"[\s-]", "", (typed or "")[:20])
    return code if _CODE.match(code) else None


def confirmed_row(user: StaffUser) -> StaffTotp | None:
    row = db.session.get(StaffTotp, user.id)
    return row if row is not None and row.confirmed_at is not None else None


def start(user: StaffUser) -> str:
    """The secret to show for enrolment: the unconfirmed one still fresh, or a new one (committed)."""
    row = db.session.get(StaffTotp, user.id)
    if row is not None and row.confirmed_at is not None:
        raise FactorRefused(_("An authenticator app is already set up: remove it first to set up another."))
    if row is not None and row.created_at > utcnow() - UNCONFIRMED_LIFETIME:
        return row.secret
    if row is None:
        row = StaffTotp(staff_id=user.id)
        db.session.add(row)
    row.secret, row.created_at, row.last_step = pyotp.random_base32(), utcnow(), None
    db.session.commit()
    return row.secret


def provisioning_uri(user: StaffUser, secret: str) -> str:
    """The `otpauth://` address the QR code holds: the institution as issuer, the staff name as the account."""
    issuer = f"{current_settings().institution_name} staff"
    return pyotp.TOTP(secret, digits=DIGITS).provisioning_uri(name=user.username, issuer_name=issuer)


def qr_svg(uri: str) -> Markup:
    """The QR code as inline SVG: drawn on our server, so the secret goes to no image service."""
    image = qrcode.make(uri, image_factory=SvgPathImage, box_size=8, border=2)
    svg = image.to_string(encoding="unicode")
    # qrcode writes an XML declaration first, which has no place inside HTML.
    return Markup(svg[svg.index("<svg"):])  # noqa: S704 (qrcode's own markup of a URI we made)


def grouped(secret: str) -> str:
    """The secret as people type it into an app without a camera: groups of four."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _step_of(secret: str, code: str) -> int | None:
    """The 30-second step `code` belongs to, within the window around now; None when it belongs to none."""
    otp = pyotp.TOTP(secret, digits=DIGITS)
    now_step = otp.timecode(clock())
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        if strings_equal(code, otp.generate_otp(step)):
            return step
    return None


def confirm(user: StaffUser, typed: str | None) -> bool:
    """Enrolment's last step: a code from the app proves it holds the secret. Committed with its audit entry."""
    row = db.session.get(StaffTotp, user.id)
    code = normalised(typed)
    if row is None or row.confirmed_at is not None or code is None:
        return False
    step = _step_of(row.secret, code)
    if step is None:
        return False
    row.confirmed_at, row.last_step = utcnow(), step  # the code typed here is spent too
    audit.note(audit.Action.SECOND_FACTOR_ENROLLED, subject=user.username, detail=AUTHENTICATOR_APP,
               actor=own_actor(user))
    db.session.commit()
    return True


def check(user: StaffUser, typed: str | None) -> Check:
    """A sign-in code: "ok" (and spent), "wrong", or "replayed" (right, but its step was used already)."""
    row = confirmed_row(user)
    code = normalised(typed)
    if row is None or code is None:
        return "wrong"
    step = _step_of(row.secret, code)
    if step is None:
        return "wrong"
    spent = rows_changed(
        update(StaffTotp)
        .where(StaffTotp.staff_id == user.id, or_(StaffTotp.last_step.is_(None), StaffTotp.last_step < step))
        .values(last_step=step)
    )
    db.session.commit()
    return "ok" if spent == 1 else "replayed"


def remove(user: StaffUser) -> bool:
    """Forget the account's authenticator app (the caller audits and commits); False when it had none."""
    row = db.session.get(StaffTotp, user.id)
    if row is None:
        return False
    db.session.delete(row)
    return row.confirmed_at is not None
