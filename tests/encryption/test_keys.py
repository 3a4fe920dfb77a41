"""PASSID_DATA_KEY: the keyring, its keyed hashes, and what start-up says about a missing, malformed or wrong key."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from app import create_app
from app.config import ConfigError, config_error_sentences, load_settings
from app.plumbing.database import db
from app.plumbing.encryption import DataKeyError, Keyring, canonical
from app.rules import verifications
from tests.support.servers import BIN, ROOT, TEST_DATA_KEY, AppServer, base_env, migrate
from tests.support.widget_http import widget_fields

# Fixed (xdist collects the same test ids in every worker), and for these tests only.
K1, K2 = "Zmlyc3Qta2V5LW9mLXRoZS1lbmNyeXB0aW9uLXRlc3Q=", "c2Vjb25kLWtleS1vZi10aGUtZW5jcnlwdGlvbi10c3Q="
LIVE = {"PASSID_BASE_URL": "https://api.passid.io", "PASSID_API_KEY": "sk_live_" + "a" * 32}


def settings_for(tmp_path: Path, **environ: str):  # type: ignore[no-untyped-def]
    return load_settings({"SECRET_KEY": "test-secret", "DATABASE_URL": "sqlite:///:memory:",
                          "PASSID_INSTANCE_DIR": str(tmp_path / "instance"), **environ})


# --- the keyring ---------------------------------------------------------------------------------


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old = Keyring([K1]).encrypt(b"GBP 40k-60k")
    both = Keyring([K2, K1])
    assert both.decrypt(old) == b"GBP 40k-60k"
    new = both.encrypt(b"GBP 40k-60k")
    assert Keyring([K2]).decrypt(new) == b"GBP 40k-60k"
    with pytest.raises(DataKeyError):
        Keyring([K1]).decrypt(new)
    assert both.encrypt(b"x") != both.encrypt(b"x")  # each encryption differs: nothing to compare in SQL


def test_a_token_hashes_the_same_however_it_is_typed() -> None:
    ring = Keyring([K1])
    forms = ("KE8V-3TXY-Z72L", "ke8v3txyz72l", "passid-ke8v-3txy-z72l", " PASSID KE8V 3TXY Z72L ")
    assert {canonical(form) for form in forms} == {"KE8V3TXYZ72L"}
    assert len({ring.search_hash(form) for form in forms}) == 1
    assert ring.search_hash("KE8V-3TXY-Z72") != ring.search_hash("KE8V-3TXY-Z72L")
    assert ring.search_hash("") is None and ring.search_hash("--") is None and ring.lookup_hashes(None) == []


def test_the_hash_is_keyed_and_a_lookup_tries_every_key_newest_first() -> None:
    token = "KE8V-3TXY-Z72L"
    assert Keyring([K1]).search_hash(token) != Keyring([K2]).search_hash(token)
    assert Keyring([K2, K1]).lookup_hashes(token) == [Keyring([K2]).search_hash(token),
                                                       Keyring([K1]).search_hash(token)]
    assert K1 not in repr(Keyring([K1]))


# --- configuration -------------------------------------------------------------------------------


def test_against_a_real_passid_the_key_must_be_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_for(tmp_path, **LIVE)
    [problem] = raised.value.problems
    assert problem.startswith("PASSID_DATA_KEY is required when PASSID_BASE_URL")
    assert not (tmp_path / "instance" / "data_key").exists()
    assert settings_for(tmp_path, **LIVE, PASSID_DATA_KEY=f"{K2},{K1}").data_keys == (K2, K1)


@pytest.mark.parametrize("value", ["not-a-key", K1[:-2], f"{K1},{K2}x", "a" * 44])
def test_a_malformed_key_is_one_sentence_that_does_not_repeat_it(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_for(tmp_path, PASSID_DATA_KEY=value)
    [problem] = raised.value.problems
    assert "PASSID_DATA_KEY key" in problem and "is not a Fernet key" in problem
    assert value not in problem


def test_on_the_embedded_sandbox_a_key_is_generated_once_into_the_instance_folder(tmp_path: Path) -> None:
    first = settings_for(tmp_path)
    path = tmp_path / "instance" / "data_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [key] = first.data_keys
    assert path.read_text().strip() == key and Keyring([key])  # a valid Fernet key
    assert settings_for(tmp_path).data_keys == (key,)  # the next start reads the same one


def test_processes_starting_at_once_generate_one_key(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    script = ("from app.config import load_settings\n"
              f"print(load_settings({{'SECRET_KEY': 's', 'DATABASE_URL': 'sqlite:///:memory:', "
              f"'PASSID_INSTANCE_DIR': {str(instance)!r}}}).data_keys[0])\n")
    processes = [subprocess.Popen([str(BIN / "python"), "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
                 for _ in range(4)]
    keys = {process.communicate(timeout=60)[0].strip() for process in processes}
    assert keys == {(instance / "data_key").read_text().strip()}


def test_a_damaged_generated_key_is_never_replaced(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    (instance / "data_key").write_text("cut sho")
    with pytest.raises(ConfigError) as raised:
        settings_for(tmp_path)
    assert "does not hold a Fernet key" in raised.value.problems[0]
    assert (instance / "data_key").read_text() == "cut sho"


# --- start-up against stored data -----------------------------------------------------------------


def _store_a_verification(env: dict[str, str]) -> None:
    app = create_app(env)
    with app.app_context():
        verifications.record(source="cli", status="completed", token="KE8V-3TXY-Z72L",
                             claims={"tier": "A", "income_band": "GBP 40k-60k"})
        db.engine.dispose()


def test_a_wrong_key_stops_start_up_with_one_sentence(fresh_database_url: str) -> None:
    """create_app is what every entry point runs (`wsgi.py`, the `flask` CLI), and its error becomes their one
    sentence on stderr and exit status 4 (tests/test_config.py runs those entry points as processes)."""
    env = base_env(fresh_database_url, PASSID_BACKGROUND_JOBS="false")
    _store_a_verification(env)
    with pytest.raises(ConfigError) as wrong:
        create_app({**env, "PASSID_DATA_KEY": K1})
    assert config_error_sentences(wrong.value) == [
        "Configuration error: PASSID_DATA_KEY cannot decrypt the data already stored in the verification table: "
        "start with the key it was encrypted with (in PASSID_DATA_KEYS_DECRYPT_ONLY, if you are rotating), and "
        "remove an old key only after `flask passid rotate-data-key` has run."
    ]
    # The same key behind a new one starts (the first step of a rotation).
    rotating = create_app({**env, "PASSID_DATA_KEY": f"{K1},{TEST_DATA_KEY}"})
    with rotating.app_context():
        db.engine.dispose()


def test_a_new_database_migrates_under_any_key(tmp_path: Path) -> None:
    migrate(base_env(f"sqlite:///{tmp_path / 'new.db'}", PASSID_DATA_KEY=K2), run_alembic=True)


def test_make_run_generates_the_key_into_instance_and_encrypts_with_it(tmp_path: Path) -> None:
    """`make run` on a fresh machine: no PASSID_DATA_KEY, so `flask db upgrade` makes instance/data_key (0600)
    and the server's processes all encrypt with it."""
    instance = tmp_path / "instance"
    env = base_env(f"sqlite:///{tmp_path / 'passid.db'}", PASSID_INSTANCE_DIR=str(instance))
    del env["PASSID_DATA_KEY"]
    migrate(env, run_alembic=True)
    key_file = instance / "data_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    server = AppServer(env, tmp_path / "app.log")
    server.workers = 2
    server.start()
    try:
        fields = widget_fields(server.url)
        done = requests.post(f"{server.url}/verify/token/check", data={**fields, "token": "KE8V-3TXY-Z72L"},
                             timeout=10)
        assert 'data-view="success"' in done.text
    finally:
        server.stop()
    engine = create_engine(env["DATABASE_URL"])
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT claims_json FROM verification")).scalar()
    engine.dispose()
    assert b'"income_band"' in Keyring([key_file.read_text().strip()]).decrypt(stored.encode())
