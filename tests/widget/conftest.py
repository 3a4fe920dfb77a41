"""The widget's HTTP-level tests share the browser tests' app server; every answer of the backend API they
receive is held to app/api/openapi.json."""

from tests.browser.conftest import allowed_site_port, widget_server  # noqa: F401
from tests.support.openapi_check import answers_match_the_api_document  # noqa: F401
