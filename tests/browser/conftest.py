"""Real Chromium (Debian's headless shell, driven by Python Playwright) against the running app.

The headless shell is Chromium's own engine (Blink, V8, the network stack, CSP) without the
desktop browser around it: nothing here shows a window, and it starts and runs faster.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from app.passid import PassidClient
from tests.support.demo_institution import demo_institution
from tests.support.faulty_upstream import FaultyUpstream
from tests.support.servers import AppServer, base_env, free_port, migrate

# The ELF itself, not /usr/bin's shell wrapper: Playwright then owns the browser process it ends.
CHROMIUM = "/usr/lib/chromium/chromium-headless-shell"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    # Block third-party cookies, as Safari does and Chrome increasingly does.
    "--test-third-party-cookie-phaseout",
]

# Records every value data-state takes, so transient states (requesting,
# verifying) can be asserted after they have passed.
STATE_RECORDER = """
window.__passidStates = [];
document.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("passid-widget");
  if (!root) return;
  window.__passidStates.push(root.getAttribute("data-state"));
  new MutationObserver(function () {
    window.__passidStates.push(root.getAttribute("data-state"));
  }).observe(root, { attributes: true, attributeFilter: ["data-state"] });
});
"""

# Counts the polls the widget starts (and those answered). htmx fires htmx:beforeRequest in the same task as the timer
# or event that asks, so once a page.evaluate (or a clock.run_for) returns, a poll that was asked
# for is counted: "no poll" is told from "no poll yet" without waiting.
POLL_COUNTER = """
window.__passidPolls = 0;
document.addEventListener("htmx:beforeRequest", function (event) {
  if (event.target && event.target.id === "passid-poller") window.__passidPolls += 1;
});
window.__passidPolled = 0;  // and the polls whose answer came
document.addEventListener("htmx:afterRequest", function (event) {
  if (event.target && event.target.id === "passid-poller") window.__passidPolled += 1;
});
"""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium-headless-shell package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# A desktop with a mouse, and a phone with a touch screen (Playwright's mobile emulation: pointer coarse,
# hover none): the widget tells them apart by the device, whatever the frame's width.
DEVICES: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}


@pytest.fixture(params=list(DEVICES))
def device(request: pytest.FixtureRequest) -> str:
    """Each of DEVICES in turn."""
    return request.param


@pytest.fixture
def device_page(browser: Browser, device: str) -> Iterator[Page]:
    """A page in a context of its own, as `device` shows it."""
    context = browser.new_context(**DEVICES[device])
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 420, "height": 900})
    context.add_init_script(STATE_RECORDER)
    context.add_init_script(POLL_COUNTER)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


class EmbeddingSite:
    """A page on another origin that embeds the widget with the documented snippet."""

    def __init__(self, widget_url: str, port: int, host: str = "localhost", attributes: str = "") -> None:
        self.widget_url = widget_url
        self.host = host
        self.attributes = attributes  # more data- attributes on the snippet's <script>
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = site.html().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"

    def html(self) -> str:
        return f"""<!doctype html><html lang="en"><head><title>Apply for a loan</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<h1>Apply for a loan</h1>
<div id="passid"></div>
<ol id="events"></ol>
<script>
  window.passidEvents = [];
  window.passidReady = 0;  // passid:ready, counted apart: the events above are what the widget decided
  var target = document.getElementById("passid");
  ["passid:success", "passid:decline", "passid:error", "passid:cancel"].forEach(function (name) {{
    target.addEventListener(name, function (event) {{
      window.passidEvents.push({{ type: name, detail: event.detail }});
    }});
  }});
  target.addEventListener("passid:ready", function () {{ window.passidReady += 1; }});
</script>
<script src="{self.widget_url}/embed.js" data-target="#passid" data-permissions="full_score,identity_verified"
        data-institution-name="Partner Bank" {self.attributes}></script>
</body></html>"""

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def allowed_site_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def widget_server(tmp_path_factory: pytest.TempPathFactory, allowed_site_port: int) -> Iterator[AppServer]:
    """The app on SQLite with one embedding origin allowed: http://localhost:<allowed_site_port>."""
    directory = tmp_path_factory.mktemp("widget")
    url = f"sqlite:///{directory / 'passid.db'}"
    env = base_env(
        url,
        PASSID_ALLOWED_EMBED_ORIGINS=f"http://localhost:{allowed_site_port}",
        # The names an embed may show instead of PASSID_INSTITUTION_NAME (EmbeddingSite uses the first).
        PASSID_INSTITUTION_NAMES="Partner Bank|Acme Lending, Ltd",
        PASSID_SANDBOX_MIN_TTL_SECONDS="1",
        # A decline on the phone (no webhook reports it) shows at the next check: keep it near the
        # next poll so the flows below wait seconds, not the production 7 s.
        PASSID_POLL_CHECK_SECONDS="2",
    )
    migrate(env)
    server = AppServer(env, directory / "app.log").start()
    yield server
    server.stop()


@pytest.fixture
def sandbox_phone(browser: Browser) -> Iterator[Page]:
    """A second browser page standing in for the customer's phone."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def fragile_app(
    widget_server: AppServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppServer, FaultyUpstream]]:
    """A widget app whose PASSID is reached through a proxy the test can break (one per test module)."""
    tmp_path = tmp_path_factory.mktemp("fragile")
    onboarding = PassidClient(widget_server.sandbox_url).onboard("Fragile Bank")
    proxy = FaultyUpstream(widget_server.sandbox_url)
    env = base_env(
        f"sqlite:///{tmp_path / 'passid.db'}",
        PASSID_BASE_URL=proxy.url,
        PASSID_API_KEY=onboarding.sandbox_key,
        PASSID_TIMEOUT_SECONDS="1",
    )
    migrate(env)
    server = AppServer(env, tmp_path / "app.log").start()
    yield server, proxy
    server.stop()
    proxy.close()


@pytest.fixture
def upstream(fragile_app: tuple[AppServer, FaultyUpstream]) -> tuple[AppServer, FaultyUpstream]:
    server, proxy = fragile_app
    proxy.mode = "forward"
    if server.process is None or server.process.poll() is not None:
        server.start()
    return fragile_app


def demo_key(server: AppServer) -> str:
    """The demo institution's sandbox key, as the operator would read it from `flask passid demo`."""
    return demo_institution(server).key


def states(page: Page) -> list[str]:
    return page.evaluate("window.__passidStates")


def polls_started(page: Page) -> int:
    """How many polls the widget has started so far (POLL_COUNTER)."""
    return page.evaluate("window.__passidPolls")


def client_for(server: AppServer) -> PassidClient:
    return PassidClient(server.sandbox_url, demo_key(server))


def read_event_json(page: Page) -> list[dict]:
    return json.loads(page.evaluate("JSON.stringify(window.passidEvents || [])"))
