"""The per-process record of finished requests: when it asks the database, for what, and what it forgets.

Plain objects with a hand-driven clock: the question is which query runs when, not how fast.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy.exc import OperationalError

from app.rules.finished_requests import FinishedRequests

NOW = datetime(2030, 1, 1, 12, 0, 0)


class Clocks:
    """A monotonic clock and a wall clock that move together, by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def monotonic(self) -> float:
        return self.seconds

    def wall(self) -> datetime:
        return NOW + timedelta(seconds=self.seconds - 1000.0)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


class Database:
    """Rows by request id and created_at; remembers each `since` it was asked for."""

    def __init__(self) -> None:
        self.rows: dict[str, datetime] = {}
        self.asked: list[datetime] = []
        self.failing = False

    def created_since(self, since: datetime) -> list[str]:
        self.asked.append(since)
        if self.failing:
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        return [request_id for request_id, created in self.rows.items() if created >= since]


def record(clocks: Clocks, database: Database) -> FinishedRequests:
    return FinishedRequests(database.created_since, clock=clocks.monotonic, wall_clock=clocks.wall,
                            refresh_seconds=0.05, overlap=timedelta(seconds=10), keep=timedelta(hours=2))


def test_the_first_poll_looks_back_as_far_as_ids_are_kept_then_queries_wait_for_the_interval() -> None:
    clocks, database = Clocks(), Database()
    database.rows["req_earlier"] = clocks.wall() - timedelta(minutes=30)  # another worker, before we started
    finished = record(clocks, database)

    assert finished.holds("req_earlier")
    assert database.asked == [NOW - timedelta(hours=2, seconds=10)]

    for _ in range(100):
        assert not finished.holds("req_waiting")
    clocks.advance(0.049)
    assert not finished.holds("req_waiting")
    assert len(database.asked) == 1  # a hundred polls inside the interval: no query

    clocks.advance(0.002)
    assert not finished.holds("req_waiting")
    assert database.asked[1:] == [NOW - timedelta(seconds=10)]  # since the last refresh began, less the overlap


def test_a_row_another_process_committed_late_is_found_by_the_overlap() -> None:
    clocks, database = Clocks(), Database()
    finished = record(clocks, database)
    finished.holds("req_x")
    clocks.advance(1.0)
    # Stamped 8 s before our last refresh began (a slow commit, or a host whose clock runs behind).
    database.rows["req_late"] = NOW - timedelta(seconds=8)
    assert finished.holds("req_late")


def test_a_row_this_process_records_is_known_at_once_without_a_query() -> None:
    clocks, database = Clocks(), Database()
    finished = record(clocks, database)
    finished.holds("req_warm")
    finished.note("req_mine")
    assert finished.holds("req_mine")
    assert len(database.asked) == 1


def test_ids_are_forgotten_after_two_hours_so_the_set_cannot_grow_forever() -> None:
    clocks, database = Clocks(), Database()
    finished = record(clocks, database)
    finished.note("req_old")
    clocks.advance(3600)
    assert finished.holds("req_old") and len(finished) == 1
    clocks.advance(3601)
    assert not finished.holds("req_old") and len(finished) == 0


def test_one_thread_refreshes_and_the_others_answer_from_the_set_without_waiting() -> None:
    clocks, database = Clocks(), Database()
    other_answers: list[bool] = []

    def slow_query(since: datetime) -> list[str]:
        # While this refresh runs, another poll arrives: it must answer, not wait and not query too.
        if database.asked:
            other = threading.Thread(target=lambda: other_answers.extend([finished.holds("req_known"),
                                                                          finished.holds("req_new")]))
            other.start()
            other.join(timeout=10)
            assert not other.is_alive(), "the other poll waited for the refresh"
            database.rows["req_new"] = clocks.wall()
        return database.created_since(since)

    finished = FinishedRequests(slow_query, clock=clocks.monotonic, wall_clock=clocks.wall)
    finished.note("req_known")
    finished.holds("req_known")
    clocks.advance(1.0)
    assert finished.holds("req_new")
    assert other_answers == [True, False]
    assert len(database.asked) == 2


def test_a_failed_refresh_keeps_the_set_and_the_next_one_looks_back_from_the_same_point() -> None:
    clocks, database = Clocks(), Database()
    finished = record(clocks, database)
    finished.note("req_known")
    finished.holds("req_known")

    clocks.advance(1.0)
    database.failing = True
    assert finished.holds("req_known")  # answered from the set; the failure is logged, not raised
    assert not finished.holds("req_other")
    assert len(database.asked) == 2  # and not retried on every poll

    clocks.advance(1.0)
    database.failing = False
    database.rows["req_during_outage"] = clocks.wall() - timedelta(seconds=1.5)
    assert finished.holds("req_during_outage")
    assert database.asked[2] == database.asked[1] == NOW - timedelta(seconds=10)  # from the same point
