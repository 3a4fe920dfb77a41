"""Which name the customer's PASSID app shows ("<name> asks to verify you"): only one the institution listed.

Shared by the widget (a query override, public: an unlisted name falls back to the configured one) and the
backend API (a session's `institutionName`, from the institution's own server: an unlisted one is refused).
"""

from __future__ import annotations

from collections.abc import Iterable


def allowed_institution_name(requested: str | None, configured: str, also_allowed: Iterable[str]) -> str:
    """The requested name if the institution listed it, in its listed spelling; otherwise the configured
    name. Nobody can make the phone show a name the institution did not choose."""
    return listed_institution_name(requested, configured, also_allowed) or configured


def listed_institution_name(requested: str | None, configured: str, also_allowed: Iterable[str]) -> str | None:
    """The listed spelling of `requested` (ignoring case and spacing) if the institution listed it, else None."""
    wanted = comparable_name(requested or "")
    for name in (configured, *also_allowed):
        if wanted and comparable_name(name) == wanted:
            return name
    return None


def comparable_name(name: str) -> str:
    return " ".join(name.split()).casefold()
