"""`load_settings`: defaults that work, and every bad value stopping start-up with a sentence naming it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.config import (
    ALL_PERMISSIONS,
    CONFIG_ERROR_EXIT_STATUS,
    DEFAULT_RETRY_SCHEDULE,
    SETTINGS,
    ConfigError,
    current_settings,
    load_settings,
    load_settings_or_exit,
    settings_of,
)
from tests.support.servers import (
    BIN,
    DEFAULT_SERVER,
    ROOT,
    TEST_DATA_KEY,
    AppServer,
    base_env,
    free_port,
    serve_command,
)

LIVE_KEY = "sk_live_" + "a" * 32


def settings_for(**environ: str):  # type: ignore[no-untyped-def]
    """Settings from exactly these variables (never `.env`, never the process environment)."""
    return load_settings({"SECRET_KEY": "test-secret", "DATABASE_URL": "sqlite:///:memory:",
                          "PASSID_DATA_KEY": TEST_DATA_KEY, **environ})


def test_the_defaults_are_valid_and_point_at_the_embedded_sandbox() -> None:
    settings = load_settings({"SECRET_KEY": "test-secret"})
    assert settings.port == 5000 and settings.host == "127.0.0.1"
    assert settings.secret_key == "test-secret"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.passid_base_url is None and settings.passid_api_key is None
    assert settings.sandbox_enabled and settings.embedded_sandbox
    assert settings.permissions == ALL_PERMISSIONS
    assert settings.theme_primary == "#00c27a"
    assert settings.allowed_embed_origins == ()
    assert settings.webhook_retry_schedule == DEFAULT_RETRY_SCHEDULE == (0, 30, 300, 1800, 7200)
    assert settings.institution_name == "Demo Bank"
    flask_config = settings.to_flask()
    assert flask_config["PASSID_BASE_URL"] == "http://127.0.0.1:5000/sandbox"
    assert flask_config["SECRET_KEY"] == "test-secret" and flask_config["PASSID_EMBEDDED_SANDBOX"] is True


def test_good_values_are_read_and_normalised() -> None:
    settings = settings_for(
        PORT="8080",
        PASSID_BASE_URL="https://api.passid.io/",
        PASSID_API_KEY=LIVE_KEY,
        PASSID_SANDBOX_ENABLED="off",
        PASSID_PERMISSIONS=" full_score , fraud_risk ",
        PASSID_THEME_PRIMARY="#1A2b3C",
        PASSID_ALLOWED_EMBED_ORIGINS="https://bank.example, http://localhost:3000",
        PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,2",
    )
    assert settings.port == 8080
    assert settings.passid_base_url == "https://api.passid.io" and settings.passid_api_key == LIVE_KEY
    assert settings.sandbox_enabled is False and settings.embedded_sandbox is False
    assert settings.permissions == ("full_score", "fraud_risk")
    assert settings.theme_primary == "#1A2b3C"
    assert settings.allowed_embed_origins == ("https://bank.example", "http://localhost:3000")
    assert settings.webhook_retry_schedule == (0.0, 0.5, 2.0)
    assert settings.to_flask()["PASSID_BASE_URL"] == "https://api.passid.io"


def test_verdict_rules_are_read_over_the_defaults() -> None:
    settings = settings_for(PASSID_VERDICT_RULES=" identity_not_verified = decline , income_not_verified=approve",
                            PASSID_MINIMUM_TIER="C")
    assert settings.verdict_rules == {"identity_not_verified": "decline", "income_not_verified": "approve"}
    assert settings.minimum_tier == "C"
    assert settings_for().verdict_rules == {} and settings_for().minimum_tier is None


def test_the_customer_reads_the_claims_the_bank_chose_but_never_its_risk_assessment() -> None:
    assert settings_for().customer_claims == ("full_score", "income_verified", "identity_verified")
    chosen = settings_for(PASSID_CUSTOMER_CLAIMS=" identity_verified , payment_reliability ")
    assert chosen.customer_claims == ("identity_verified", "payment_reliability")
    assert settings_for(PASSID_CUSTOMER_CLAIMS="none").customer_claims == ()
    for assessment in ("fraud_risk", "sanctions_clear"):
        with pytest.raises(ConfigError) as error:
            settings_for(PASSID_CUSTOMER_CLAIMS=f"full_score,{assessment}")
        assert f"PASSID_CUSTOMER_CLAIMS names {assessment}: the bank's own assessment" in str(error.value)


def test_the_default_currency_is_an_iso_4217_code() -> None:
    assert settings_for().default_currency == "USD"
    assert settings_for(PASSID_DEFAULT_CURRENCY=" kes ").default_currency == "KES"


def test_an_explicit_environment_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "abc")
    monkeypatch.setenv("PASSID_THEME_PRIMARY", "red")
    assert settings_for().port == 5000


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "0"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PASSID_BASE_URL": "ftp://x", "PASSID_API_KEY": LIVE_KEY}, "PASSID_BASE_URL"),
        ({"PASSID_BASE_URL": "api.passid.io", "PASSID_API_KEY": LIVE_KEY}, "PASSID_BASE_URL"),
        ({"PASSID_BASE_URL": "https://api.passid.io"}, "PASSID_API_KEY"),
        ({"PASSID_API_KEY": "nonsense"}, "PASSID_API_KEY"),
        ({"PASSID_API_KEY": "sk_test_" + "a" * 32}, "PASSID_API_KEY"),
        ({"PASSID_PERMISSIONS": "full_score,shoe_size"}, "PASSID_PERMISSIONS"),
        ({"PASSID_THEME_PRIMARY": "red"}, "PASSID_THEME_PRIMARY"),
        ({"PASSID_VERDICT_RULES": "shoe_size=review"}, "PASSID_VERDICT_RULES"),
        ({"PASSID_VERDICT_RULES": "sanctions_match=approve"}, "PASSID_VERDICT_RULES"),
        ({"PASSID_VERDICT_RULES": "identity_not_verified=maybe"}, "PASSID_VERDICT_RULES"),
        ({"PASSID_VERDICT_RULES": "identity_not_verified"}, "PASSID_VERDICT_RULES"),
        ({"PASSID_MINIMUM_TIER": "F"}, "PASSID_MINIMUM_TIER"),
        ({"PASSID_MINIMUM_TIER": "b"}, "PASSID_MINIMUM_TIER"),
        ({"PASSID_THEME_PRIMARY": "#00c27"}, "PASSID_THEME_PRIMARY"),
        ({"PASSID_THEME_PRIMARY": "#00c27a;background:url(x)"}, "PASSID_THEME_PRIMARY"),
        ({"PASSID_ALLOWED_EMBED_ORIGINS": "not-an-origin"}, "PASSID_ALLOWED_EMBED_ORIGINS"),
        ({"PASSID_ALLOWED_EMBED_ORIGINS": "https://bank.example/path"}, "PASSID_ALLOWED_EMBED_ORIGINS"),
        ({"PASSID_ALLOWED_EMBED_ORIGINS": "*"}, "PASSID_ALLOWED_EMBED_ORIGINS"),
        ({"PASSID_WEBHOOK_RETRY_SCHEDULE": "a,b"}, "PASSID_WEBHOOK_RETRY_SCHEDULE"),
        ({"PASSID_WEBHOOK_RETRY_SCHEDULE": "0,-30"}, "PASSID_WEBHOOK_RETRY_SCHEDULE"),
        ({"PASSID_WEBHOOK_RETRY_SCHEDULE": "0,nan"}, "PASSID_WEBHOOK_RETRY_SCHEDULE"),
        ({"PASSID_WEBHOOK_RETRY_SCHEDULE": "inf"}, "PASSID_WEBHOOK_RETRY_SCHEDULE"),
        ({"PASSID_SANDBOX_ENABLED": "maybe"}, "PASSID_SANDBOX_ENABLED"),
        ({"PASSID_SANDBOX_ENABLED": "false"}, "PASSID_SANDBOX_ENABLED"),
        ({"PASSID_INSTITUTION_NAME": "x" * 81}, "PASSID_INSTITUTION_NAME"),
        ({"PASSID_TIMEOUT_SECONDS": "soon"}, "PASSID_TIMEOUT_SECONDS"),
        ({"PASSID_TIMEOUT_SECONDS": "0"}, "PASSID_TIMEOUT_SECONDS"),
        ({"PASSID_BACKGROUND_JOBS": "sometimes"}, "PASSID_BACKGROUND_JOBS"),
        ({"PASSID_DEFAULT_LOCALE": "klingon"}, "PASSID_DEFAULT_LOCALE"),
        ({"PASSID_DEFAULT_LOCALE": "en-XA"}, "PASSID_DEFAULT_LOCALE"),
        ({"PASSID_THEME_COLOR_SCHEME": "purple"}, "PASSID_THEME_COLOR_SCHEME"),
        ({"PASSID_THEME_RADIUS": "4px;background:url(x)"}, "PASSID_THEME_RADIUS"),
        ({"PASSID_THEME_FONT": "Comic Sans MS"}, "PASSID_THEME_FONT"),
        ({"PASSID_LOGO_PATH": "/nonexistent/logo.png"}, "PASSID_LOGO_PATH"),
        ({"PASSID_LOGO_PATH": "/etc/passwd"}, "PASSID_LOGO_PATH"),
        ({"PASSID_PSEUDO_LOCALE": "perhaps"}, "PASSID_PSEUDO_LOCALE"),
        ({"PASSID_CUSTOMER_CLAIMS": "full_score,shoe_size"}, "PASSID_CUSTOMER_CLAIMS"),
        ({"PASSID_DEFAULT_CURRENCY": "XYZ"}, "PASSID_DEFAULT_CURRENCY"),
        ({"PASSID_DEFAULT_CURRENCY": "dollars"}, "PASSID_DEFAULT_CURRENCY"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(f"{k}={v}"[:50] for k, v in value.items()),
)
def test_a_bad_value_raises_config_error_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_for(**environ)
    assert variable in str(error.value)


def test_a_logo_too_large_for_the_first_visit_s_budget_is_refused(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG" + b"\0" * 100_000)
    with pytest.raises(ConfigError) as error:
        settings_for(PASSID_LOGO_PATH=str(logo))
    assert "PASSID_LOGO_PATH must be at most 100 KB" in str(error.value)
    logo.write_bytes(b"\x89PNG" + b"\0" * 1000)
    assert settings_for(PASSID_LOGO_PATH=str(logo)).logo_path == logo


def test_a_bad_value_is_quoted_back_so_the_operator_sees_what_was_read() -> None:
    with pytest.raises(ConfigError) as error:
        settings_for(PASSID_THEME_PRIMARY="red", PASSID_PERMISSIONS="full_score,shoe_size")
    assert "'red'" in str(error.value) and "shoe_size" in str(error.value)


def test_several_problems_are_all_reported_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        settings_for(
            PORT="abc",
            PASSID_THEME_PRIMARY="red",
            PASSID_PERMISSIONS="shoe_size",
            PASSID_WEBHOOK_RETRY_SCHEDULE="a,b",
            PASSID_ALLOWED_EMBED_ORIGINS="not-an-origin",
        )
    message = str(error.value)
    lines = [line for line in message.splitlines() if line.startswith("- ")]
    assert len(lines) == 5, message
    for variable in ("PORT", "PASSID_THEME_PRIMARY", "PASSID_PERMISSIONS", "PASSID_WEBHOOK_RETRY_SCHEDULE",
                     "PASSID_ALLOWED_EMBED_ORIGINS"):
        assert sum(variable in line for line in lines) == 1, (variable, message)


def test_create_app_with_a_bad_environment_fails_at_start_up() -> None:
    with pytest.raises(ConfigError) as error:
        create_app({"SECRET_KEY": "test-secret", "DATABASE_URL": "sqlite:///:memory:", "PASSID_THEME_PRIMARY": "red"})
    assert "PASSID_THEME_PRIMARY" in str(error.value)


def test_the_server_with_a_bad_environment_exits_with_the_sentence_in_its_log(tmp_path: Path) -> None:
    """The production server as `make run` starts it (AppServer), whichever that is."""
    env = base_env(f"sqlite:///{tmp_path / 'never.db'}", PASSID_PERMISSIONS="full_score,shoe_size")
    server = AppServer(env, tmp_path / "app.log")
    try:
        with pytest.raises(RuntimeError) as error:
            server.start()
    finally:
        server.stop()
    message = str(error.value)
    assert "exited early" in message
    assert "Configuration error: PASSID_PERMISSIONS has unknown permission(s) shoe_size" in message
    assert "Traceback" not in message
    assert server.process is not None and server.process.poll() not in (None, 0)


# Every entry point an operator starts prints one sentence per problem, no traceback: a setting is fixed from that line.
_TWO_PROBLEMS = {"PASSID_THEME_PRIMARY": "red", "PASSID_PERMISSIONS": "full_score,shoe_size"}
_SENTENCES = (
    "Configuration error: PASSID_THEME_PRIMARY must be a hex colour like #00c27a, got 'red'.",
    "Configuration error: PASSID_PERMISSIONS has unknown permission(s) shoe_size;",
)


def _assert_one_sentence_per_problem(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("Configuration error:")]
    assert len(lines) == 2, done.stderr
    assert _SENTENCES[0] in lines, done.stderr
    assert any(line.startswith(_SENTENCES[1]) and line.endswith("fraud_risk.") for line in lines), done.stderr


def _run(tmp_path: Path, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = base_env(f"sqlite:///{tmp_path / 'never.db'}", **_TWO_PROBLEMS)
    return subprocess.run(list(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_importing_wsgi_with_a_bad_environment_prints_sentences_and_exits(tmp_path: Path) -> None:
    """Any server that imports `wsgi:app` (gunicorn, Granian, waitress) meets this first."""
    _assert_one_sentence_per_problem(_run(tmp_path, str(BIN / "python"), "-c", "import wsgi"))


@pytest.mark.parametrize("command", [("db", "upgrade"), ("run", "--port", "0"), ("staff", "create", "x")])
def test_the_flask_cli_with_a_bad_environment_prints_sentences_and_exits(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    _assert_one_sentence_per_problem(_run(tmp_path, str(BIN / "flask"), "--app", "app", *command))


def test_the_production_server_with_several_workers_and_a_bad_environment_stops_with_sentences(
    tmp_path: Path,
) -> None:
    """`make run`'s server command: each worker meets the check, and the server stops instead of looping."""
    command = serve_command(DEFAULT_SERVER, "127.0.0.1", free_port(), workers=2, threads=2)
    done = _run(tmp_path, *command, timeout=90)
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = {line for line in done.stderr.splitlines() if line.startswith("Configuration error:")}
    assert _SENTENCES[0] in lines and len(lines) == 2, done.stderr


