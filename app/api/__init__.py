"""The institution's backend API: `/api/results` and `/api/sessions`, read and written with its key.

Every route here answers JSON, checks `X-Institution-Key` with one decorator (`app.api.auth`) and
answers errors in one shape (`app.api.errors`). The browser never calls it: the bank's server does.
"""

from flask import Blueprint

bp = Blueprint("api", __name__)

from app.api import openapi, results, sessions  # noqa: E402, F401  (routes register on the blueprint)

__all__ = ["bp"]
