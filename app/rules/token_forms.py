"""The token form that the widget and the branch counter share: the posted token, its nonce, its key.

Both render a form with a random nonce (`n`) next to the token field; the nonce and the token
together fix the verify's `Idempotency-Key`, so a double submit or a retry of the same form replays
PASSID's first answer instead of spending the customer's one-time token twice.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import request

from app.config import current_settings
from app.passid import normalise_token


def submitted_token() -> tuple[str | None, str | None]:
    """The posted token in normal form and the form's nonce; None for either that is unusable."""
    token = normalise_token(request.form.get("token", "")[:100])
    nonce = request.form.get("n", "")
    return token, valid_nonce(nonce)


def valid_nonce(nonce: str) -> str | None:
    """The form nonce if it is one we could have issued (16–64 characters), else None: a new form then."""
    return nonce if 16 <= len(nonce) <= 64 else None


def idempotency_key(nonce: str, token: str) -> str:
    """Fixed per rendered form and token: a double submit or a retry replays, a new token does not.

    Keyed with the app secret so nobody can predict another form's key.
    """
    digest = hmac.new(
        current_settings().secret_key.encode(), f"{nonce}|{token}".encode(), hashlib.sha256
    ).hexdigest()
    return f"pvw-{digest[:40]}"
