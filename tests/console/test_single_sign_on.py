"""Staff single sign-on against a real OpenID provider (`oidc-provider` on loopback, tests/support/oidc.py).

The app in-process (Flask's test client is the staff member's browser on our side), the provider a real
process (`requests` is the same person's browser there): discovery, the code flow with PKCE, the token
endpoint, the provider's keys and UserInfo all go over HTTP as with a bank's provider. What is proven: a
sign-in makes the account with the role the bank's claim maps to; no mapped role, a tampered state, a
replayed code, an ID token for another audience or an expired one sign nobody in, each with a page and an
audit entry; a provider that does not answer gets a clear page while the break-glass account still signs in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app.config import STAFF_ROLES, ConfigError, load_settings
from app.golive.verdicts import Facts, evaluate_checklist
from app.plumbing.database import db
from app.rules import audit
from app.staff import sso
from app.staff.models import StaffUser, find_staff
from app.staff.roles import Role
from app.staff.signing_in import SECOND_FACTOR_FROM_PROVIDER
from tests.console.conftest import PASSWORD, add_staff, hidden, signed_in
from tests.support.oidc import MFA_ACR, REDIRECT_URI, OidcTestProvider
from tests.support.servers import base_env, free_port

pytestmark = pytest.mark.databases("sqlite")

ADMINS, ANALYSTS, COUNTER = "passid-admins", "passid-analysts", "branch-staff"


@pytest.fixture
def app_settings(oidc_provider: OidcTestProvider) -> dict[str, str]:
    return oidc_provider.app_settings()


def entries(app: Flask, action: audit.Action) -> list[audit.AuditEntry]:
    with app.app_context():
        found = list(db.session.execute(
            db.select(audit.AuditEntry).where(audit.AuditEntry.action == action).order_by(audit.AuditEntry.id)
        ).scalars())
        db.session.expunge_all()
        return found


def account(app: Flask, name: str) -> StaffUser | None:
    with app.app_context():
        user = find_staff(name)
        if user is not None:
            db.session.expunge(user)
        return user


def start(browser: FlaskClient, next_target: str | None = None) -> str:
    """Press "Sign in with single sign-on" on the sign-in page; returns the provider's authorisation URL."""
    page = browser.get("/staff/sign-in" + (f"?{urlencode({'next': next_target})}" if next_target else "")).text
    fields = {"csrf_token": hidden(page, "csrf_token"), **({"next": next_target} if next_target else {})}
    answer = browser.post("/staff/sso/start", data=fields)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def back_at_app(browser: FlaskClient, callback_url: str):  # type: ignore[no-untyped-def]
    """The provider's redirect back, followed as the browser follows it."""
    assert callback_url.startswith(REDIRECT_URI)
    parts = urlsplit(callback_url)
    return browser.get(f"{parts.path}?{parts.query}")


def signs_in(provider: OidcTestProvider, browser: FlaskClient, login: str, **at_provider: str):  # type: ignore[no-untyped-def]
    return back_at_app(browser, provider.sign_in(start(browser), login, **at_provider))


# --- signing in -----------------------------------------------------------------------------------------


def test_a_first_sign_in_makes_the_account_with_the_mapped_role_and_later_ones_follow_the_claim(
    app: Flask, oidc_provider: OidcTestProvider
) -> None:
    name = oidc_provider.add_user(ANALYSTS, "everyone")
    browser = app.test_client()
    authorize = start(browser, next_target="/console/review")
    request = parse_qs(urlsplit(authorize).query)
    # The code flow with PKCE, a state and a nonce, to the URL the bank registered.
    assert request["response_type"] == ["code"] and request["code_challenge_method"] == ["S256"]
    assert request["redirect_uri"] == [REDIRECT_URI] and "openid" in request["scope"][0].split()
    assert len(request["state"][0]) >= 20 and len(request["nonce"][0]) >= 20 and request["code_challenge"][0]

    landed = back_at_app(browser, oidc_provider.sign_in(authorize, name))
    assert landed.status_code == 302 and landed.headers["Location"] == "/console/review"
    assert browser.get("/console/review").status_code == 200
    user = account(app, name)
    assert user is not None and user.role == Role.ANALYST and user.single_sign_on and not user.break_glass
    assert user.sso_issuer == oidc_provider.issuer and user.sso_subject == name
    [created] = entries(app, audit.Action.STAFF_CREATED)
    assert (created.actor, created.subject, created.detail) == (audit.SYSTEM_ACTOR, name,
                                                                "role analyst, by single sign-on")
    [signed] = entries(app, audit.Action.SIGN_IN)
    assert (signed.actor, signed.subject) == (name, name)
    assert signed.detail == "single sign-on; the provider reported no second factor"

    # The bank moves them to the branch: the next sign-in gives the new role, and the old session ends.
    oidc_provider.set_user(name, COUNTER)
    again = app.test_client()
    assert signs_in(oidc_provider, again, name).headers["Location"] == "/branch/"
    assert account(app, name).role == Role.COUNTER  # type: ignore[union-attr]
    [changed] = entries(app, audit.Action.STAFF_ROLE_CHANGED)
    assert (changed.subject, changed.detail) == (name, "analyst → counter, from single sign-on")
    assert browser.get("/console/review").status_code == 302  # the analyst's session is over
    assert again.get("/branch/").status_code == 200
    assert len(entries(app, audit.Action.STAFF_CREATED)) == 1  # the same account, found by its subject


