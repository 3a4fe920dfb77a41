"""A way to see a final state as a customer's widget draws it, for parts that must not import the widget.

The go-live checklist has to look at the real thing (the expired state's "Generate new code", a sanctions
deny in neutral words), not a copy of the widget's templates: a copy would pass while the widget broke. Yet
the checklist importing the widget would tie one blueprint to another. So the widget offers its drawing when
it is registered (`offer`), the way Flask extensions keep their state in `app.extensions`, and whoever needs
it asks the app (`drawer_of`). An app without the widget has no drawer, and says so with a LookupError.

Plain values cross the seam (a status, a deny reason, an embedding origin), so nothing below the blueprints
needs the widget's types.
"""

from __future__ import annotations

from typing import Protocol

from flask import Flask
from flask.sansio.app import App

EXTENSION = "passid_final_state_drawer"


class FinalStateDrawer(Protocol):
    def __call__(self, status: str, deny_reason: str | None = None, *, parent_origin: str | None = None) -> str:
        """The HTML an htmx poll gets for a made-up finished verification with `status` (needs a request context);
        with `parent_origin`, inside an embed on that page, with the event it receives."""
        ...


def offer(app: App, drawer: FinalStateDrawer) -> None:
    app.extensions[EXTENSION] = drawer


def drawer_of(app: Flask) -> FinalStateDrawer:
    try:
        drawer: FinalStateDrawer = app.extensions[EXTENSION]
    except KeyError:
        raise LookupError("this app has no widget to draw a final state") from None
    return drawer
