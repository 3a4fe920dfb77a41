"""`/readyz`: ready only when every part a request needs works, and each failing part named.

In process, one app per case: a database that does not answer, a schema behind the code, stored data the
data key cannot decrypt (written by a server with another key), and, in a live configuration, a PASSID
that does not answer, then one that does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import text

from app import create_app
from app.passid import PassidClient
from app.plumbing import readiness as readiness_checks
from app.plumbing.database import db
from app.rules import verifications
from tests.support.in_process import app_environ, migrated_sqlite_url
from tests.support.servers import ROOT, free_port

pytestmark = pytest.mark.databases("sqlite")


def readiness(app: Flask) -> tuple[int, dict[str, Any]]:
    answer = app.test_client().get("/readyz")
    return answer.status_code, answer.get_json()


@pytest.fixture
def bare_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Apps built straight from a test environment, with no server of their own and no passes running."""
    built: list[Flask] = []

    def build(database_url: str | None = None, directory: Path | None = None, **settings: str) -> Flask:
        folder = directory or tmp_path / f"bare-{len(built)}"
        folder.mkdir(exist_ok=True)
        app = create_app(app_environ(database_url or migrated_sqlite_url(folder), folder, free_port(),
                                     PASSID_BACKGROUND_JOBS="false", **settings))
        built.append(app)
        return app

    yield build
    for app in built:
        with app.app_context():
            db.engine.dispose()


def test_a_working_app_on_the_embedded_sandbox_is_ready(app: Flask) -> None:
    status, body = readiness(app)
    assert status == 200, body
    assert body["status"] == "ready" and body["failing"] == []
    assert body["checks"] == {"database": "ok", "migrations": "ok", "data_key": "ok", "passid": "not checked"}


def test_a_database_that_does_not_answer_is_named(bare_app: Callable[..., Flask]) -> None:
    closed = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    status, body = readiness(bare_app(closed))
    assert status == 503
    assert body["failing"] == ["database"]
    assert body["checks"]["migrations"] == body["checks"]["data_key"] == "not checked"


def test_a_schema_behind_the_code_is_named(bare_app: Callable[..., Flask]) -> None:
    app = bare_app()
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = '0016_verdicts_and_session_cancel'"))
        db.session.commit()
    status, body = readiness(app)
    assert status == 503
    assert body["failing"] == ["migrations"]
    assert "flask db upgrade" in body["checks"]["migrations"]


def test_a_database_no_migration_has_run_on_is_named(bare_app: Callable[..., Flask], tmp_path: Path) -> None:
    status, body = readiness(bare_app(f"sqlite:///{tmp_path / 'empty.db'}"))
    assert status == 503
    assert "no migration has been applied" in body["checks"]["migrations"]


def test_the_code_s_revisions_are_read_as_alembic_reads_them(tmp_path: Path) -> None:
    """/readyz reads the newest revisions without Alembic (each worker would carry it): the same ones Alembic finds,
    in the shipped migrations and in a tree with a merge, a second head and a dependency."""
    assert readiness_checks.script_heads() == frozenset(ScriptDirectory(str(ROOT / "migrations")).get_heads())
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    tree = {"a": (None, None), "b": ("a", None), "c": ("a", None), "d": (("b", "c"), None),
            "e": ("a", None), "f": ("e", "d"), "g": ("b", None)}
    for revision, (down, depends_on) in tree.items():
        (versions / f"{revision}_step.py").write_text(
            f"import sqlalchemy as sa\n\nrevision = {revision!r}\ndown_revision = {down!r}\n"
            f"branch_labels = None\ndepends_on = {depends_on!r}\nTABLE = sa.table('x')\n\n\n"
            "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n")
    alembic_heads = frozenset(ScriptDirectory(str(tmp_path / "migrations")).get_heads())
    assert alembic_heads == {"d", "f", "g"}  # `f` depends on `d`, which stays a head
    assert readiness_checks.script_heads(versions) == alembic_heads


def test_stored_data_the_data_key_cannot_decrypt_is_named(bare_app: Callable[..., Flask], tmp_path: Path) -> None:
    """Another server, started with another key, writes a verification; this one cannot read it."""
    ours = bare_app(directory=tmp_path / "ours")
    database = str(ours.config["SQLALCHEMY_DATABASE_URI"])
    assert readiness(ours)[0] == 200
    theirs = bare_app(database, tmp_path / "theirs", PASSID_DATA_KEY=Fernet.generate_key().decode())
    with theirs.app_context():
        verifications.record(source=verifications.Source.CLI, status=verifications.FinalStatus.DENIED,
                             token="TEST-EXPD-0001", deny_reason="TOKEN_EXPIRED")

    ours.extensions.pop("passid_readiness")  # the passed check it remembers for a while
    status, body = readiness(ours)
    assert status == 503
    assert body["failing"] == ["data_key"]
    assert "verification" in body["checks"]["data_key"]


def test_a_live_passid_that_does_not_answer_is_named_then_one_that_does_is_ready(
    bare_app: Callable[..., Flask], app: Flask
) -> None:
    """Live configuration: PASSID at a closed port, then at a sandbox that answers (the embedded one of `app`)."""
    live = {"PASSID_API_KEY": "sk_live_" + "n" * 32, "PASSID_WEBHOOK_SECRET": "whsec_for_the_readiness_test"}
    silent = bare_app(PASSID_BASE_URL=f"http://127.0.0.1:{free_port()}", **live)
    status, body = readiness(silent)
    assert status == 503
    assert body["failing"] == ["passid"]
    assert "has not answered" in body["checks"]["passid"]

    sandbox_url = app.config["PASSID_BASE_URL"]
    key = PassidClient(sandbox_url).onboard("Ready Bank").sandbox_key
    answering = bare_app(PASSID_BASE_URL=sandbox_url, **{**live, "PASSID_API_KEY": key})
    status, body = readiness(answering)
    assert status == 200, body
    assert body["checks"]["passid"] == "ok"
