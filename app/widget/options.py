"""The React component's props, as configuration with per-embed overrides.

`institutionName`, `permissions` and `theme` may be overridden per embed by
query parameter, and so may what the React component has no prop for: `locale`,
`colorScheme`, `radius` and `font` (each from a fixed list); `baseUrl` and the API key are configuration only. Anything
invalid falls back to the configured value rather than failing the page: an
embed snippet with a typo should still verify customers.

The query string is public, so an override may choose only among what the
institution configured: the name the customer's PASSID app shows ("<name> asks
to verify you") must be one of PASSID_INSTITUTION_NAMES, or it is the configured
PASSID_INSTITUTION_NAME; the page that receives result messages must be on the
embed allow-list or be our own origin, which comes from PASSID_PUBLIC_URL when
set and is never taken from a Host header we have not checked (TRUSTED_HOSTS).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from app.config import ALL_PERMISSIONS, COLOR_SCHEMES, DEFAULT_THEME_PRIMARY, THEME_FONTS, THEME_RADII, current_settings
from app.plumbing.i18n import supported_locale
from app.plumbing.own_origin import own_origin
from app.rules.institution_names import allowed_institution_name

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")

# The page backgrounds of static/widget/widget.css (`--bg`), light and dark: keep them in step.
LIGHT_BACKGROUND = "#ffffff"
DARK_BACKGROUND = "#121418"
TEXT_CONTRAST = 4.5  # WCAG 1.4.3, normal text
UI_CONTRAST = 3.0  # WCAG 1.4.11, focus rings and component borders


@dataclass(frozen=True)
class WidgetOptions:
    institution_name: str
    permissions: tuple[str, ...]
    theme_primary: str
    parent_origin: str | None  # where postMessage may go; None outside an allowed embed
    # A session the institution's server created (`app.rules.sessions`): its name and permissions are locked.
    session_id: str | None = None
    locale: str | None = None  # None: the browser's Accept-Language, then PASSID_DEFAULT_LOCALE (app.plumbing.i18n)
    color_scheme: str = "auto"  # auto follows prefers-color-scheme
    radius: str = "medium"
    font: str = "system"

    @property
    def theme_text(self) -> str:
        """Black or white, whichever reads better on the primary colour (WCAG contrast)."""
        return text_colour_on(self.theme_primary)

    def theme_accents(self) -> dict[str, str]:
        """The primary colour as text (links) and as a focus ring or border on each scheme's background.

        A bank may configure any colour, yellow or navy; where the primary sits on the page background
        rather than under its own text, it is shifted just enough to keep WCAG AA in both schemes.
        """
        return {
            "link-light": readable_on(self.theme_primary, LIGHT_BACKGROUND, TEXT_CONTRAST),
            "ring-light": readable_on(self.theme_primary, LIGHT_BACKGROUND, UI_CONTRAST),
            "link-dark": readable_on(self.theme_primary, DARK_BACKGROUND, TEXT_CONTRAST),
            "ring-dark": readable_on(self.theme_primary, DARK_BACKGROUND, UI_CONTRAST),
        }

    def as_query(self) -> dict[str, str]:
        query = {
            "institutionName": self.institution_name,
            "permissions": ",".join(self.permissions),
            "theme": self.theme_primary,
            "colorScheme": self.color_scheme,
            "radius": self.radius,
            "font": self.font,
        }
        if self.locale:
            query["locale"] = self.locale
        if self.parent_origin:
            query["origin"] = self.parent_origin
        if self.session_id:
            query["session"] = self.session_id
        return query


def options_from(values: Mapping[str, str]) -> WidgetOptions:
    """Read overrides from a query string or form; invalid ones fall back to configuration."""
    settings = current_settings()
    name = allowed_institution_name(
        values.get("institutionName"), settings.institution_name, settings.institution_names
    )
    requested = tuple(p.strip() for p in (values.get("permissions") or "").split(",") if p.strip())
    if requested and all(p in ALL_PERMISSIONS for p in requested):
        permissions = tuple(p for p in ALL_PERMISSIONS if p in requested)
    else:
        permissions = settings.permissions
    theme = parse_hex_colour(values.get("theme")) or settings.theme_primary or DEFAULT_THEME_PRIMARY
    origin = (values.get("origin") or "").strip()
    # Our own origin may always embed the widget (branch mode's QR flow does).
    allowed = (*settings.allowed_embed_origins, own_origin())
    return WidgetOptions(
        institution_name=name,
        permissions=permissions,
        theme_primary=theme,
        parent_origin=origin if origin in allowed else None,
        locale=supported_locale(values.get("locale")),
        color_scheme=_pick(values.get("colorScheme"), COLOR_SCHEMES, settings.theme_color_scheme),
        radius=_pick(values.get("radius"), THEME_RADII, settings.theme_radius),
        font=_pick(values.get("font"), THEME_FONTS, settings.theme_font),
    )


def handle_query(options: WidgetOptions) -> dict[str, str]:
    """`options.as_query()` less what configuration says anyway: what the signed `o` handle carries.

    `options_from` reads a missing key as its configured value, so the same options come back, and the handle
    that every form, poll and first visit carries shrinks from a couple of hundred characters to a few dozen
    for an embed that overrides nothing (the first visit's weight has a budget: bench/weight.py)."""
    configured = options_from({})
    query = options.as_query()
    defaults = configured.as_query()
    return {key: value for key, value in query.items() if defaults.get(key) != value}


def _pick(requested: str | None, choices: tuple[str, ...], configured: str) -> str:
    value = (requested or "").strip().lower()
    return value if value in choices else configured


def locked_to_session(values: Mapping[str, str], *, session_id: str, institution_name: str,
                      permissions: tuple[str, ...], locale: str | None = None) -> WidgetOptions:
    """A session's options: its name and permissions come from the institution's server, whatever the
    query says, and so does its locale when it set one; only the look (theme), where events go (an
    allowed origin) and, without a session locale, the embed's language still come from the embed."""
    options = options_from(values)
    return replace(options, institution_name=institution_name, permissions=permissions, session_id=session_id,
                   locale=locale or options.locale)


def parse_hex_colour(raw: str | None) -> str | None:
    match = _HEX.match((raw or "").strip())
    return f"#{match.group(1).lower()}" if match else None


def _luminance(hex_colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def text_colour_on(hex_colour: str) -> str:
    luminance = _luminance(hex_colour)
    on_white = 1.05 / (luminance + 0.05)
    on_black = (luminance + 0.05) / 0.05
    return "#ffffff" if on_white >= on_black else "#000000"


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours, from 1 (same) to 21 (black on white)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def readable_on(colour: str, background: str, ratio: float) -> str:
    """`colour` itself when it reaches `ratio` against `background`; otherwise the least shift of it toward
    black (on a light background) or white (on a dark one) that does, so the brand hue stays recognisable."""
    target = 0 if text_colour_on(background) == "#000000" else 255
    channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    for step in range(101):  # step 100 is pure black or white: at least 15:1 on either background
        mix = step / 100
        shifted = "#" + "".join(f"{round(c + (target - c) * mix):02x}" for c in channels)
        if contrast_ratio(shifted, background) >= ratio:
            return shifted
    return "#000000" if target == 0 else "#ffffff"
