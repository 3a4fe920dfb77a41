"""A flood of unsigned webhook posts: are PASSID's signed deliveries and customers' checks still answered?

Our app runs under Granian (`make run`'s server) with a webhook secret; forty threads post `{}`
without a signature to `/webhooks/passid` from the same address as everything else, while two
threads deliver validly signed events and two post customer token checks, each every 50 ms
(tests/support/flood.py, which tests/serving/test_flood.py asserts on). Printed: the share of the
legitimate calls that got their real answer (200 for a delivery, the widget's 422 for a token that
is not one) rather than a 503 or nothing, and what the flood itself was answered. SQLite with one
worker, PostgreSQL (when one answers at TEST_POSTGRES_URL) with two, as bench/webhook_ack.py runs them.

Run: `make bench` (or `.venv/bin/python -m bench.flood [--seconds 10]`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.support import PRODUCTION_LIKE, WEBHOOK_SECRET, BenchServer, machine_note, print_table
from tests.support.flood import FLOOD_THREADS, FloodOutcome, flood_while_serving
from tests.support.servers import (
    base_env,
    create_postgres_database,
    drop_postgres_database,
    migrate,
    postgres_available,
)

ANSWERED = "signed deliveries and customer checks answered during a 40-thread unsigned flood"


def run(label: str, database_url: str, tmp: Path, seconds: float, workers: int) -> list[object]:
    env = base_env(database_url, PASSID_WEBHOOK_SECRET=WEBHOOK_SECRET, **PRODUCTION_LIKE)
    migrate(env)
    server = BenchServer(env, tmp / f"{label}.log", workers=workers).start()
    try:
        outcome = flood_while_serving(server.url, WEBHOOK_SECRET, seconds, flood_threads=FLOOD_THREADS)
    finally:
        server.stop()
    print(f"{label}: {ANSWERED}: {outcome.answered_percent():.1f}% ({outcome.answered} of {outcome.legitimate})")
    return row(f"{label} ({workers} worker{'s' if workers > 1 else ''})", outcome)


def row(label: str, outcome: FloodOutcome) -> list[object]:
    signed, checks = sum(outcome.signed.values()), sum(outcome.checks.values())
    return [label, f"{outcome.answered_percent():.1f}%", f"{outcome.signed[200]}/{signed}",
            f"{outcome.checks[422]}/{checks}", outcome.signed[503] + outcome.checks[503],
            outcome.flood[401] + outcome.flood[429], outcome.flood[503], outcome.flood[0]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each flood lasts (default 10)")
    args = parser.parse_args()
    note = machine_note()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(run("SQLite", f"sqlite:///{tmp}/flood.db", Path(tmp), args.seconds, 1))
        if postgres_available():
            name, url = create_postgres_database()
            try:
                rows.append(run("PostgreSQL", url, Path(tmp), args.seconds, 2))
            finally:
                drop_postgres_database(name)
        else:
            print("(PostgreSQL not reachable: its row is skipped)")
    print_table(
        f"Unsigned flood: {FLOOD_THREADS} threads posting {{}} to /webhooks/passid for {args.seconds:g} s "
        f"({note}); target: 100% answered, no 503",
        ["app", "answered", "signed 200", "checks 422", "legit 503", "flood 401/429", "flood 503", "flood no answer"],
        rows,
    )


if __name__ == "__main__":
    main()
