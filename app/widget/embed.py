"""`GET /embed.js`: the one-line snippet that puts the widget on any page."""

from __future__ import annotations

from pathlib import Path

from flask import Response

from app.config import PROJECT_ROOT
from app.widget.routes import bp

EMBED_SCRIPT = PROJECT_ROOT / "static" / "widget" / "embed.js"


@bp.get("/embed.js")
def embed_script() -> Response:
    # Built from bytes rather than streamed, so Flask-Compress gzips it like any page.
    response = Response(Path(EMBED_SCRIPT).read_bytes(), mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = 300
    # The snippet is loaded cross-origin by design.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
