"""Rate-limit counters in the app's own database, so every worker process counts against one limit.

Why: Flask-Limiter's default (`memory://`) counts per process, so with two workers every limit
doubled. Redis would fix that but is one more thing to run; the database (SQLite by default,
PostgreSQL when DATABASE_URL says so) is already shared by every process and server.

A `limits` storage for the fixed-window strategy (Flask-Limiter's default): registered for the
`database://` scheme by subclassing `limits.storage.Storage`. Each hit is one atomic statement,
`INSERT … ON CONFLICT DO UPDATE … RETURNING` (SQLite ≥ 3.35, PostgreSQL ≥ 9.5), which also starts
a new window when the old one has expired; no read-then-write race between processes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from limits.storage import Storage
from sqlalchemy import Column, Engine, Float, Integer, String, Table, text
from sqlalchemy.exc import SQLAlchemyError

from app.plumbing.database import db

# Created by migration 0006; declared here so the models and the migrations describe the same schema.
rate_limit_counter = Table(
    "rate_limit_counter",
    db.metadata,
    Column("key", String(512), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),  # epoch seconds
)

# Expired rows are deleted at most this often per process: one indexed DELETE, off the hot path.
SWEEP_INTERVAL_SECONDS = 60.0

_HIT = text(
    """
    INSERT INTO rate_limit_counter (key, count, expires_at) VALUES (:key, :amount, :expires_at)
    ON CONFLICT (key) DO UPDATE SET
        count = CASE WHEN rate_limit_counter.expires_at <= :now
                     THEN excluded.count ELSE rate_limit_counter.count + excluded.count END,
        expires_at = CASE WHEN rate_limit_counter.expires_at <= :now
                          THEN excluded.expires_at ELSE rate_limit_counter.expires_at END
    RETURNING count
    """
)
_COUNT = text("SELECT count FROM rate_limit_counter WHERE key = :key AND expires_at > :now")
_EXPIRY = text("SELECT expires_at FROM rate_limit_counter WHERE key = :key AND expires_at > :now")
_CLEAR = text("DELETE FROM rate_limit_counter WHERE key = :key")
_SWEEP = text("DELETE FROM rate_limit_counter WHERE expires_at <= :now")
_RESET = text("DELETE FROM rate_limit_counter")


def _app_engine() -> Engine:
    """The engine of the app handling this request (every limiter call happens inside one)."""
    return db.engine


class DatabaseStorage(Storage):
    """Fixed-window counters in the `rate_limit_counter` table (migration 0006).

    `engine` is for use outside an app (tests, scripts); inside the app each call uses the current
    app's engine, so several apps in one process never share counters by accident.
    """

    STORAGE_SCHEME = ["database"]

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        engine: Engine | None = None,
        sweep_interval: float = SWEEP_INTERVAL_SECONDS,
        **options: Any,
    ) -> None:
        self._engine = engine
        self._sweep_interval = sweep_interval
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def engine(self) -> Engine:
        return self._engine if self._engine is not None else _app_engine()

    def incr(self, key: str, expiry: int | float, amount: int = 1) -> int:
        """Count `amount` hits on `key`; a window starts `expiry` seconds long at its first hit."""
        now = time.time()
        with self.engine().begin() as connection:
            count = connection.execute(
                _HIT, {"key": key, "amount": amount, "expires_at": now + expiry, "now": now}
            ).scalar_one()
        self._sweep_now_and_then(now)
        return int(count)

    def get(self, key: str) -> int:
        with self.engine().connect() as connection:
            count = connection.execute(_COUNT, {"key": key, "now": time.time()}).scalar_one_or_none()
        return int(count or 0)

    def get_expiry(self, key: str) -> float:
        """When the current window ends (epoch seconds); now when there is none."""
        now = time.time()
        with self.engine().connect() as connection:
            expires_at = connection.execute(_EXPIRY, {"key": key, "now": now}).scalar_one_or_none()
        return float(expires_at) if expires_at is not None else now

    def check(self) -> bool:
        try:
            with self.engine().connect() as connection:
                connection.execute(text("SELECT 1 FROM rate_limit_counter WHERE 1 = 0"))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine().begin() as connection:
            return connection.execute(_RESET).rowcount

    def clear(self, key: str) -> None:
        with self.engine().begin() as connection:
            connection.execute(_CLEAR, {"key": key})

    def _sweep_now_and_then(self, now: float) -> None:
        """Delete expired windows at most once per interval per process, so old keys do not pile up."""
        if time.monotonic() < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = time.monotonic() + self._sweep_interval
            with self.engine().begin() as connection:
                connection.execute(_SWEEP, {"now": now})
        finally:
            self._sweep_lock.release()