def test_a_user_the_bank_gives_no_mapped_role_is_refused_with_a_page_and_an_audit_entry(
    app: Flask, oidc_provider: OidcTestProvider
) -> None:
    name = oidc_provider.add_user("marketing")
    browser = app.test_client()
    refused = signs_in(oidc_provider, browser, name)
    assert refused.status_code == 403
    assert "gives you no role in PASSID Verify" in refused.text and "/staff/sign-in" in refused.text
    assert account(app, name) is None
    assert browser.get("/console/").status_code == 302
    [failed] = entries(app, audit.Action.SIGN_IN_FAILED)
    assert (failed.actor, failed.subject) == (audit.UNKNOWN_ACTOR, None)
    assert failed.detail == (f'single sign-on refused: no role mapped from the role claim; claim groups '
                             f'["marketing"]; provider user "{name}"')

    # Someone who had a role and lost it: refused, and their open session ends with it.
    leaver = oidc_provider.add_user(ADMINS)
    before = app.test_client()
    signs_in(oidc_provider, before, leaver)
    assert before.get("/console/audit").status_code == 200
    oidc_provider.set_user(leaver, "marketing")
    assert signs_in(oidc_provider, app.test_client(), leaver).status_code == 403
    assert before.get("/console/audit").status_code == 302
    assert entries(app, audit.Action.SIGN_IN_FAILED)[-1].subject == leaver


def test_the_highest_mapped_role_wins_and_a_second_factor_at_the_provider_is_recorded(
    app: Flask, oidc_provider: OidcTestProvider
) -> None:
    name = oidc_provider.add_user(COUNTER, ADMINS, ANALYSTS)
    browser = app.test_client()
    assert signs_in(oidc_provider, browser, name, amr="pwd,otp").status_code == 302
    assert account(app, name).role == Role.ADMIN  # type: ignore[union-attr]
    with browser.session_transaction() as session:
        assert session[SECOND_FACTOR_FROM_PROVIDER] is True
    by_acr = app.test_client()
    signs_in(oidc_provider, by_acr, name, amr="pwd", acr=MFA_ACR)
    with by_acr.session_transaction() as session:
        assert session[SECOND_FACTOR_FROM_PROVIDER] is True
    details = [entry.detail for entry in entries(app, audit.Action.SIGN_IN)]
    assert details == ["single sign-on; the provider checked a second factor"] * 2


# --- what signs nobody in -------------------------------------------------------------------------------


def refused_with(app: Flask, answer, reason: str) -> None:  # type: ignore[no-untyped-def]
    """A page saying the sign-in did not complete, and the reason in the audit log (by nobody the app knows)."""
    assert answer.status_code == 400, answer.text
    assert "The sign-in could not be completed" in answer.text
    failed = entries(app, audit.Action.SIGN_IN_FAILED)[-1]
    assert failed.actor == audit.UNKNOWN_ACTOR and failed.detail.startswith("single sign-on rejected: ")
    assert reason in failed.detail, failed.detail


def test_a_tampered_state_signs_nobody_in(app: Flask, oidc_provider: OidcTestProvider) -> None:
    browser = app.test_client()
    back = oidc_provider.sign_in(start(browser), oidc_provider.add_user(ADMINS))
    query = parse_qs(urlsplit(back).query)
    query["state"] = [query["state"][0][:-2] + "xx"]
    answer = browser.get(f"{urlsplit(back).path}?{urlencode(query, doseq=True)}")
    refused_with(app, answer, "the state did not match a sign-in started in this browser")
    assert browser.get("/console/").status_code == 302 and entries(app, audit.Action.SIGN_IN) == []


