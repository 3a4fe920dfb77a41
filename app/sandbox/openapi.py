"""`GET /openapi.json` under the sandbox's mount: the contract as an OpenAPI 3.0 document.

The document lives beside this module (`openapi.json`). Served, its `servers`
entry is the sandbox's own mount point on this host (a relative URL), and the
TTL minimum is the one this sandbox enforces (tests may lower it).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import Response, url_for

from app.config import current_settings
from app.sandbox.blueprint import bp
from app.sandbox.errors import json_response

DOCUMENT = Path(__file__).with_name("openapi.json")
_TTL_SCHEMAS = ("RequestTtlSeconds", "ShareTtlSeconds")


@cache
def _document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def served_document(mount_point: str, min_ttl_seconds: int) -> dict[str, Any]:
    """The stored document with this server's mount point and TTL minimum filled in."""
    document = copy.deepcopy(_document())
    document["servers"] = [{"url": mount_point or "/", "description": "This sandbox."}]
    for name in _TTL_SCHEMAS:
        document["components"]["schemas"][name]["minimum"] = min_ttl_seconds
    return document


@bp.get("/openapi.json")
def openapi_document() -> Response:
    # The URL map knows the mount point (and any SCRIPT_NAME): "/sandbox", or "" when standalone.
    mount_point = url_for("sandbox.openapi_document")[: -len("/openapi.json")]
    response = json_response(
        served_document(mount_point, current_settings().sandbox_min_ttl_seconds)
    )
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
