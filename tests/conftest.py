"""Fixtures: the app in-process (`app`, `client`, `runner`, `widget`, flaskr-style) for tests that need
only a request and its response; a migrated database (SQLite, and PostgreSQL: see tests/support/postgres.py
for when it may be missing); the app running under Granian (as `make run` starts it) with its embedded
sandbox, for tests that need a real server; and fresh institutions."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from hypothesis import settings

from app.passid import PassidClient
from tests.support.in_process import migrated_sqlite_url, serving_in_process
from tests.support.postgres import postgres_probe
from tests.support.servers import (
    AppServer,
    base_env,
    create_postgres_database,
    drop_postgres_database,
    migrate,
    postgres_available,
)
from tests.support.widget_actions import WidgetActions

# `make test` (and so CI) replays the same fuzzing examples every run, so a red run means a
# change broke something, not that the dice found an old bug; `make fuzz` explores new ones
# (and whatever it finds becomes an example or a contract test). Loaded before the fuzz
# modules build their settings, which inherit it.
settings.register_profile("replay", derandomize=True)
settings.register_profile("explore", derandomize=False)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "replay")
settings.load_profile(HYPOTHESIS_PROFILE)


def fuzz_examples(exploring: int) -> int:
    """How many examples a fuzz test tries: `exploring` when `make fuzz` looks for new trouble, a third of
    it (at least 10) when `make test` replays: fixed examples find again only what they found before."""
    return exploring if HYPOTHESIS_PROFILE == "explore" else max(10, exploring // 3)


DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every database-backed test runs on SQLite and PostgreSQL unless it says it is not about the database.

    A test that checks the HTTP contract or input validation (refused before anything is stored)
    is marked `databases("sqlite")` (tests/support/postgres.py: `refused_before_storage`); the
    closest marker wins, so one test in such a module can ask for both again. Tests of storage,
    constraints, transactions, concurrency, scale-out and migrations keep the default.
    """
    if "database_kind" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("databases")
    kinds = marker.args if marker is not None else DATABASES
    if not kinds or set(kinds) - set(DATABASES):
        raise pytest.UsageError(f"databases() takes some of {DATABASES}, got {kinds}")
    metafunc.parametrize("database_kind", list(kinds), indirect=True, scope="session")


# The order test files are handed to `make test`'s workers (one file at a time, pytest-xdist's loadfile):
# the long files whose subject is a process or a browser first, the quick in-process ones last, so that the
# workers finish close together instead of one waiting out a long file picked up at the end.
# ("": the files directly in tests/.)
FILE_ORDER = ("browser", "webhooks", "serving", "widget", "encryption", "contract", "fuzz", "", "operations",
              "console", "security", "api", "i18n", "client")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def area(item: pytest.Item) -> int:
        parts = item.nodeid.split("::")[0].split("/")  # the file's path (a test's id may hold a "/" too)
        folder = parts[1] if len(parts) > 2 else ""
        return FILE_ORDER.index(folder) if folder in FILE_ORDER else len(FILE_ORDER)  # a new folder: last

    items.sort(key=area)  # stable: within an area, files and tests keep the order they were collected in


@pytest.fixture(scope="session")
def database_kind(request: pytest.FixtureRequest) -> str:
    """The database this test runs on: each of DATABASES in turn (see pytest_generate_tests)."""
    if request.param == "postgresql" and not postgres_available():  # raises when it may not be skipped
        pytest.skip(f"PostgreSQL: {postgres_probe().reason} (skipped outside CI only)")
    return request.param


class PerRun:
    """What is made once per database kind and kept until the run ends (each worker's run, under xdist).

    pytest keeps one instance of a parametrized session fixture at a time: every file with tests on
    both databases moves from SQLite to PostgreSQL, so the next file found its server and database gone
    and built them again. Kept here by kind, each is made once; the fixtures only look it up.
    """

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._made: dict[str, Any] = {}

    def get(self, key: str, make: Callable[[], AbstractContextManager[Any]]) -> Any:
        if key not in self._made:
            self._made[key] = self._stack.enter_context(make())
        return self._made[key]


