"""`GET /embed.js`: the one-line snippet that puts the widget on any page."""

from __future__ import annotations

from flask import current_app, send_from_directory

from app.widget.routes import bp


@bp.get("/embed.js")
def embed_script():  # type: ignore[no-untyped-def]
    response = send_from_directory(current_app.static_folder or "static", "widget/embed.js", max_age=300)
    # The snippet is loaded cross-origin by design.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
