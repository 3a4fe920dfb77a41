"""The sandbox's one blueprint; `api` and `phone` add their routes to it."""

from flask import Blueprint

bp = Blueprint("sandbox", __name__)


@bp.after_request
def stamp_api_version(response):  # type: ignore[no-untyped-def]
    """The contract: every response carries `X-PASSID-API-Version: 1`."""
    response.headers["X-PASSID-API-Version"] = "1"
    return response
