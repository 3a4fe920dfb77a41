"""The running app's settings, typed: the one `Settings` its factory loaded, kept on the app.

Why on the app and not a module global: tests build several apps in one process, each from its own
environment; each must read its own values. Why not Flask's config: a string key read back from it is
untyped (`float(app.config["…"])` everywhere) and a misspelt one fails only when that line runs, while a
misspelt attribute fails mypy. Flask's config keeps the keys Flask and its extensions read themselves.
"""

from __future__ import annotations

from flask import Flask, current_app
from flask.sansio.app import App

from app.config.settings import Settings

_EXTENSION = "passid_settings"


def install_settings(app: Flask, settings: Settings) -> None:
    """Give `app` its settings: Flask's view of them in `app.config`, the typed object beside it.

    The only way settings reach an app, so the two views never disagree: a test's overrides go into the
    environment `load_settings` reads, and from there into both.
    """
    app.config.update(settings.to_flask())
    app.extensions[_EXTENSION] = settings
    app.jinja_env.globals["settings"] = settings  # templates read them typed too (`settings.theme_font`)


def settings_of(app: App) -> Settings:
    """The settings `app` was built with (at start-up, before any request or app context exists)."""
    try:
        settings: Settings = app.extensions[_EXTENSION]
    except KeyError:
        raise RuntimeError(f"app {app.name!r} was built without install_settings: it has no settings") from None
    return settings


def current_settings() -> Settings:
    """The settings of the app handling this request, job or command."""
    return settings_of(current_app._get_current_object())  # type: ignore[attr-defined]
