"""The one SQLAlchemy handle and the time helpers every table shares.

Times are stored as naive UTC: SQLite has no time zone type, and one rule for
both databases is simpler than two.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from app.config import PROJECT_ROOT


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate(directory=str(PROJECT_ROOT / "migrations"))


def utcnow() -> datetime:
    """Naive UTC now, the form every DateTime column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


def isoformat_z(moment: datetime) -> str:
    """ISO-8601 UTC with a `Z`, to the second, as the contract writes times."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat() + "Z"
