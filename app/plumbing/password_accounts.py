"""Which staff accounts still sign in with a password, for parts that must not import staff sign-in.

The go-live checklist asks it (local passwords limited to break-glass under single sign-on), yet the checklist
and staff sign-in are siblings: neither imports the other. So staff sign-in offers its answer when it is set up
(`offer`), as the widget offers its final-state drawing (`app.plumbing.final_state_drawing`), and the checklist
asks the app (`password_accounts_of`). Plain names cross the seam.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.sansio.app import App

EXTENSION = "passid_password_accounts"

Lister = Callable[[], list[str]]


def offer(app: App, lister: Lister) -> None:
    app.extensions[EXTENSION] = lister


def password_accounts_of(app: Flask) -> tuple[str, ...] | None:
    """Enabled accounts, other than the break-glass one, that sign in with a password (needs an app context);
    None for an app without staff sign-in."""
    lister: Lister | None = app.extensions.get(EXTENSION)
    return None if lister is None else tuple(lister())
