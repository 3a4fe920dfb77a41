"""Our app with its own institution on a running sandbox, reaching it through a counting, faultable proxy.

In this process by default (served on a loopback port by a thread, its background passes running, as a
server's do), or under Granian with `server=True` where the test is about how the server's threads hold up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.config import settings_of
from app.passid import PassidClient
from app.plumbing.background import start_background_jobs
from tests.support.faulty_upstream import FaultyUpstream
from tests.support.in_process import serving_in_process
from tests.support.servers import AppServer, base_env, migrate

SECRET = "whsec_poll_from_webhook_0123"


@dataclass(frozen=True)
class Served:
    """Where the in-process app answers."""

    url: str


@dataclass
class Wired:
    app: AppServer | Served
    proxy: FaultyUpstream
    database: str


@contextmanager
def app_behind_proxy(widget_server: AppServer, tmp_path: Path, *, webhooks: bool = True, server: bool = False,
                     **env: str) -> Iterator[Wired]:
    """Our app with its own institution on the shared sandbox, every PASSID call counted."""
    onboarding = PassidClient(widget_server.sandbox_url).onboard("Webhook Bank")
    institution = PassidClient(widget_server.sandbox_url, onboarding.sandbox_key)
    proxy = FaultyUpstream(widget_server.sandbox_url)
    database = f"sqlite:///{tmp_path / 'passid.db'}"
    settings = base_env(database, PASSID_BASE_URL=proxy.url, PASSID_API_KEY=onboarding.sandbox_key,
                        **{"PASSID_TIMEOUT_SECONDS": "2", **env})
    if webhooks:
        settings["PASSID_WEBHOOK_SECRET"] = SECRET
    migrate(settings)
    try:
        if server:
            with _under_granian(settings, tmp_path) as served:
                if webhooks:
                    institution.set_webhook(f"{served.url}/webhooks/passid", SECRET)
                served.start()
                yield Wired(served, proxy, database)
        else:
            ours = {name: value for name, value in settings.items() if name.startswith("PASSID_")}
            with serving_in_process(database, tmp_path, **ours) as app:
                url = f"http://127.0.0.1:{settings_of(app).port}"
                if webhooks:
                    institution.set_webhook(f"{url}/webhooks/passid", SECRET)
                start_background_jobs(app)
                yield Wired(Served(url), proxy, database)
    finally:
        proxy.close()


@contextmanager
def _under_granian(settings: dict[str, str], tmp_path: Path) -> Iterator[AppServer]:
    app = AppServer(settings, tmp_path / "app.log")
    try:
        yield app
    finally:
        app.stop()
