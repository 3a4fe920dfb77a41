"""Which language a page speaks, and how a template says so.

Two catalogues in `app/translations/<locale>/LC_MESSAGES/`, merged at run time:
`messages` holds every string a customer can see (the widget, the hosted session
page, the sandbox phone, the error pages a customer reaches) and is complete in all
ten `LOCALES`; `staff` holds the branch counter, the console and the sign-in pages,
complete in `STAFF_LOCALES`. A staff page speaks only a language its whole catalogue
is in, so a counter never shows half Arabic, half English.

The locale is chosen per request, first match wins:
1. what the page's own state chose: a server-created session's `locale`, or the
   `locale` an embed asked for, carried in the widget's signed options (`prefer`);
2. `?locale=` on the URL (embed.js sends its `data-locale` this way);
3. the browser's `Accept-Language`;
4. `PASSID_DEFAULT_LOCALE`.

Nothing here uses a cookie: the widget lives in third-party iframes.

The pseudo-locale (`en-XA`, only with `PASSID_PSEUDO_LOCALE` on) is for layout tests:
every string about 40% longer and accented (`app/pseudo_locale.py` builds it). Babel
knows no `en_XA`, so its catalogue sits under `en_001` (English, world), whose dates
and numbers are English ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from babel import Locale
from flask import Flask, g, has_request_context, request
from flask_babel import Babel, get_locale

from app.config import LOCALES, current_settings

__all__ = ["LOCALES", "STAFF_LOCALES", "chosen_locale", "prefer", "supported_locale"]
STAFF_LOCALES = ("en", "fr", "de", "es")
RIGHT_TO_LEFT = frozenset({"ar"})
SOURCE_LOCALE = "en"
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"

PSEUDO_LOCALE = "en-XA"  # what a URL and <html lang> say
PSEUDO_CATALOGUE = "en_001"  # where its catalogue lives (a locale Babel knows)

babel = Babel()


def supported_locale(raw: str | None, choices: Iterable[str] = LOCALES) -> str | None:
    """`raw` ("fr", "FR", "fr-CA", "pt_BR") as one of `choices`, or None; the pseudo-locale when enabled."""
    value = (raw or "").strip().replace("_", "-")
    if not value or len(value) > 35:
        return None
    if value.casefold() == PSEUDO_LOCALE.casefold() and current_settings().pseudo_locale:
        return PSEUDO_LOCALE
    language = value.split("-", 1)[0].casefold()
    return language if language in choices else None


def prefer(locale: str | None) -> None:
    """A part that knows better than the URL (a session's locale, the widget's signed options) says so
    before anything is translated in this request."""
    if locale:
        g.passid_locale = locale


def prefer_lazily(locale: Callable[[], str | None]) -> None:
    """As `prefer`, with the locale worked out only if something in this request is translated (the widget's
    signed options are unsigned for it: a pending poll's empty answer has nothing to translate)."""
    g.passid_locale_source = locale


def preferred_locale() -> str | None:
    """What a part said it prefers (`prefer`, else `prefer_lazily`'s, worked out now and kept)."""
    said: str | None = getattr(g, "passid_locale", None)
    if said is None:
        source = g.pop("passid_locale_source", None)
        if source is not None:
            said = source()
            if said:
                g.passid_locale = said
    return said


STAFF_BLUEPRINTS = frozenset({"staff", "console", "branch"})


def locales_of_this_request() -> tuple[str, ...]:
    """The languages this request may speak. A staff page is known by its blueprint, so every answer it
    gives speaks a staff language, even one made before its views run (a stale form's CSRF answer)."""
    return STAFF_LOCALES if request.blueprint in STAFF_BLUEPRINTS else LOCALES


def accepted_locale(choices: tuple[str, ...]) -> str | None:
    """The browser's first language, by its order of preference, that we speak; a region counts as its
    language ("de-DE, en;q=0.5" is German: Werkzeug's best_match would take the exact "en")."""
    for tag, _quality in request.accept_languages:  # already sorted by quality
        locale = supported_locale(tag, choices)
        if locale is not None and locale != PSEUDO_LOCALE:
            return locale
    return None


def chosen_locale() -> str:
    """The request's locale, by the order in the module docstring."""
    choices = locales_of_this_request()
    preferred = supported_locale(preferred_locale(), choices)
    if preferred:
        return preferred
    asked = supported_locale(request.args.get("locale"), choices)
    if asked:
        return asked
    accepted = accepted_locale(choices)
    if accepted:
        return accepted
    default = current_settings().default_locale
    return default if default in choices else SOURCE_LOCALE


def _babel_locale() -> str:
    if not has_request_context():  # a CLI command (`flask staff …`) speaks English to the operator's terminal
        return SOURCE_LOCALE
    locale = chosen_locale()
    return PSEUDO_CATALOGUE if locale == PSEUDO_LOCALE else locale


def request_locale() -> Locale:
    """The request's Babel locale for formatting, or the source language's outside a request (CLI, unit tests)."""
    return get_locale() or Locale.parse(SOURCE_LOCALE)


def html_lang() -> str:
    """`<html lang>`: the locale as a BCP 47 tag."""
    locale = str(get_locale() or SOURCE_LOCALE)
    return PSEUDO_LOCALE if locale == PSEUDO_CATALOGUE else locale.replace("_", "-")


def text_direction() -> str:
    """`<html dir>`: "rtl" for Arabic (the QR code and the code stay left-to-right: widget.css)."""
    locale: Locale | None = get_locale()
    return "rtl" if locale is not None and locale.language in RIGHT_TO_LEFT else "ltr"


def init_i18n(app: Flask) -> None:
    # Both catalogues from the same directory, merged: templates and code just call `_`. An absolute
    # path, because the standalone sandbox's app (`app.sandbox.create_app`) has another root.
    translations = str(TRANSLATIONS)
    babel.init_app(app, locale_selector=_babel_locale, default_domain="messages;staff",
                   default_translation_directories=f"{translations};{translations}")
    app.jinja_env.globals.update(get_locale=get_locale, html_lang=html_lang, text_direction=text_direction)