def test_a_replayed_code_signs_nobody_in(app: Flask, oidc_provider: OidcTestProvider) -> None:
    """A code seen once (in a log, a browser history) is worth nothing again, even inside a new sign-in."""
    name = oidc_provider.add_user(ADMINS)
    first = app.test_client()
    used = oidc_provider.sign_in(start(first), name)
    assert back_at_app(first, used).status_code == 302
    attacker = app.test_client()
    fresh_state = parse_qs(urlsplit(start(attacker)).query)["state"][0]
    old_code = parse_qs(urlsplit(used).query)["code"][0]
    answer = attacker.get(f"/staff/sso/callback?{urlencode({'code': old_code, 'state': fresh_state})}")
    assert answer.status_code == 400
    [failed] = entries(app, audit.Action.SIGN_IN_FAILED)
    assert failed.detail == "single sign-on rejected: the provider refused the code (invalid_grant)"
    assert attacker.get("/console/").status_code == 302


@pytest.mark.parametrize(("fault", "reason"), [
    ("wrong-audience", "the ID token failed its check (InvalidClaimError: invalid_claim: Invalid claim: 'aud')"),
    ("expired", "the ID token failed its check (ExpiredTokenError"),
])
def test_an_id_token_for_another_audience_or_expired_signs_nobody_in(
    app: Flask, oidc_provider: OidcTestProvider, fault: str, reason: str
) -> None:
    browser = app.test_client()
    answer = signs_in(oidc_provider, browser, oidc_provider.add_user(ADMINS, fault=fault))
    refused_with(app, answer, reason)
    assert browser.get("/console/").status_code == 302 and entries(app, audit.Action.SIGN_IN) == []


def test_a_leaver_the_provider_no_longer_signs_in_can_do_nothing(
    app: Flask, oidc_provider: OidcTestProvider
) -> None:
    name = oidc_provider.add_user(ANALYSTS)
    assert signs_in(oidc_provider, app.test_client(), name).status_code == 302
    oidc_provider.remove_user(name)
    browser = app.test_client()
    refused_with(app, signs_in(oidc_provider, browser, name), "the provider answered 'access_denied'")
    # No password of their own either: the account signs in through its provider or not at all.
    page = browser.get("/staff/sign-in").text
    answer = browser.post("/staff/sign-in", data={"csrf_token": hidden(page, "csrf_token"), "username": name,
                                                  "password": "!single-sign-on"})
    assert answer.status_code == 401
    assert entries(app, audit.Action.SIGN_IN_FAILED)[-1].detail.startswith("single sign-on account: no local password")


# --- provider down, break-glass, local passwords off ----------------------------------------------------


