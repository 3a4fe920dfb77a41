"""The console's tests: staff signed in, in-process (Flask's test client, `flask` commands through the
CLI runner) where a request and its response are the whole story, and over real HTTP against one app
on SQLite for the package where another process is part of it."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app.passid import PassidClient
from app.plumbing.passid_connection import passid_connection
from tests.support.demo_institution import demo_institution
from tests.support.html_fields import hidden  # noqa: F401  (the console tests import it from here)
from tests.support.oidc import OidcTestProvider, running_provider
from tests.support.servers import BIN, ROOT, AppServer, base_env, migrate
from tests.support.widget_http import widget_fields

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The whole app with its embedded sandbox, as `make run` starts it."""
    directory = tmp_path_factory.mktemp("console")
    env = base_env(f"sqlite:///{directory / 'passid.db'}", PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5,0.5")
    migrate(env)
    server = AppServer(env, directory / "app.log").start()
    yield server
    server.stop()


def run_flask(server: AppServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`flask --app app …` as an operator runs it beside the server: same environment, same database."""
    return subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT, env=dict(server.env, PORT=str(server.port)), capture_output=True, text=True, timeout=timeout,
    )


def institution_of(server: AppServer) -> tuple[str, str]:
    """(sandbox key, institution id) of the institution the server uses, as `flask passid demo` finds it."""
    demo = demo_institution(server)
    return demo.key, demo.institution_id


def create_staff(server: AppServer, role: str = "admin") -> str:
    """A new account (admin unless said: most console tests use pages of every role)."""
    name = f"staff-{secrets.token_hex(3)}"
    done = run_flask(server, "staff", "create", name, "--role", role, "--password", PASSWORD)
    assert done.returncode == 0, done.stderr
    return name


def sign_in(server: AppServer, username: str) -> requests.Session:
    """Sign in the way a browser does: fetch the form, send back its CSRF token."""
    session = requests.Session()
    form = session.get(f"{server.url}/staff/sign-in", timeout=10)
    answer = session.post(
        f"{server.url}/staff/sign-in",
        data={"csrf_token": hidden(form.text, "csrf_token"), "username": username, "password": PASSWORD},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text
    return session


@pytest.fixture(scope="session")
def staff_name(console_server: AppServer) -> str:
    return create_staff(console_server)


@pytest.fixture
def staff(console_server: AppServer, staff_name: str) -> requests.Session:
    """A signed-in staff member's browser session."""
    return sign_in(console_server, staff_name)


@pytest.fixture(scope="session")
def demo(console_server: AppServer) -> tuple[str, str]:
    return institution_of(console_server)


@pytest.fixture
def passid(console_server: AppServer, demo: tuple[str, str]) -> PassidClient:
    """The institution's own client, for what happens "elsewhere" (another system using the same key)."""
    return PassidClient(console_server.sandbox_url, demo[0], timeout=(3.05, 15.0))


def verify_in_widget(server: AppServer, token: str) -> str:
    """Type a token into the widget's manual form, as a customer or branch does; returns the final view."""
    fields = widget_fields(server.url)
    done = requests.post(f"{server.url}/verify/token/check", data={**fields, "token": token}, timeout=10)
    view = re.search(r'data-view="(\w+)"', done.text)
    assert view, done.text[:500]
    return view.group(1)


def fresh_share_token(server: AppServer, institution_id: str, profile: str = "KE8V-3TXY-Z72L") -> str:
    """A real one-time token minted in the sandbox phone's name for this institution."""
    return share_token_for(server.sandbox_url, institution_id, profile)


def random_token(prefix: str) -> str:
    """A well-formed token nobody issued: PASSID denies it as TOKEN_NOT_FOUND."""
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    rest = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"{prefix}-{rest[:4]}-{rest[4:]}"


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcTestProvider]:
    """A real OpenID provider on loopback (`oidc-provider`, tests/support/oidc.py), started once per worker."""
    with running_provider(tmp_path_factory.mktemp("oidc") / "provider.log") as provider:
        yield provider


# --- in-process ----------------------------------------------------------------------------------


def add_staff(runner: FlaskCliRunner, name: str | None = None, password: str = PASSWORD,
              role: str | None = "admin") -> str:
    """`flask staff create` through the app's CLI runner (a second call for the same name sets a new password).

    Admin unless said (most console tests use pages of every role); `role=None` keeps an existing account's.
    """
    name = name or f"staff-{secrets.token_hex(3)}"
    with runner.app.app_context():  # `staff` is a plain click group: it does not push one itself
        done = runner.invoke(args=["staff", "create", name, *(["--role", role] if role else []),
                                   "--password", password])
    assert done.exit_code == 0, done.output
    return name


def signed_in(client: FlaskClient, username: str) -> FlaskClient:
    """Sign `client` in the way a browser does: fetch the form, send back its CSRF token."""
    form = client.get("/staff/sign-in").text
    answer = client.post("/staff/sign-in", data={"csrf_token": hidden(form, "csrf_token"), "username": username,
                                                 "password": PASSWORD})
    assert answer.status_code == 302, answer.text
    return client


@pytest.fixture
def staff_client(app: Flask, runner: FlaskCliRunner) -> FlaskClient:
    """A signed-in staff member's browser on the in-process app (its own test client and account)."""
    return signed_in(app.test_client(), add_staff(runner))


@pytest.fixture
def app_demo(app: Flask) -> tuple[str, str]:
    """(sandbox key, institution id) of the in-process app's demo institution."""
    with app.app_context():
        connection = passid_connection()
    assert connection.institution_id is not None
    return connection.api_key, connection.institution_id


@pytest.fixture
def app_passid(app: Flask, app_demo: tuple[str, str]) -> PassidClient:
    """The in-process app's institution's own client, for what happens "elsewhere" (same key, another system)."""
    return PassidClient(app.config["PASSID_BASE_URL"], app_demo[0], timeout=(3.05, 15.0))


def share_token_for(sandbox_url: str, institution_id: str, profile: str = "KE8V-3TXY-Z72L") -> str:
    """A real one-time token minted in the sandbox phone's name for this institution."""
    phone = PassidClient(sandbox_url)
    return phone.create_share_token(phone.sandbox_login(profile), institution_id).token
