"""The one way to ask "is this an htmx request" and to set htmx response headers (flask-htmx).

`if htmx:` is true for a request htmx sent (it carries `HX-Request: true`) and false for a plain
form post or page load, the path a customer without JavaScript takes; views answer the first with
a partial and the second with the whole page. `make_response(..., trigger=..., push_url=...)` sets
htmx's response headers. The factory registers the extension (`htmx.init_app`), which also gives
templates an `htmx` variable.
"""

from __future__ import annotations

from flask_htmx import HTMX, make_response

htmx = HTMX()

__all__ = ["htmx", "make_response"]
