"""The backend API's tests: every answer they receive is held to app/api/openapi.json."""

from tests.support.openapi_check import answers_match_the_api_document  # noqa: F401
