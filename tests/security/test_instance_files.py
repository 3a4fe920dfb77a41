"""Secrets and the database on disk are readable by their owner only.

With no SECRET_KEY and no DATABASE_URL the app keeps a generated secret key and its
SQLite database (with SQLite's -wal and -shm files) in its instance folder, and each
Granian server's metrics folder (its workers' figures). That folder and every folder in
it are 0700 and every file 0600, whether the app creates them or finds them looser at
start-up. PASSID_INSTANCE_DIR points the app at a temporary folder here,
so the project's own instance/ is never touched.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.servers import AppServer, base_env, migrate
from tests.support.widget_http import widget_fields


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(instance: Path) -> dict[str, str]:
    """Each file's mode, and each folder's, by its path under `instance` (folders end with /)."""
    return {str(path.relative_to(instance)) + ("/" if path.is_dir() else ""): oct(_mode(path))
            for path in instance.rglob("*")}


def _owner_only(modes: dict[str, str]) -> bool:
    return all(mode == ("0o700" if name.endswith("/") else "0o600") for name, mode in modes.items())


@pytest.fixture
def instance_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """The environment `make run` would have on a fresh machine, with the instance folder in tmp_path."""
    instance = tmp_path / "instance"
    env = base_env("unused", PASSID_INSTANCE_DIR=str(instance))
    del env["DATABASE_URL"], env["SECRET_KEY"]
    previous = os.umask(0o022)  # the usual umask, which makes new files 0644: the app must not rely on it
    try:
        yield env, instance
    finally:
        os.umask(previous)


def _write_something(server: AppServer) -> None:
    """A manual verify: the app writes its record (and the sandbox its own) to the database."""
    fields = widget_fields(server.url)
    answer = requests.post(f"{server.url}/verify/token/check", data={**fields, "token": "KE8V-3TXY-Z72L"},
                           timeout=10)
    assert 'data-view="success"' in answer.text


def test_everything_the_app_writes_under_instance_is_owner_only_and_files_found_looser_are_tightened_at_start_up(
    instance_env: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """One migrated instance folder for both halves: the real command creates it (one `flask db upgrade`)."""
    env, instance = instance_env
    migrate(env, run_alembic=True)  # the real command creates the file: its mode is the subject
    server = AppServer(env, tmp_path / "app.log").start()
    try:
        _write_something(server)
        names = {path.name for path in instance.iterdir()}
        assert {"secret_key", "passid.db", "passid.db-wal", "passid.db-shm", "metrics"} <= names
        assert any(name.startswith("metrics/") and name.endswith(".db") for name in _modes(instance))
        assert _mode(instance) == 0o700
        assert _owner_only(_modes(instance)), _modes(instance)
    finally:
        server.stop()

    # Files found looser: the folder and everything in it opened up, and a file of the operator's left there.
    instance.chmod(0o755)
    for path in sorted(instance.rglob("*"), reverse=True):  # a folder's files before the folder
        path.chmod(0o755 if path.is_dir() else 0o644)
    (instance / "notes.txt").write_text("left here by an operator")
    (instance / "notes.txt").chmod(0o664)
    server = AppServer(env, tmp_path / "app-again.log").start()
    try:
        _write_something(server)
        assert _mode(instance) == 0o700
        assert _owner_only(_modes(instance)), _modes(instance)
    finally:
        server.stop()


def test_an_empty_or_short_generated_secret_is_never_used(tmp_path: Path) -> None:
    """A crash between creating the file and writing it left an empty key, and an empty key signs anything."""
    from app.config import load_settings

    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    (instance / "secret_key").write_text("")
    env = {"PASSID_INSTANCE_DIR": str(instance), "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}"}
    first = load_settings(env).secret_key
    assert len(first) >= 32
    assert _mode(instance / "secret_key") == 0o600
    assert load_settings(env).secret_key == first  # kept from then on
    assert not [path.name for path in instance.iterdir() if path.name.startswith(".secret_key.")]  # no leftovers
