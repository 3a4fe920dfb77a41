"""A verification's claims in one line for staff (the console's history, `flask passid verify` and `session`).

Score and tier, identity, fraud risk: the three things a reviewer scans for, in the staff member's language.
"""

from __future__ import annotations

from typing import Any

from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _

# PASSID's `fraud_risk` claim, as whole phrases: the adjective agrees with "risk" in the staff languages
# ("risque de fraude élevé", "riesgo de fraude alto"). Any other value is shown as it came.
FRAUD_RISK_PHRASES: dict[str, LazyString] = {
    "low": lazy_gettext("fraud risk low"),
    "medium": lazy_gettext("fraud risk medium"),
    "high": lazy_gettext("fraud risk high"),
}

def claims_summary(claims: dict[str, Any] | None) -> str:
    """Score and tier, identity, fraud risk: the three things a reviewer scans for."""
    if not claims:
        return ""
    parts = []
    score, tier = claims.get("fsi_score"), claims.get("tier")
    if score is not None and tier:
        parts.append(_("%(score)s · tier %(tier)s", score=score, tier=tier))
    elif score is not None:
        parts.append(_("score %(score)s", score=score))
    elif tier:
        parts.append(_("tier %(tier)s", tier=tier))
    if "identity_verified" in claims:
        parts.append(_("identity verified") if claims["identity_verified"] else _("identity NOT verified"))
    if "fraud_risk" in claims:
        risk = claims["fraud_risk"]
        phrase = FRAUD_RISK_PHRASES.get(risk) if isinstance(risk, str) else None
        parts.append(str(phrase) if phrase is not None else _("fraud risk %(risk)s", risk=risk))
    return " · ".join(parts)
