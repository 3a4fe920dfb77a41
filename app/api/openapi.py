"""`GET /api/openapi.json`: the backend API described as an OpenAPI 3.1 document, for anyone to read.

The document lives beside this module (`openapi.json`), and the tests hold every answer of the API to
it (`tests/support/openapi_check.py`), so it says what the API does, not what it once did. Served, its
`servers` entry is this app's own mount point (a relative URL, so SCRIPT_NAME is followed). It needs
no key: it describes the API, it names no one, so caches may keep it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import Response, jsonify, url_for

from app.api import bp

DOCUMENT = Path(__file__).with_name("openapi.json")
_SERVED_AT = "/api/openapi.json"


@cache
def stored_document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def served_document(mount_point: str) -> dict[str, Any]:
    """The stored document with this server's mount point filled in."""
    document = copy.deepcopy(stored_document())
    document["servers"][0]["url"] = mount_point or "/"
    return document


@bp.get(_SERVED_AT)
def openapi_document() -> Response:
    mount_point = url_for("api.openapi_document")[: -len(_SERVED_AT)]
    response = jsonify(served_document(mount_point))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
