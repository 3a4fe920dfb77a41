"""Stopping a staff request with a page of our own: one way, so every such answer is HTML.

Werkzeug's `Response` (which these modules import for their type hints) is text/plain by default: a
403 built with it showed staff the page's raw markup. `stop_with_page` builds Flask's, text/html.
"""

from __future__ import annotations

from typing import Any, NoReturn

from flask import Response, abort, render_template


def stop_with_page(status: int, template: str, **context: Any) -> NoReturn:
    """Abort the request with `template` rendered, as HTML, with `status`."""
    abort(Response(render_template(template, **context), status=status, mimetype="text/html"))
