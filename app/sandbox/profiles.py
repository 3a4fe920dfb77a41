"""The sandbox's deterministic people: three fixed profiles and five deny tokens.

Same token, same claims, every time — that is what lets an institution write
tests against the sandbox (the guide's "Sandbox" section).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PERMISSIONS: tuple[str, ...] = (
    "full_score",
    "income_verified",
    "identity_verified",
    "sanctions_clear",
    "payment_reliability",
    "savings_consistency",
    "fraud_risk",
)

# Which claim fields each permission (claim group) releases.
PERMISSION_FIELDS: dict[str, tuple[str, ...]] = {
    "full_score": ("fsi_score", "fsi_low", "fsi_high", "tier", "confidence", "p_stable"),
    "income_verified": ("income_verified", "income_band"),
    "identity_verified": ("identity_verified",),
    "sanctions_clear": ("sanctions_clear",),
    "payment_reliability": ("payment_reliability",),
    "savings_consistency": ("savings_consistency",),
    "fraud_risk": ("fraud_risk",),
}

EXPECTED_DEFAULT_RATE: dict[str, float] = {"A": 0.02, "B": 0.05, "C": 0.1, "D": 0.18, "E": 0.3}
TIERS: tuple[str, ...] = tuple(EXPECTED_DEFAULT_RATE)


@dataclass(frozen=True)
class Profile:
    token: str
    display_name: str
    corridor: str
    recommendation: str
    claims: dict[str, Any]

    def claims_for(self, permissions: list[str]) -> dict[str, Any]:
        """Only the fields the granted permissions release, in a stable order."""
        return {
            name: self.claims[name]
            for permission in PERMISSIONS
            if permission in permissions
            for name in PERMISSION_FIELDS[permission]
        }

    @property
    def tier(self) -> str:
        return self.claims["tier"]

    @property
    def fsi_score(self) -> int:
        return self.claims["fsi_score"]


PROFILES: dict[str, Profile] = {
    profile.token: profile
    for profile in (
        Profile(
            token="KE8V-3TXY-Z72L",
            display_name="Amani (Kenya → UK), tier A",
            corridor="KE→GB",
            recommendation="approve",
            claims={
                "fsi_score": 812, "fsi_low": 791, "fsi_high": 833, "tier": "A",
                "confidence": 0.93, "p_stable": 0.96,
                "income_verified": True, "income_band": "GBP 40k-60k",
                "identity_verified": True, "sanctions_clear": True,
                "payment_reliability": 0.97, "savings_consistency": 88, "fraud_risk": "low",
            },
        ),
        Profile(
            token="NG4M-XQRS-T88W",
            display_name="Chidi (Nigeria → US), tier B",
            corridor="NG→US",
            recommendation="approve",
            claims={
                "fsi_score": 743, "fsi_low": 719, "fsi_high": 767, "tier": "B",
                "confidence": 0.88, "p_stable": 0.9,
                "income_verified": True, "income_band": "USD 50k-75k",
                "identity_verified": True, "sanctions_clear": True,
                "payment_reliability": 0.91, "savings_consistency": 74, "fraud_risk": "low",
            },
        ),
        Profile(
            token="GH2P-ABCD-56KL",
            display_name="Kofi (Ghana → EU), tier C",
            corridor="GH→EU",
            recommendation="review",
            claims={
                "fsi_score": 671, "fsi_low": 638, "fsi_high": 704, "tier": "C",
                "confidence": 0.74, "p_stable": 0.78,
                "income_verified": True, "income_band": "EUR 25k-40k",
                "identity_verified": False, "sanctions_clear": True,
                "payment_reliability": 0.82, "savings_consistency": 58, "fraud_risk": "medium",
            },
        ),
    )
}

DENY_TOKENS: dict[str, str] = {
    "TEST-EXPD-0001": "TOKEN_EXPIRED",
    "TEST-RVKD-0002": "TOKEN_REVOKED",
    "TEST-USED-0003": "TOKEN_ALREADY_USED",
    "TEST-MISM-0004": "INSTITUTION_MISMATCH",
    "TEST-SANC-0005": "HARD_DENY_SANCTIONS_MATCH",
}

DENY_MESSAGES: dict[str, str] = {
    "TOKEN_NOT_FOUND": "Token does not exist — ask the customer to generate a new share.",
    "TOKEN_EXPIRED": "Token TTL elapsed — ask the customer to generate a fresh share.",
    "TOKEN_REVOKED": "The customer revoked this token from their wallet.",
    "TOKEN_ALREADY_USED": "This one-time token was already consumed.",
    "INSTITUTION_MISMATCH": "This token was issued for a different institution.",
    "HARD_DENY_SANCTIONS_MATCH": "Customer is on an OFAC/EU/UN watchlist — do not proceed.",
}
