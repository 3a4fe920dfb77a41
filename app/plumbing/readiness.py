"""What `/readyz` checks before a load balancer sends this process work (app/health.py answers it).

Ready means every part a request needs works now, not only that the process runs (that is `/healthz`):

- `database`: it answers a query;
- `migrations`: its schema is at the newest revision this code ships (a deploy that forgot
  `flask db upgrade`, or code older than the database, fails here, not on a customer's page);
- `data_key`: the keyring decrypts the newest and oldest value stored in each encrypted table
  (`encryption.unreadable_data`, the start-up check) — another server writing with a key this one
  lacks shows here, while the start-up check has long passed;
- `passid` (live configuration only; with the embedded sandbox PASSID is this very process): PASSID
  answered one of this process's calls within the last `RECENT_SECONDS`, or, when nothing called it
  lately, answers a probe (`GET /api/institution/webhook`, keyed and cheap) now; probes go out at most
  every `PROBE_EVERY_SECONDS` per process, however often the load balancer asks, and wait
  `PROBE_TIMEOUT` at most.

Each check gives "ok", a short sentence saying what failed, or None when it was not checked (the database
being down, or no PASSID to ask); nothing in a sentence is secret, since `/readyz` is public.
"""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from app.config import settings_of
from app.passid import PassidError
from app.plumbing import encryption
from app.plumbing.database import MIGRATIONS_DIR, db
from app.plumbing.passid_connection import passid_connection, upstream_watch, watched_client

OK = "ok"
RECENT_SECONDS = 60.0
PROBE_EVERY_SECONDS = 10.0
PROBE_TIMEOUT = (2.0, 3.0)  # connect, read: well within a load balancer's probe timeout
DATA_KEY_CHECK_EVERY_SECONDS = 30.0  # a passed decrypt check stands this long (about twenty small reads)
CHECKS = ("database", "migrations", "data_key", "passid")
_EXTENSION = "passid_readiness"


@dataclass
class _State:
    """What one process remembers between probes."""

    lock: threading.Lock
    script_heads: frozenset[str] | None = None
    data_key_passed_at: float | None = None
    probed_at: float | None = None
    probe_result: str | None = None


def _state(app: Flask) -> _State:
    state = app.extensions.get(_EXTENSION)
    if state is None:
        state = app.extensions.setdefault(_EXTENSION, _State(threading.Lock()))
    return state


def check_all(app: Flask) -> dict[str, str | None]:
    """Each check's result, in CHECKS order (call inside the app's context)."""
    results: dict[str, str | None] = dict.fromkeys(CHECKS)
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            results["database"] = OK
            results["migrations"] = _guarded(lambda: migrations_current(app, connection))
            results["data_key"] = _guarded(lambda: data_key_reads(app, connection))
    except Exception:  # no connection, or it broke under the checks: nothing below can be trusted
        results["database"] = "the database does not answer"
        results["migrations"] = results["data_key"] = None
    results["passid"] = passid_answers(app)
    return results


def failing(results: dict[str, str | None]) -> list[str]:
    """The checks that ran and failed."""
    return [name for name, result in results.items() if result is not None and result != OK]


def _guarded(check: Callable[[], str]) -> str:
    try:
        return check()
    except Exception as error:  # a check must fail as a result, never as a 500
        return f"could not be checked ({type(error).__name__})"


def migrations_current(app: Flask, connection: Connection) -> str:
    state = _state(app)
    if state.script_heads is None:  # the code's revisions do not change while it runs: read them once
        state.script_heads = script_heads()
    applied = applied_heads(connection)
    if applied == state.script_heads:
        return OK
    if not applied:
        return "no migration has been applied: run `flask db upgrade`"
    return "the schema is not at this code's revision: run `flask db upgrade` (or deploy the newer code)"


# Read without Alembic: importing it (with every SQLAlchemy dialect it supports) would cost each serving worker
# about 11 MB on the load balancer's first probe, for two facts a file read and a query give.
VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps


def script_heads(versions: Path = MIGRATIONS_DIR / "versions") -> frozenset[str]:
    """The newest revisions this code ships: those no other revision names as its `down_revision` (a
    `depends_on` does not count, as in Alembic), read from each migration's module-level assignments, as Alembic's
    `ScriptDirectory.get_heads()` gives them (tests/operations/test_readiness.py compares the two)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        assigned = _assignments(path)
        revision = assigned.get("revision")
        if isinstance(revision, str):
            revisions.add(revision)
            parents.update(_names(assigned.get("down_revision")))
    return frozenset(revisions - parents)


def _names(value: object) -> list[str]:
    """A revision field's names: None, one revision, or several (a merge's parents)."""
    if isinstance(value, str):
        return [value]
    return [name for name in value if isinstance(name, str)] if isinstance(value, tuple | list) else []


def _assignments(path: Path) -> dict[str, object]:
    """A migration file's top-level `name = literal` assignments, without running it."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = value
    return found


def applied_heads(connection: Connection) -> frozenset[str]:
    """The revisions the database is at (Alembic's version table); none when no migration has run."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return frozenset()
    return frozenset(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def data_key_reads(app: Flask, connection: Connection) -> str:
    state = _state(app)
    passed = state.data_key_passed_at
    if passed is not None and time.monotonic() - passed < DATA_KEY_CHECK_EVERY_SECONDS:
        return OK
    unreadable = encryption.unreadable_data(encryption.keyring(), connection)
    if unreadable is not None:
        state.data_key_passed_at = None
        return f"stored data in {unreadable} cannot be decrypted with this server's data keys"
    state.data_key_passed_at = time.monotonic()
    return OK


def passid_answers(app: Flask) -> str | None:
    """None with the embedded sandbox; else whether PASSID answered lately, probing it if nothing did."""
    if settings_of(app).embedded_sandbox:
        return None
    watch = upstream_watch(app)
    if watch.answered_within(RECENT_SECONDS):
        return OK
    state = _state(app)
    with state.lock:  # one probe at a time; the others read its result
        if state.probed_at is not None and time.monotonic() - state.probed_at < PROBE_EVERY_SECONDS:
            return state.probe_result
        state.probe_result = _probe(app)
        state.probed_at = time.monotonic()
        return state.probe_result


def _probe(app: Flask) -> str:
    client = watched_client(app, passid_connection(app), timeout=PROBE_TIMEOUT)
    try:
        client.get_webhook()
    except PassidError:
        pass  # how it failed is counted in the metrics; whether PASSID answered is the watch's to say
    finally:
        client.close()
    if upstream_watch(app).answered_within(RECENT_SECONDS):
        return OK
    return f"PASSID has not answered in the last {RECENT_SECONDS:g} s"