def test_a_provider_that_does_not_answer_gets_a_clear_page_and_break_glass_still_signs_in(
    build_app: Callable[..., Flask], oidc_provider: OidcTestProvider
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    app = build_app(**oidc_provider.app_settings(PASSID_OIDC_ISSUER=closed, PASSID_LOCAL_PASSWORDS="off"))
    runner = app.test_cli_runner()
    with app.app_context():
        made = runner.invoke(args=["staff", "break-glass", "emergency", "--password", PASSWORD])
        assert made.exit_code == 0 and "Created the break-glass account 'emergency' (admin)" in made.output
        refused = runner.invoke(args=["staff", "create", "someone", "--role", "admin", "--password", PASSWORD])
        assert refused.exit_code == 1 and "Local passwords are off" in refused.output
        other = runner.invoke(args=["staff", "break-glass", "another", "--password", PASSWORD])
        assert other.exit_code == 1 and "emergency is already the break-glass account" in other.output
        local = StaffUser(username="old-local", role="admin")  # made before passwords were switched off
        local.set_password(PASSWORD)
        db.session.add(local)
        db.session.commit()

    with app.app_context():  # every call to the provider (discovery, keys, token, UserInfo) has a timeout
        client = app.extensions[sso.EXTENSION]
        assert client._get_session().default_timeout == client._get_oauth_client().default_timeout == (5.0, 10.0)

    browser = app.test_client()
    page = browser.get("/staff/sign-in").text
    assert "Sign in with single sign-on" in page and "Break-glass account" in page
    down = browser.post("/staff/sso/start", data={"csrf_token": hidden(page, "csrf_token")})
    assert down.status_code == 503
    assert "The bank&#39;s sign-in service did not answer" in down.text and 'name="password"' in down.text

    assert signed_in(browser, "emergency").get("/console/audit").status_code == 200
    [signed] = entries(app, audit.Action.SIGN_IN)
    assert (signed.subject, signed.detail) == ("emergency", "password, break-glass account")
    someone = app.test_client()
    page = someone.get("/staff/sign-in").text
    other = someone.post("/staff/sign-in", data={"csrf_token": hidden(page, "csrf_token"), "username": "old-local",
                                                 "password": PASSWORD})
    assert other.status_code == 401
    assert entries(app, audit.Action.SIGN_IN_FAILED)[-1].detail == (
        'local passwords are off and this is not the break-glass account; name tried: "old-local"')


def test_single_sign_on_accounts_get_no_password_and_the_break_glass_one_stays_admin(
    app: Flask, runner: FlaskCliRunner, oidc_provider: OidcTestProvider
) -> None:
    name = oidc_provider.add_user(ANALYSTS)
    signs_in(oidc_provider, app.test_client(), name)
    admin = signed_in(app.test_client(), add_staff(runner))
    with app.app_context():
        assert runner.invoke(args=["staff", "break-glass", "emergency", "--password", PASSWORD]).exit_code == 0
        reset = runner.invoke(args=["staff", "create", name, "--password", PASSWORD])
        assert reset.exit_code == 1 and "signs in through single sign-on and has no password here" in reset.output
        demoted = runner.invoke(args=["staff", "set-role", "emergency", "counter"])
        assert demoted.exit_code == 1 and "The break-glass account is always an administrator" in demoted.output
        listed = runner.invoke(args=["staff", "list"]).output
        ids = {user.username: user.id for user in db.session.execute(db.select(StaffUser)).scalars()}
    assert f"{name:<24} analyst" in listed and "single sign-on" in listed and "break-glass" in listed

    # A person at the provider whose name is a local account's (here the break-glass one) never takes it over.
    oidc_provider.set_user("emergency", ADMINS)
    taken = signs_in(oidc_provider, app.test_client(), "emergency")
    assert taken.status_code == 403 and "already belongs to another staff account" in taken.text
    assert not account(app, "emergency").single_sign_on  # type: ignore[union-attr]

    page = admin.get("/console/staff").text
    assert f'action="/console/staff/{ids[name]}/password"' not in page  # no password form for it
    assert f'action="/console/staff/{ids["emergency"]}/role"' not in page
    answer = admin.post(f"/console/staff/{ids[name]}/password",
                        data={"csrf_token": hidden(page, "csrf_token"), "password": PASSWORD})
    assert answer.status_code == 422 and "has no password here" in answer.text


# --- settings, the go-live item and the pure rules ------------------------------------------------------


def test_settings_refuse_an_insecure_issuer_a_missing_secret_and_passwords_off_without_sign_on() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"PASSID_OIDC_ISSUER": "http://idp.bank.example", "PASSID_OIDC_CLIENT_ID": "x",
                       "PASSID_OIDC_ROLE_MAP": "Tellers=clerk"})
    problems = "\n".join(error.value.problems)
    assert "PASSID_OIDC_ISSUER must be an https:// URL (http:// only on a loopback address)" in problems
    assert "PASSID_OIDC_CLIENT_SECRET is required with PASSID_OIDC_ISSUER" in problems
    assert "PASSID_OIDC_ROLE_MAP entry 'Tellers=clerk' must be CLAIM VALUE=ROLE" in problems
    with pytest.raises(ConfigError, match="PASSID_LOCAL_PASSWORDS=off needs single sign-on"):
        load_settings({"PASSID_LOCAL_PASSWORDS": "off"})


def test_the_role_map_reads_directory_names_and_the_roles_are_the_app_s() -> None:
    from app.config.parsers import RoleMap

    problems: list[str] = []
    mapping = RoleMap(STAFF_ROLES).parse("CN=Tellers,OU=Groups,DC=bank=counter; /passid/admins = admin",
                                         "PASSID_OIDC_ROLE_MAP", problems)
    assert problems == [] and mapping == {"CN=Tellers,OU=Groups,DC=bank": "counter", "/passid/admins": "admin"}
    assert tuple(role.value for role in Role) == STAFF_ROLES


