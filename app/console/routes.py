"""Console routes (being built; see issue 4)."""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("console", __name__, url_prefix="/console")


@bp.get("/")
@login_required
def history() -> str:
    return "history"


@bp.get("/performance")
@login_required
def performance() -> str:
    return "performance"


@bp.get("/webhooks")
@login_required
def webhook_log() -> str:
    return "webhooks"


@bp.get("/go-live")
@login_required
def checklist() -> str:
    return "checklist"
