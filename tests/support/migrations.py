"""Migration tests: an empty database of either kind, and `flask db …` run as an operator runs it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.servers import BIN, ROOT, create_postgres_database, drop_postgres_database, postgres_available


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


def flask_db(env: dict[str, str], *args: str) -> None:
    """`flask --app app db ARGS…` (upgrade, downgrade REVISION, …) against env's database."""
    subprocess.run([str(BIN / "flask"), "--app", "app", "db", *args], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
