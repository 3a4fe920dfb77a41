"""Fixtures: a migrated database (SQLite, and PostgreSQL when reachable), the app
running under Granian (as `make run` starts it) with its embedded sandbox, and fresh institutions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings

from app.passid import PassidClient
from tests.support.servers import (
    AppServer,
    base_env,
    create_postgres_database,
    drop_postgres_database,
    migrate,
    postgres_available,
)

# `make test` (and so CI) replays the same fuzzing examples every run, so a red run means a
# change broke something, not that the dice found an old bug; `make fuzz` explores new ones
# (and whatever it finds becomes an example or a contract test). Loaded before the fuzz
# modules build their settings, which inherit it.
settings.register_profile("replay", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "replay"))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_kind(request: pytest.FixtureRequest) -> str:
    """Each database-backed test runs on SQLite and on PostgreSQL."""
    if request.param == "postgresql" and not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    return request.param


@contextmanager
def provisioned_database(kind: str, directory: Path) -> Iterator[str]:
    """A new, migrated database of `kind`; PostgreSQL ones are dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{directory / 'passid.db'}"
        migrate(base_env(url))
        yield url
        return
    name, url = create_postgres_database()
    try:
        migrate(base_env(url))
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture(scope="session")
def database_url(database_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The database the shared app server uses for the whole run."""
    with provisioned_database(database_kind, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
def fresh_database_url(database_kind: str, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, for tests whose processes must not share work with others."""
    with provisioned_database(database_kind, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def app_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The whole app with its embedded sandbox, as `make run` starts it."""
    log = tmp_path_factory.mktemp("logs") / "app.log"
    env = base_env(
        database_url, PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5,0.5", PASSID_SANDBOX_MIN_TTL_SECONDS="1"
    )
    server = AppServer(env, log).start()
    yield server
    server.stop()


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
