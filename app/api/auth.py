"""The institution key check, once, as a decorator for every backend API route."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import ParamSpec

from flask import Response, request

from app.api.errors import api_error
from app.plumbing.passid_connection import passid_connection

P = ParamSpec("P")


def institution_key_required(view: Callable[P, Response]) -> Callable[P, Response]:
    """401 unless the request carries the institution's key (compared in constant time), before the view runs.

    The same key PASSID issued us. It is checked before the body is read, so a caller without it learns
    nothing about what a valid body looks like.
    """

    @functools.wraps(view)
    def checked(*args: P.args, **kwargs: P.kwargs) -> Response:
        presented = request.headers.get("X-Institution-Key", "")
        expected = passid_connection().api_key
        if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
            return api_error(401, "UNAUTHORIZED", "Send your institution key in X-Institution-Key.")
        return view(*args, **kwargs)

    return checked
