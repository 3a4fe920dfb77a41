"""Customer-facing text goes through gettext from day one, so it can be translated.

Translations live in `app/translations/<locale>/LC_MESSAGES/`; English is the
source language and needs none.
"""

from __future__ import annotations

from flask import Flask, request
from flask_babel import Babel, get_locale

SUPPORTED_LOCALES = ("en",)

babel = Babel()


def _select_locale() -> str:
    return request.accept_languages.best_match(SUPPORTED_LOCALES) or SUPPORTED_LOCALES[0]


def init_i18n(app: Flask) -> None:
    babel.init_app(app, locale_selector=_select_locale, default_translation_directories="translations")
    app.jinja_env.globals["get_locale"] = get_locale