@pytest.fixture(scope="session")
def per_run() -> Iterator[PerRun]:
    """Servers and databases kept for the whole run, stopped and dropped last-made first when it ends."""
    with ExitStack() as stack:
        yield PerRun(stack)


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """A PostgreSQL database migrated once by `flask db upgrade`, the template of every other one here.

    PostgreSQL copies a template database in a fraction of the second Alembic takes; nothing
    connects to it after its migration, which a copy requires. Asked for only by tests on PostgreSQL
    (`database_kind` has skipped the rest when it may be missing), so it does not depend on the kind:
    one migration for the whole run.
    """
    name, url = create_postgres_database()
    try:
        migrate(base_env(url))
        yield name
    finally:
        drop_postgres_database(name)


@contextmanager
def provisioned_database(kind: str, directory: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, migrated database of `kind`; PostgreSQL ones are dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{directory / 'passid.db'}"
        migrate(base_env(url))
        yield url
        return
    name, url = create_postgres_database(template=request.getfixturevalue("migrated_postgres"))
    try:
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture(scope="session")
def database_url(
    database_kind: str, per_run: PerRun, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> str:
    """The database the shared app server uses for the whole run, one per kind."""
    url: str = per_run.get(f"database:{database_kind}", lambda: provisioned_database(
        database_kind, tmp_path_factory.mktemp("db"), request))
    return url


@pytest.fixture
def fresh_database_url(database_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of this test's own, for tests whose processes must not share work with others."""
    with provisioned_database(database_kind, tmp_path, request) as url:
        yield url


@pytest.fixture(scope="module")
def module_database_url(
    database_kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A database of this module's own, for a server its tests share (each test works on rows of its own)."""
    with provisioned_database(database_kind, tmp_path_factory.mktemp("db"), request) as url:
        yield url


@contextmanager
def _serving(database_url: str, log: Path) -> Iterator[AppServer]:
    env = base_env(
        database_url, PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5,0.5", PASSID_SANDBOX_MIN_TTL_SECONDS="1"
    )
    server = AppServer(env, log).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def app_server(
    database_kind: str, database_url: str, per_run: PerRun, tmp_path_factory: pytest.TempPathFactory
) -> AppServer:
    """The whole app with its embedded sandbox, as `make run` starts it: one per database kind for the run."""
    server: AppServer = per_run.get(f"server:{database_kind}", lambda: _serving(
        database_url, tmp_path_factory.mktemp("logs") / "app.log"))
    return server


@pytest.fixture
def sandbox(app_server: AppServer) -> PassidClient:
    """A client with no key, for onboarding and public calls."""
    return PassidClient(app_server.sandbox_url, timeout=(3.05, 15.0))


@pytest.fixture
def institution(sandbox: PassidClient):  # type: ignore[no-untyped-def]
    """A freshly onboarded institution and a client holding its sandbox key."""
    onboarding = sandbox.onboard("Test Lender")
    client = PassidClient(sandbox.base_url, onboarding.sandbox_key, timeout=(3.05, 15.0))
    return onboarding, client


# --- in-process (flaskr-style) ---------------------------------------------------------------------


@pytest.fixture
def app_settings() -> dict[str, str]:
    """Settings a module adds to the in-process app's (override this fixture in the module)."""
    return {}


@pytest.fixture
def build_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build more in-process apps in one test (`build_app(PASSID_TRUSTED_PROXIES="1")`), each on its own database."""
    numbers = count()
    with ExitStack() as stack:
        def build(**settings: str) -> Flask:
            directory = tmp_path / f"app-{next(numbers)}"
            directory.mkdir()
            return stack.enter_context(serving_in_process(migrated_sqlite_url(directory), directory, **settings))

        yield build


@pytest.fixture
def app(build_app: Callable[..., Flask], app_settings: dict[str, str]) -> Flask:
    """The whole app in this process on a fresh SQLite database, its sandbox answering over loopback HTTP."""
    return build_app(**app_settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def widget(client: FlaskClient) -> WidgetActions:
    return WidgetActions(client)


@pytest.fixture
def app_sandbox(app: Flask) -> PassidClient:
    """A keyless client of the in-process app's own sandbox, over HTTP (onboarding, the phone's calls)."""
    return PassidClient(app.config["PASSID_BASE_URL"], timeout=(3.05, 15.0))
