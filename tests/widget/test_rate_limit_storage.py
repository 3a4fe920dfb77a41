"""The `database://` rate-limit storage on SQLite and PostgreSQL: windows, expiry, sweeping, concurrency."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import Engine, create_engine, text

import app.plumbing.rate_limit_storage  # noqa: F401  (registers database://)
from app.plumbing.rate_limit_storage import DatabaseStorage


@pytest.fixture
def engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = create_engine(fresh_database_url)
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT key, count FROM rate_limit_counter")).tuples().all())


def test_the_scheme_is_registered_with_limits(engine: Engine) -> None:
    assert isinstance(storage_from_string("database://", engine=engine), DatabaseStorage)


def test_a_fixed_window_counts_hits_and_refuses_past_the_limit(engine: Engine) -> None:
    limiter = FixedWindowRateLimiter(DatabaseStorage(engine=engine))
    three = parse("3 per minute")
    assert [limiter.hit(three, "client-a") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(three, "client-b")  # another client has its own window
    stats = limiter.get_window_stats(three, "client-a")
    assert stats.remaining == 0
    storage = DatabaseStorage(engine=engine)
    assert storage.get(three.key_for("client-a")) == 4 and storage.check()


def test_an_expired_window_starts_again_and_is_swept_away(engine: Engine) -> None:
    storage = DatabaseStorage(engine=engine, sweep_interval=3600)
    assert storage.incr("expired", 0) == 1  # a window of 0 s is over at once
    assert storage.get("expired") == 0 and storage.incr("expired", 0) == 1  # a new window, not 2
    assert storage.incr("old", 0) == 1
    assert storage.incr("live", 60) == 1 and storage.incr("live", 60) == 2
    assert set(_rows(engine)) == {"expired", "old", "live"}  # swept at the first incr only, not since
    DatabaseStorage(engine=engine).incr("another", 60)  # a new process sweeps at its first hit
    assert _rows(engine) == {"live": 2, "another": 1}


def test_concurrent_hits_are_counted_exactly(engine: Engine) -> None:
    storage = DatabaseStorage(engine=engine)
    with ThreadPoolExecutor(8) as pool:
        counts = sorted(pool.map(lambda _: storage.incr("busy", 60), range(40)))
    assert counts == list(range(1, 41))


def test_clear_and_reset(engine: Engine) -> None:
    storage = DatabaseStorage(engine=engine)
    storage.incr("a", 60)
    storage.incr("b", 60)
    storage.clear("a")
    assert storage.get("a") == 0 and storage.get("b") == 1
    assert storage.reset() == 1 and _rows(engine) == {}