def test_role_claims_second_factors_and_discovery_are_read_as_the_standards_say() -> None:
    assert sso.claim_values({"groups": ["a", "b"]}, "groups") == ("a", "b")
    assert sso.claim_values({"role": "a"}, "role") == ("a",)
    assert sso.claim_values({"realm_access": {"roles": ["x"]}}, "realm_access.roles") == ("x",)
    assert sso.claim_values({"https://bank.example/roles": ["y"]}, "https://bank.example/roles") == ("y",)
    assert sso.claim_values({}, "groups") is None
    mapping = {"t": "counter", "a": "admin", "n": "analyst"}
    assert sso.role_for(["x", "n", "t"], mapping) == Role.ANALYST and sso.role_for(["x"], mapping) is None
    for amr, acr, expected in [(["pwd"], None, False), (["pwd", "mfa"], None, True), (["hwk", "pin"], None, True),
                               (["otp", "sms"], None, False), (["pwd", "fpt"], None, True), (["pwd"], "gold", True),
                               (["pwd"], "silver", False), ("mfa", None, False)]:
        assert sso.second_factor_from({"amr": amr, "acr": acr}, ["gold"]) is expected, (amr, acr)
    good = {"issuer": "https://idp.example", "authorization_endpoint": "https://idp.example/a",
            "token_endpoint": "https://idp.example/t", "jwks_uri": "https://idp.example/k"}
    assert sso.metadata_problem(good, "https://idp.example") is None
    assert sso.metadata_problem(good, "https://other.example") == "discovery names another issuer"
    assert sso.metadata_problem({**good, "token_endpoint": "http://idp.example/t"}, "https://idp.example") == \
        "discovery's token_endpoint is not https"


CHECK = "Local passwords limited to break-glass under single sign-on"


def test_the_go_live_item_fails_while_other_accounts_keep_local_passwords_under_single_sign_on(
    app: Flask, runner: FlaskCliRunner
) -> None:
    def verdict(**facts: object) -> str:
        base = Facts(api_key=None, webhook_secret_set=True, registered_webhook_url=None, passid_secret_set=None,
                     webhook_lookup_error=None, test_webhook_verified_at=None, test_webhook_answered_ms=None,
                     idempotency_key_sent=True, expiry_offers_new_code=True, https=True, committed_secret_files=())
        from dataclasses import replace

        [item] = [i for i in evaluate_checklist(replace(base, **facts)) if i.title == CHECK]  # type: ignore[arg-type]
        return item.verdict

    assert verdict(single_sign_on=False) == "cannot_check"
    assert verdict(single_sign_on=True, local_passwords=False, password_accounts=("old",)) == "pass"
    assert verdict(single_sign_on=True, local_passwords=True, password_accounts=()) == "pass"
    assert verdict(single_sign_on=True, local_passwords=True, password_accounts=("old",)) == "fail"

    # From the running app: single sign-on on (this module's settings), local passwords on, a local account.
    name = add_staff(runner)
    with app.app_context():
        runner.invoke(args=["staff", "break-glass", "emergency", "--password", PASSWORD])
        done = runner.invoke(args=["passid", "checklist"])
    assert f"[FAIL] {CHECK}" in done.output
    assert f"these accounts still sign in with a local password: {name}." in done.output
    assert "emergency" not in done.output.split(CHECK)[1].split("[")[0]


# --- the migration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_single_sign_on_migration_matches_the_model_holds_one_break_glass_and_downgrades(
    kind: str, tmp_path: Path
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData, create_engine, inspect
    from sqlalchemy.exc import IntegrityError

    from app.staff.factors import StaffPasskey, StaffRecoveryCode, StaffTotp
    from tests.support.migrations import empty_database, flask_db

    with empty_database(kind, tmp_path) as url:
        env = base_env(url)
        # To the head: the staff tables as the model has them, the second factor's (migrated after this one) too.
        flask_db(env, "upgrade")
        engine = create_engine(url)
        ours = MetaData()
        for model in (StaffUser, StaffPasskey, StaffTotp, StaffRecoveryCode):
            model.__table__.to_metadata(ours)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), ours)
        assert [d for d in differences if "staff_" in repr(d)] == []
        row = ("INSERT INTO staff_user (username, password_hash, role, session_version, created_at, break_glass) "
               "VALUES ('{}', 'x', 'admin', 1, CURRENT_TIMESTAMP, {})")
        with engine.begin() as connection:  # any number of ordinary accounts, one break-glass
            for name, glass in (("a", "false"), ("b", "false"), ("c", "true")):
                connection.exec_driver_sql(row.format(name, glass))
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.exec_driver_sql(row.format("d", "true"))
        flask_db(env, "downgrade", "0017_notification_deliveries")
        engine.dispose()
        assert "break_glass" not in {column["name"] for column in inspect(engine).get_columns("staff_user")}
        flask_db(env, "upgrade")
        engine.dispose()
        assert "sso_subject" in {column["name"] for column in inspect(engine).get_columns("staff_user")}
