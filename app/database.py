"""The one SQLAlchemy handle and the time helpers every table shares.

Times are stored as naive UTC: SQLite has no time zone type, and one rule for
both databases is simpler than two.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase

from app.config import PROJECT_ROOT
from app.file_modes import PRIVATE_FILE, create_private_file, tighten


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate(directory=str(PROJECT_ROOT / "migrations"))


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    """SQLite, the default store, shared by several threads and processes: write-ahead
    logging lets readers work during a write, and a busy timeout makes writers wait
    their turn instead of failing with "database is locked"."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
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


def isoformat_z(moment: datetime) -> str:
    """ISO-8601 UTC with a `Z`, to the second, as the contract writes times."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat() + "Z"
