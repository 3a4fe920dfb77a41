"""The contract's error shape, for every failure the sandbox can meet.

`{"error": {"code", "message", "field"?}}` with `X-PASSID-API-Version: 1`:
never a stack trace, never HTML — including for 404s on unknown paths, 405s,
oversized bodies and crashes.
"""

from __future__ import annotations

import json
import logging
from typing import cast

from flask import Flask, Response, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

API_VERSION = "1"

_CODE_FOR_STATUS = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


class ApiError(Exception):
    """Raised anywhere in a sandbox view; becomes the contract's error answer."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def validation_error(field: str, message: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, field)


def json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return raw_json_response(body, status, headers)


def raw_json_response(body: bytes, status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=status, mimetype="application/json")
    response.headers["X-PASSID-API-Version"] = API_VERSION
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    error: dict[str, str] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return json_response({"error": error}, status)


def register_error_handlers(app: Flask, api_prefix: str) -> None:
    """Answer JSON errors for every path under the sandbox's API prefix.

    Registered on the app, not the blueprint: routing errors (404, 405) and
    body-size errors (413) happen before a blueprint is chosen.
    """

    def is_api_request() -> bool:
        return request.path.startswith(api_prefix)

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError) -> Response:
        return error_response(error.status, error.code, error.message, error.field)

    previous_http_handler = app.error_handler_spec.get(None, {}).get(None, {}).get(HTTPException)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> ResponseReturnValue:
        if not is_api_request():
            if previous_http_handler is not None:
                # The app's own (synchronous) handler; Flask's type also allows async ones.
                return cast(ResponseReturnValue, previous_http_handler(error))
            return error
        status = error.code or 500
        code = _CODE_FOR_STATUS.get(status, "ERROR" if status < 500 else "INTERNAL_ERROR")
        message = error.description or error.name
        if status == 413:
            message = "The request body is too large."
        elif status == 429:  # Flask-Limiter's description is the limit, e.g. "20 per 1 hour"
            message = f"Too many requests from your address (limit: {message}); try again after Retry-After seconds."
        response = error_response(status, code, message)
        allow = dict(error.get_headers()).get("Allow")
        if allow:  # a 405 must say which methods are allowed
            response.headers["Allow"] = allow
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> ResponseReturnValue:
        if isinstance(error, HTTPException):
            return handle_http_error(error)
        log.exception("unhandled error")
        if is_api_request():
            return error_response(500, "INTERNAL_ERROR", "Something went wrong on our side.")
        if previous_http_handler is not None:  # the app's own 500 page (mounted), in the reader's language
            return cast(ResponseReturnValue, previous_http_handler(InternalServerError(original_exception=error)))
        return Response("Something went wrong on our side.", status=500, mimetype="text/plain")
