"""What operators and load balancers ask the app: `/healthz`, `/readyz` and `/metrics`.

- `GET /healthz`: 200 once the process can serve, i.e. its database answers (liveness: restart it if not).
- `GET /readyz`: 200 only when every part a request needs works (app/plumbing/readiness.py), else 503
  naming each failing part (readiness: send it no work until it is).
- `GET /metrics`: the Prometheus text format (app/plumbing/metrics.py), every worker's figures added up.
  Closed to the public: it answers only `Authorization: Bearer $PASSID_METRICS_TOKEN` (401 otherwise),
  and is not there at all (404, as any unknown URL) while that variable is unset.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from app.config import current_settings
from app.plumbing import readiness
from app.plumbing.database import db
from app.plumbing.metrics import CONTENT_TYPE, exposition

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        db.session.rollback()
        return jsonify(status="unavailable", reason="database"), 503
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    results = readiness.check_all(current_app._get_current_object())  # type: ignore[attr-defined]
    failing = readiness.failing(results)
    answer = jsonify(status="unavailable" if failing else "ready", failing=failing,
                     checks={name: result or "not checked" for name, result in results.items()})
    answer.headers["Cache-Control"] = "no-store"
    return answer, 503 if failing else 200


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    token = current_settings().metrics_token
    if not token:
        abort(404)
    if not bearer_matches(request.headers.get("Authorization", ""), token):
        return Response("This needs Authorization: Bearer and the metrics token.\n", 401, {
            "WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain; charset=utf-8",
            "Cache-Control": "no-store"})
    return Response(exposition(current_app._get_current_object()),  # type: ignore[attr-defined]
                    headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def bearer_matches(header: str, token: str) -> bool:
    """`Bearer <token>` (the scheme in any case), compared in constant time."""
    scheme, _, offered = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode())
