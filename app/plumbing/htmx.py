"""The one way to ask "is this an htmx request" (flask-htmx).

`if htmx:` is true for a request htmx sent (it carries `HX-Request: true`) and false for a plain
form post or page load, the path a customer without JavaScript takes; views answer the first with
a partial and the second with the whole page. Should a view need htmx's response headers
(`HX-Trigger`, `HX-Push-Url`, …), flask-htmx's `make_response` sets them: none does today. The
factory registers the extension (`htmx.init_app`), which also gives templates an `htmx` variable.
"""

from __future__ import annotations

from flask_htmx import HTMX

htmx = HTMX()
