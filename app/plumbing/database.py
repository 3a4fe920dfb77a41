"""The one SQLAlchemy handle and the time helpers every table shares.

Times are stored as naive UTC: SQLite has no time zone type, and one rule for
both databases is simpler than two.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import CursorResult, Engine, make_url
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.base import Executable

from app.config import PROJECT_ROOT
from app.plumbing.file_modes import PRIVATE_FILE, create_private_file, tighten


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

# Every table subclasses `Model`. At run time it is Flask-SQLAlchemy's `db.Model` (built from `Base`
# with its session and metadata); the type checker cannot follow that dynamic class, so it sees `Base`.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def init_migrations(app: Flask) -> None:
    """Flask-Migrate on `app`, once: its `flask db` commands, and the extension migrations/env.py reads.

    Called when a `db` command runs (`add_migration_commands`), or by code that runs migrations in its own
    process; never by a serving worker. Flask-Migrate imports Alembic, which imports every SQLAlchemy dialect it
    supports (PostgreSQL, MySQL, SQL Server, Oracle) and Mako with Pygments: about 11 MB of each worker's
    memory for commands that only the command line runs.
    """
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    Migrate(app, db, directory=str(MIGRATIONS_DIR))  # replaces the stand-in `db` group with its own


def add_migration_commands(app: Flask) -> None:
    """`flask db …` on `app`, Flask-Migrate imported only when such a command runs (`init_migrations`)."""
    app.cli.add_command(_MigrationCommands(app))


class _MigrationCommands(click.Group):
    """A stand-in for Flask-Migrate's `db` group: `flask --help` lists it without importing Alembic; running it
    (`flask db upgrade`, `flask db --help`) or listing its commands initialises Flask-Migrate and hands over to
    Flask-Migrate's own group (click's "lazily loading subcommands" pattern)."""

    def __init__(self, app: Flask) -> None:
        super().__init__("db", help="Perform database migrations.")  # Flask-Migrate's own summary
        self._app = app

    def _loaded(self) -> click.Group:
        init_migrations(self._app)
        group = self._app.cli.commands["db"]
        assert isinstance(group, click.Group) and group is not self
        return group

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        return self._loaded().make_context(info_name, args, parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._loaded().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._loaded().get_command(ctx, cmd_name)


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """SQLite, the default store, shared by several threads and processes: write-ahead
    logging lets readers work during a write, and a busy timeout makes writers wait
    their turn instead of failing with "database is locked". Secure delete overwrites what a row
    loses (an erased claim, a deleted link) with zeros instead of leaving it in a free page, so
    erasure (`app.rules.retention`) leaves nothing behind in the file once the write-ahead log is checkpointed."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def prepare_sqlite_file(database_url: str) -> None:
    """Create a SQLite database file owner-only (0600) before SQLite opens it; tighten one found looser.

    Why before: SQLite creates a missing file 0644, and gives its -wal and -shm files the
    database file's own mode, so a 0600 database keeps its write-ahead log private too.
    Any other database (PostgreSQL, in-memory SQLite) is left alone.
    """
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return
    path = Path(database)
    create_private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(path.with_name(path.name + suffix), PRIVATE_FILE)


def utcnow() -> datetime:
    """Naive UTC now, the form every DateTime column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


def start_of(day: date) -> datetime:
    """Midnight UTC opening `day`, as a DateTime column holds it: where a "from" filter starts."""
    return datetime.combine(day, time.min)


def end_of(day: date) -> datetime | None:
    """Midnight UTC after `day`, where a "to" filter (that day included) stops; None after the last day a
    date can name (9999-12-31), which has no day after it: such a filter stops at nothing."""
    return None if day == date.max else datetime.combine(day + timedelta(days=1), time.min)


def isoformat_z(moment: datetime) -> str:
    """ISO-8601 UTC with a `Z`, to the second, as the contract writes times."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat() + "Z"


def rows_changed(statement: Executable) -> int:
    """Run an UPDATE or DELETE in the current session and say how many rows it changed.

    The conditional UPDATE is how concurrent workers claim a row (a lease, a request's final
    state): exactly one of them sees 1.
    """
    result = db.session.execute(statement)
    assert isinstance(result, CursorResult)  # what an UPDATE or DELETE returns
    return result.rowcount
