"""Ids, codes and tokens: how they are made and how user input is normalised.

Ids carry 128 random bits (the contract asks for at least 96) so nobody can
guess another institution's request. Codes and tokens use an alphabet
without 0/O/1/I/L because people read them aloud and type them.
"""

from __future__ import annotations

import re
import secrets

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_TOKEN_BODY = re.compile(r"^[A-Z0-9]{4}(?:-?[A-Z0-9]{4}){2,3}$")
_CODE_BODY = re.compile(r"^[A-Z0-9]{4}-?[A-Z0-9]{4}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(16).replace('-', 'x').replace('_', 'y')}"


def new_api_key(kind: str) -> str:
    return f"sk_{kind}_{secrets.token_urlsafe(24)}"


def _random_groups(groups: int) -> str:
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(4 * groups))
    return "-".join(chars[i : i + 4] for i in range(0, len(chars), 4))


def new_request_code() -> str:
    """Eight characters, stored without the dash."""
    return _random_groups(2).replace("-", "")


def new_share_token() -> str:
    """Normal form: four groups of four, no `PASSID-` prefix."""
    return _random_groups(4)


def display_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalise_token(raw: str) -> str | None:
    """`passid-ke8v 3txy z72l` → `KE8V-3TXY-Z72L`; None when it cannot be a token.

    The contract's rule: trim, upper-case, drop a leading `PASSID-`, drop
    spaces; 3 or 4 groups of four `[A-Z0-9]`, dashes optional.
    """
    text = raw.strip().upper()
    if text.startswith("PASSID-"):
        text = text[len("PASSID-") :]
    elif text.startswith("PASSID "):
        text = text[len("PASSID ") :]
    text = text.replace(" ", "")
    if not _TOKEN_BODY.match(text):
        return None
    chars = text.replace("-", "")
    return "-".join(chars[i : i + 4] for i in range(0, len(chars), 4))


def normalise_code(raw: str) -> str | None:
    """`ab3x-7yqm`, `AB3X7YQM` → `AB3X7YQM` (the stored form)."""
    text = raw.strip().upper().replace(" ", "")
    if not _CODE_BODY.match(text):
        return None
    return text.replace("-", "")
