"""Every JSON request body the app reads goes through one bounded parser (`app.passid.bounded_json`).

Flask parses `request.get_json()` with the app's JSON provider, so the bound is set there once: the
sessions API, the embedded sandbox and any endpoint added later get it without remembering to. A body
nested past the bound (a thousand `[`) is then bad JSON like any other, which each endpoint already
refuses with its 400, instead of a RecursionError and a 500 with a traceback.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from app.passid.bounded_json import loads_bounded


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's own JSON, whose `loads` is the bounded parser (a ValueError, never a RecursionError)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        # NaN and Infinity parse (as Python's json does), so an endpoint's own field check names the field that
        # holds one, as the sandbox's contract asks; only the depth is bounded here.
        kwargs.setdefault("parse_constant", float)
        return loads_bounded(s, **kwargs)


def init_json_bodies(app: Flask) -> None:
    app.json = BoundedJSONProvider(app)
