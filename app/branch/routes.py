"""Branch routes (being built)."""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("branch", __name__, url_prefix="/branch")


@bp.get("/")
@login_required
def counter() -> str:
    return "branch"
