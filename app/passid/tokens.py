"""Token input as people type it, in the contract's normal form.

The server normalises too; doing it here lets a form reject a typo without
a round trip, and gives a stable form to derive an Idempotency-Key from.
"""

from __future__ import annotations

import re

_BODY = re.compile(r"^[A-Z0-9]{4}(?:-?[A-Z0-9]{4}){2,3}$")


def normalise_token(raw: str) -> str | None:
    """`passid-ke8v 3txy z72l` → `KE8V-3TXY-Z72L`; None when it cannot be a token."""
    text = raw.strip().upper()
    if text.startswith("PASSID-"):
        text = text[len("PASSID-") :]
    text = text.replace(" ", "")
    if not _BODY.match(text):
        return None
    chars = text.replace("-", "")
    return "-".join(chars[i : i + 4] for i in range(0, len(chars), 4))
