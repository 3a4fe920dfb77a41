"""Migration tests: an empty database of either kind, and Alembic's upgrade and downgrade run against it."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import flask_migrate
import pytest

from app import create_app
from app.plumbing.database import db, init_migrations
from tests.support.servers import ROOT, create_postgres_database, drop_postgres_database, postgres_available


@contextmanager
def empty_database(kind: str, directory: Path) -> Iterator[str]:
    """The URL of a database with no tables yet, of `kind` ("sqlite" or "postgresql"); PostgreSQL's is dropped
    afterwards. Without PostgreSQL the test is skipped (outside CI only: `postgres_available` decides)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'migrations.db'}"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name, url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


@contextmanager
def _logging_kept() -> Iterator[None]:
    """Undo what migrations/env.py's `fileConfig` does to this process's logging once Alembic is done.

    It replaces the root logger's handlers (pytest's capture among them), sets levels, and disables
    every logger that exists already (the app's); an operator's `flask db` exits after, a test goes on.
    """
    manager = logging.Logger.manager
    root = logging.getLogger()
    kept_root = (root.level, list(root.handlers))
    kept = {name: (lg.disabled, lg.level, list(lg.handlers), lg.propagate)
            for name, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    try:
        yield
    finally:
        root.setLevel(kept_root[0])
        root.handlers[:] = kept_root[1]
        for name, lg in list(manager.loggerDict.items()):
            if not isinstance(lg, logging.Logger):
                continue
            disabled, level, handlers, propagate = kept.get(name, (False, logging.NOTSET, [], True))
            lg.disabled, lg.propagate = disabled, propagate
            lg.setLevel(level)
            lg.handlers[:] = handlers


def flask_db(env: dict[str, str], *args: str) -> None:
    """What `flask --app app db upgrade [REVISION]` or `db downgrade REVISION` does to env's database.

    Run in this process (Flask-Migrate's own functions, the app built from `env` as the command builds
    it): the migrations are the claim, and a `flask` process costs a second or two to start each time.
    The command line itself runs in tests/support/servers.py's `migrate`, for every template database.
    """
    command, *revision = args
    if command not in ("upgrade", "downgrade") or len(revision) > 1 or (command == "downgrade" and not revision):
        raise ValueError(f"flask_db takes upgrade [REVISION] or downgrade REVISION, got {args}")
    app = create_app(env)
    init_migrations(app)  # as a `flask db` command does: the app alone leaves Flask-Migrate unloaded
    try:
        with _logging_kept(), app.app_context(), warnings.catch_warnings():
            # env.py is Flask-Migrate's template, which asks Flask-SQLAlchemy for the engine the old way.
            warnings.filterwarnings("ignore", "'get_engine' is deprecated", DeprecationWarning)
            step = flask_migrate.upgrade if command == "upgrade" else flask_migrate.downgrade
            step(directory=str(ROOT / "migrations"), revision=revision[0] if revision else "head")
    finally:
        with app.app_context():
            db.engine.dispose()
