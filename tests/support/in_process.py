"""The app in the test's own process, for tests that only need a request and its response.

`create_app(environ)` with an explicit test environment, driven by Flask's test client
(flaskr's `app`, `client`, `runner`). No server process starts, so such a test costs
milliseconds, and a failure shows the traceback in the test itself (TESTING is on).

The app's PASSID client still reaches the sandbox over real HTTP: the same app object is
served on a loopback port by a thread (Werkzeug's server), and PORT is that port, so
PUBLIC_BASE_URL, the embedded sandbox's base URL and the demo institution's webhook URL
all point at it. Why this and not the session's Granian server's sandbox: the app stays
whole and self-contained (its own database, its own demo institution, webhooks delivered
back to itself by its own background passes), as `make run` runs, with no onboarding or
key plumbing in the test, and it starts in a few milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from werkzeug.routing import Rule
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app
from app.plumbing.database import db
from tests.support.servers import SHUTDOWN_POLL, TEST_SETTINGS, base_env, migrate
from tests.support.waiting import finish_within


def migrated_sqlite_url(directory: Path) -> str:
    """A new SQLite database in `directory` with the schema applied; returns its SQLAlchemy URL.

    `migrate` copies a file `flask db upgrade` migrated once in this process (in its own process,
    as `make run` does): far quicker than migrating again, and Alembic run in the test process
    would reconfigure its logging.
    """
    url = f"sqlite:///{directory / 'passid.db'}"
    migrate(base_env(url))
    return url


def app_environ(database_url: str, instance_dir: Path, port: int, **overrides: str) -> dict[str, str]:
    """Exactly the settings the app is given: nothing from the developer's environment or `.env`."""
    return {
        **TEST_SETTINGS,
        "DATABASE_URL": database_url,
        "PASSID_INSTANCE_DIR": str(instance_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **overrides,
    }


class ServerLikeClient(FlaskClient):
    """Flask's test client, closing each answer once it is read, as a server closes what it has sent.

    The app frees a request's body slot when its answer is closed (app/plumbing/request_guards.py); an answer
    left open would hold its slot, and a test's fifth post would get a 503.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


class _CompiledTemplates(BytecodeCache):
    """Templates compiled once per test process, shared by every app built in it.

    Each app has its own Jinja environment, so each test's app parsed and compiled every template it drew
    again (tens of milliseconds per app, hundreds of apps a run). Jinja keys each entry by the template's
    name and a checksum of its source, so an edited template is compiled afresh; what is drawn is the same.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED_TEMPLATES = _CompiledTemplates()


def _share_url_builders() -> None:
    """URL builders compiled once per test process, shared by every app built in it.

    Werkzeug compiles two functions per URL rule when a rule is added (Python's `compile` over an AST it
    builds): about 60 ms of each app's 90 ms start, for hundreds of apps a run. The function depends only on
    the rule's text, its parsed parts, its defaults and which of the two it is: it reads the rule's
    converters from its `self` argument when called, never from the rule it was compiled for. So each is
    compiled once here and bound to every rule with the same key. If Werkzeug changes this private method,
    the tests fail at import (the assertion below) rather than silently build URLs some other way.
    """
    compile_builder = Rule._compile_builder
    assert callable(compile_builder), "werkzeug.routing.Rule._compile_builder moved: remove _share_url_builders"
    compiled: dict[tuple[object, ...], Any] = {}

    def shared(self: Rule, append_unknown: bool = True) -> Any:
        key = (self.rule, tuple(self._trace), repr(sorted((self.defaults or {}).items())), append_unknown)
        if key not in compiled:
            compiled[key] = compile_builder(self, append_unknown)
        return compiled[key]

    Rule._compile_builder = shared  # type: ignore[method-assign]


_share_url_builders()


class _Forward:
    """The loopback server's WSGI callable, bound to the app once it exists (the app needs the port first)."""

    app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


@contextmanager
def serving_in_process(database_url: str, instance_dir: Path, **overrides: str) -> Iterator[Flask]:
    """The app built from a test environment, also answering on 127.0.0.1:PORT until the block ends."""
    forward = _Forward()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, forward, threaded=True)
    app = create_app(app_environ(database_url, instance_dir, server.server_port, **overrides))
    app.config["TESTING"] = True
    app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
    app.test_client_class = ServerLikeClient
    forward.app = app
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL}, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        # The passes stop first: a pass still sending a webhook to this app, or calling its sandbox,
        # would otherwise hang on a port that accepts but no longer answers until its 10 s timeout.
        scheduler = app.extensions.get("passid_scheduler")
        try:
            if scheduler is not None and scheduler.running:  # a test may have stopped it itself
                finish_within(lambda: scheduler.shutdown(wait=True), "the background passes' stop")
        finally:  # the server stops even when the passes did not
            finish_within(server.shutdown, "the loopback server's stop")
            server.server_close()
            thread.join(timeout=5)
            with app.app_context():
                db.engine.dispose()
