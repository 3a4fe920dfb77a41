"""The widget's HTTP-level tests share the browser tests' app server."""

from tests.browser.conftest import allowed_site_port, widget_server  # noqa: F401