def test_rate_limits_are_counted_in_the_app_s_own_database_by_default() -> None:
    """Shared by every worker process, so a limit holds across them, with nothing extra to run."""
    assert settings_for().rate_limit_storage == "database://"
    assert settings_for(PASSID_RATE_LIMIT_STORAGE="database").rate_limit_storage == "database://"
    assert settings_for(PASSID_RATE_LIMIT_STORAGE="redis://127.0.0.1:6379/0").rate_limit_storage.startswith("redis")
    with pytest.raises(ConfigError) as error:
        settings_for(PASSID_RATE_LIMIT_STORAGE="postgres-please")
    assert "PASSID_RATE_LIMIT_STORAGE" in str(error.value)


def test_a_host_from_which_no_trusted_host_can_be_derived_is_a_configuration_error() -> None:
    """An empty TRUSTED_HOSTS would switch Flask's Host check off without a word."""
    with pytest.raises(ConfigError) as error:
        settings_for(HOST="2001:db8::1")
    assert "PASSID_TRUSTED_HOSTS" in str(error.value)
    assert settings_for(HOST="2001:db8::1", PASSID_TRUSTED_HOSTS="verify.bank.example").trusted_hosts == (
        "verify.bank.example",
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_number_that_is_not_finite_is_a_sentence_not_a_traceback(value: str) -> None:
    """int(nan) raises: a whole-number setting must still add its sentence and let the others be reported."""
    with pytest.raises(ConfigError) as error:
        settings_for(PORT=value, PASSID_REQUEST_TTL_SECONDS=value, PASSID_THEME_PRIMARY="red")
    assert [problem.split()[0] for problem in error.value.problems] == [
        "PORT", "PASSID_THEME_PRIMARY", "PASSID_REQUEST_TTL_SECONDS"]


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_default_in_the_table_passes_its_own_parser_and_bounds(name: str) -> None:
    row = SETTINGS[name]
    problems: list[str] = []
    row.parser.parse(row.default, row.variable, problems)
    assert problems == []


def test_each_variable_and_flask_key_is_named_by_one_row_only() -> None:
    variables = [row.variable for row in SETTINGS.values()]
    keys = [row.flask_key for row in SETTINGS.values() if row.flask_key]
    assert len(set(variables)) == len(variables) and len(set(keys)) == len(keys)


def test_a_row_with_a_flask_key_reaches_flask_as_read() -> None:
    """Nothing `to_flask` derives may silently replace a value the table hands over as is."""
    settings = settings_for(PASSID_TIMEOUT_SECONDS="2.5", PASSID_WEBHOOK_SECRET="a,b", PASSID_BACKGROUND_JOBS="no")
    flask_config = settings.to_flask()
    for name, row in SETTINGS.items():
        if row.flask_key:
            assert flask_config[row.flask_key] == getattr(settings, name), row.variable


def test_each_app_reads_the_settings_it_was_built_with_typed_and_in_flask_s_config_alike(
    build_app: Callable[..., Flask],
) -> None:
    """A test's overrides go in through the environment, so the typed settings and Flask's config agree."""
    shorter = build_app(PASSID_RETENTION_DAYS="7", PASSID_TIMEOUT_SECONDS="2.5")
    default = build_app()
    assert settings_of(shorter).retention_days == 7 and shorter.config["PASSID_RETENTION_DAYS"] == 7
    assert settings_of(shorter).passid_timeout_seconds == 2.5 == shorter.config["PASSID_TIMEOUT_SECONDS"]
    assert settings_of(default).retention_days == 90 and default.config["PASSID_RETENTION_DAYS"] == 90
    for app in (shorter, default):
        assert settings_of(app).passid_url == app.config["PASSID_BASE_URL"]
        with app.app_context():
            assert current_settings() is settings_of(app)


def test_a_lease_no_longer_than_a_delivery_attempt_is_a_sentence() -> None:
    """A lease that lapses mid-attempt would let a second pass send the same delivery again."""
    assert settings_for().job_lease_seconds == 60 and settings_for().password_hash == "scrypt"
    with pytest.raises(ConfigError) as error:
        settings_for(PASSID_JOB_LEASE_SECONDS="20", PASSID_WEBHOOK_TIMEOUT_SECONDS="10")
    assert list(error.value.problems) == [
        "PASSID_JOB_LEASE_SECONDS must be more than twice PASSID_WEBHOOK_TIMEOUT_SECONDS, got 20 and 10"]
    assert settings_for(PASSID_JOB_LEASE_SECONDS="5", PASSID_WEBHOOK_TIMEOUT_SECONDS="2").job_lease_seconds == 5


def test_a_password_hash_method_is_scrypt_or_a_pbkdf2_with_its_iterations() -> None:
    assert settings_for(PASSID_PASSWORD_HASH="pbkdf2:sha256:1").password_hash == "pbkdf2:sha256:1"
    with pytest.raises(ConfigError) as error:
        settings_for(PASSID_PASSWORD_HASH="md5")
    assert list(error.value.problems) == ["PASSID_PASSWORD_HASH must be scrypt, or pbkdf2:sha256:ITERATIONS, got 'md5'"]


def test_the_process_environment_is_read_over_the_env_file_and_a_problem_ends_in_sentences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What every entry point calls (`wsgi.py`, the `flask` CLI), in this process: `.env` for local use, the
    process environment over it, and on a problem one sentence per line on stderr and the exit status, never a
    traceback. (The entry points themselves are run as processes above.)"""
    dotenv = tmp_path / ".env"
    dotenv.write_text("PASSID_THEME_PRIMARY=#123456\nPORT=abc\n")
    for name, value in {"SECRET_KEY": "test-secret", "DATABASE_URL": "sqlite:///:memory:",
                        "PASSID_DATA_KEY": TEST_DATA_KEY, "PORT": "5001"}.items():
        monkeypatch.setenv(name, value)
    read = load_settings(dotenv_path=dotenv)
    assert (read.theme_primary, read.port) == ("#123456", 5001)  # the process environment wins over the file

    monkeypatch.setattr("app.config.loader.PROJECT_ROOT", tmp_path)  # where `.env` is looked for by default
    monkeypatch.setenv("PASSID_THEME_PRIMARY", "red")
    with pytest.raises(SystemExit) as stopped:
        load_settings_or_exit()
    assert stopped.value.code == CONFIG_ERROR_EXIT_STATUS
    assert capsys.readouterr().err == (
        "Configuration error: PASSID_THEME_PRIMARY must be a hex colour like #00c27a, got 'red'.\n")


@pytest.mark.parametrize(("environ", "problem"), [
    ({"PASSID_OIDC_CLIENT_ID": "passid"}, "PASSID_OIDC_CLIENT_ID set without PASSID_OIDC_ISSUER"),
    ({"PASSID_LOCAL_PASSWORDS": "off"}, "PASSID_LOCAL_PASSWORDS=off needs single sign-on"),
    ({"PASSID_OIDC_ISSUER": "http://login.bank.example"}, "PASSID_OIDC_ISSUER must be an https:// URL"),
    ({"PASSID_OIDC_ISSUER": "https://login.bank.example/?tenant=1"}, "PASSID_OIDC_ISSUER must be a plain URL"),
    ({"PASSID_OIDC_ISSUER": "https://login.bank.example"}, "PASSID_OIDC_CLIENT_SECRET is required"),
    ({"PASSID_OIDC_ISSUER": "https://login.bank.example"}, "PASSID_OIDC_ROLE_MAP is required"),
    ({"PASSID_OIDC_ISSUER": "https://login.bank.example", "PASSID_OIDC_SCOPES": "profile"},
     "PASSID_OIDC_SCOPES must include openid"),
])
def test_single_sign_on_settings_that_cannot_work_are_refused_at_start_up(
    environ: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError) as error:
        settings_for(**environ)
    assert problem in str(error.value)
