"""The sandbox's one blueprint; `api` and `phone` add their routes to it."""

from flask import Blueprint, Response

bp = Blueprint("sandbox", __name__)


@bp.after_request
def stamp_api_version(response: Response) -> Response:
    """The contract: every response carries `X-PASSID-API-Version: 1`."""
    response.headers["X-PASSID-API-Version"] = "1"
    return response
