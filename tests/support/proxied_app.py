"""Our app with its own institution on a running sandbox, reaching it through a counting, faultable proxy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.passid import PassidClient
from tests.support.faulty_upstream import FaultyUpstream
from tests.support.servers import AppServer, base_env, migrate

SECRET = "whsec_poll_from_webhook_0123"


@dataclass
class Wired:
    app: AppServer
    proxy: FaultyUpstream
    database: str


@contextmanager
def app_behind_proxy(widget_server: AppServer, tmp_path: Path, *, webhooks: bool = True,
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
    app = AppServer(settings, tmp_path / "app.log")
    if webhooks:
        institution.set_webhook(f"{app.url}/webhooks/passid", SECRET)
    app.start()
    try:
        yield Wired(app, proxy, database)
    finally:
        app.stop()
        proxy.close()
