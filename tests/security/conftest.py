"""The security tests share the browser tests' app server where they need one."""

from tests.browser.conftest import allowed_site_port, widget_server  # noqa: F401
