"""Which claim fields each permission releases (the contract's "Claims" table).

An institution keeps only what it asked for: a manual token may carry more
permissions than this embed requested, and the extra claims are dropped
before they are stored, shown or sent anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CLAIM_FIELDS: dict[str, tuple[str, ...]] = {
    "full_score": ("fsi_score", "fsi_low", "fsi_high", "tier", "confidence", "p_stable"),
    "income_verified": ("income_verified", "income_band"),
    "identity_verified": ("identity_verified",),
    "sanctions_clear": ("sanctions_clear",),
    "payment_reliability": ("payment_reliability",),
    "savings_consistency": ("savings_consistency",),
    "fraud_risk": ("fraud_risk",),
}


def restrict_claims(claims: dict[str, Any] | None, permissions: Iterable[str]) -> dict[str, Any]:
    allowed = {name for permission in permissions for name in CLAIM_FIELDS.get(str(permission), ())}
    return {name: value for name, value in (claims or {}).items() if name in allowed}
