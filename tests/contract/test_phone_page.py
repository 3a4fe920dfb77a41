"""The sandbox's phone page over real HTTP: open a request, consent, share or decline, share tokens."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
import requests
from sqlalchemy import create_engine, text

from app.passid import DenyReason, PassidClient, Permission, RequestStatus
from app.sandbox.phone import PERMISSION_WORDS
from tests.support.postgres import refused_before_storage
from tests.support.widget_http import open_qr_session

CLAIM_FIELDS = {
    "full_score": {"fsi_score", "fsi_low", "fsi_high", "tier", "confidence", "p_stable"},
    "income_verified": {"income_verified", "income_band"},
    "identity_verified": {"identity_verified"},
    "sanctions_clear": {"sanctions_clear"},
    "payment_reliability": {"payment_reliability"},
    "savings_consistency": {"savings_consistency"},
    "fraud_risk": {"fraud_risk"},
}
SHARE_TOKEN = re.compile(r"PASSID-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}")


@dataclass
class Form:
    action: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (type, name, value)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, label)

    def values(self, name: str) -> list[str]:
        return [value for _, n, value in self.fields if n == name]


class Page(HTMLParser):
    """Just enough of a page to read: its visible text, its forms and the attributes of each element."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(convert_charrefs=True)
        self.url = response.url
        self.html = response.text
        self.text_parts: list[str] = []
        self.forms: list[Form] = []
        self.elements: list[tuple[str, dict[str, str]]] = []
        self._button: list[str] | None = None
        self._button_attrs: dict[str, str] = {}
        self.feed(response.text)
        self.text = re.sub(r"\s+", " ", " ".join(self.text_parts)).strip()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.elements.append((tag, attributes))
        if tag == "form":
            self.forms.append(Form(urljoin(self.url, attributes.get("action") or self.url)))
        elif tag in ("input", "select") and self.forms:
            kind = attributes.get("type", tag)
            self.forms[-1].fields.append((kind, attributes.get("name", ""), attributes.get("value", "")))
        elif tag == "option" and self.forms:
            self.forms[-1].fields.append(("option", "", attributes.get("value", "")))
        elif tag == "button":
            self._button, self._button_attrs = [], attributes

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            label = " ".join("".join(self._button).split())
            attrs = self._button_attrs
            self.forms[-1].buttons.append((attrs.get("name", ""), attrs.get("value", ""), label))
            self._button = None

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)
        if self._button is not None:
            self._button.append(data)

    def attribute(self, name: str) -> str:
        found = [attrs[name] for _, attrs in self.elements if name in attrs]
        assert found, f"no element has {name}"
        return found[0]

    def options(self) -> list[str]:
        return [value for form in self.forms for kind, _, value in form.fields if kind == "option"]


def assert_readable_html(response: requests.Response) -> None:
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Traceback" not in response.text and 'File "/' not in response.text


@pytest.fixture
def phone(app_server) -> requests.Session:  # type: ignore[no-untyped-def]
    with requests.Session() as session:
        yield session


def _open(phone: requests.Session, sandbox: PassidClient, entered: str) -> requests.Response:
    return phone.post(f"{sandbox.base_url}/phone/open", data={"code": entered}, allow_redirects=False, timeout=10)


def _consent_url(sandbox: PassidClient, request_id: str) -> str:
    return f"{sandbox.base_url}/phone/request/{request_id}"


# --- opening a request ------------------------------------------------------------------------------

def test_the_deep_link_query_redirects_to_the_consent_page(institution, sandbox, phone) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request()
    response = phone.get(f"{sandbox.base_url}/phone", params={"r": created.request_id}, allow_redirects=False,
                         timeout=10)
    assert response.status_code in (302, 303)
    assert urljoin(response.url, response.headers["Location"]) == _consent_url(sandbox, created.request_id)
    followed = phone.get(f"{sandbox.base_url}/phone", params={"r": created.request_id}, timeout=10)
    assert followed.status_code == 200 and "Test Lender" in Page(followed).text


def test_the_code_in_any_spelling_or_the_whole_deep_link_opens_the_request(institution, sandbox, phone) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request()
    plain = created.code.replace("-", "")
    for entered in (plain, plain.lower(), created.code, created.code.lower(), f"  {created.code} ", created.deep_link):
        response = _open(phone, sandbox, entered)
        assert response.status_code in (302, 303), entered
        assert urljoin(response.url, response.headers["Location"]) == _consent_url(sandbox, created.request_id)
    landed = phone.post(f"{sandbox.base_url}/phone/open", data={"code": created.deep_link}, timeout=10)
    assert landed.status_code == 200 and landed.url == _consent_url(sandbox, created.request_id)
    assert "Test Lender asks to verify you" in Page(landed).text


@refused_before_storage
@pytest.mark.parametrize(
    ("entered", "words"),
    [
        ("ZZZZ-ZZZZ", "No verification request has that code"),
        ("hello", "Type the 8-character code"),
        ("", "Type the 8-character code"),
        ("<script>alert(1)</script>", "Type the 8-character code"),
    ],
)
def test_an_unknown_or_malformed_code_is_a_400_page_with_a_readable_message(sandbox, phone, entered, words) -> None:  # type: ignore[no-untyped-def]
    response = _open(phone, sandbox, entered)
    assert response.status_code == 400
    assert_readable_html(response)
    page = Page(response)
    assert words in page.text
    assert "<script>alert(1)</script>" not in response.text  # what was typed comes back escaped
    assert page.forms and page.forms[0].action == f"{sandbox.base_url}/phone/open"


def test_an_unknown_request_id_is_404(sandbox, phone) -> None:  # type: ignore[no-untyped-def]
    for request_id in ("req_doesnotexist", "req_%00x"):
        response = phone.get(f"{sandbox.base_url}/phone/request/{request_id}", timeout=10)
        assert response.status_code == 404
        assert "Traceback" not in response.text


# --- the consent page ----------------------------------------------------------------------------------

def test_the_consent_page_shows_who_asks_for_what_in_plain_words_and_the_time_left(institution, sandbox, phone) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request(
        institution_name="Kisumu Credit & Savings", permissions=["full_score", "fraud_risk"], ttl_seconds=120
    )
    response = phone.get(_consent_url(sandbox, created.request_id), timeout=10)
    assert response.status_code == 200
    assert_readable_html(response)
    page = Page(response)
    assert "Kisumu Credit & Savings asks to verify you" in page.text
    for permission, words in PERMISSION_WORDS.items():
        assert (str(words) in page.text) == (permission in ("full_score", "fraud_risk")), permission
    seconds = int(page.attribute("data-seconds-remaining"))
    assert 100 <= seconds <= 120
    assert f"expires in {seconds // 60}:{seconds % 60:02d}" in page.text
    form = page.forms[0]
    assert form.values("permissions") == ["full_score", "fraud_risk"]
    assert set(form.values("profile")) == {"KE8V-3TXY-Z72L", "NG4M-XQRS-T88W", "GH2P-ABCD-56KL"}
    assert {(name, value) for name, value, _ in form.buttons} == {("action", "share"), ("action", "decline")}
    assert any(label == "Share & Verify" for _, _, label in form.buttons)


def test_share_and_verify_completes_the_request_with_only_the_chosen_claims_of_the_chosen_profile(  # type: ignore[no-untyped-def]
    institution, sandbox, phone
) -> None:
    _, client = institution
    created = client.create_request(permissions=["full_score", "identity_verified", "fraud_risk"])
    consent = Page(phone.get(_consent_url(sandbox, created.request_id), timeout=10))
    response = phone.post(
        consent.forms[0].action,
        data={"action": "share", "profile": "NG4M-XQRS-T88W", "permissions": ["full_score", "fraud_risk"]},
        timeout=10,
    )
    assert response.status_code == 200
    assert Page(response).attribute("data-outcome") == "completed"
    details = client.get_request(created.request_id)
    assert details.status is RequestStatus.COMPLETED
    assert set(details.claims) == CLAIM_FIELDS["full_score"] | CLAIM_FIELDS["fraud_risk"]
    assert details.claims["tier"] == "B" and details.claims["fsi_score"] == 743
    assert details.claims["fraud_risk"] == "low"
    assert details.token and details.verified_at is not None

    again = phone.post(consent.forms[0].action, data={"action": "decline"}, timeout=10)
    assert again.status_code == 410 and Page(again).attribute("data-outcome") == "completed"
    assert client.get_request(created.request_id).status is RequestStatus.COMPLETED


def test_sharing_nothing_is_refused_and_the_request_stays_pending(institution, sandbox, phone) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request(permissions=["full_score"])
    response = phone.post(
        _consent_url(sandbox, created.request_id),
        data={"action": "share", "profile": "KE8V-3TXY-Z72L", "permissions": ["income_verified"]},
        timeout=10,
    )
    assert response.status_code == 400 and "Choose at least one thing to share" in Page(response).text
    assert client.get_request(created.request_id).status is RequestStatus.PENDING


def test_decline_declines_the_request(institution, sandbox, phone) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request()
    response = phone.post(
        _consent_url(sandbox, created.request_id), data={"action": "decline", "profile": "GH2P-ABCD-56KL"}, timeout=10
    )
    assert response.status_code == 200
    page = Page(response)
    assert page.attribute("data-outcome") == "declined" and "You declined" in page.text
    details = client.get_request(created.request_id)
    assert details.status is RequestStatus.DECLINED and details.claims is None and details.decline_reason


def test_an_expired_request_shows_the_expired_page_with_410(institution, sandbox, phone) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request(institution_name="Slow Bank", ttl_seconds=1)
    time.sleep(1.3)
    response = phone.get(_consent_url(sandbox, created.request_id), timeout=10)
    assert response.status_code == 410
    assert_readable_html(response)
    page = Page(response)
    assert page.attribute("data-outcome") == "expired"
    assert "This request has expired" in page.text and "Ask Slow Bank for a new code" in page.text

    late = phone.post(
        _consent_url(sandbox, created.request_id),
        data={"action": "share", "profile": "KE8V-3TXY-Z72L", "permissions": list(Permission)},
        timeout=10,
    )
    assert late.status_code == 410 and Page(late).attribute("data-outcome") == "expired"
    assert client.get_request(created.request_id).status is RequestStatus.EXPIRED


# --- the share page (manual flow) --------------------------------------------------------------------

def _mint(phone: requests.Session, sandbox: PassidClient, institution_id: str, permissions: list[str]) -> Page:
    response = phone.post(
        f"{sandbox.base_url}/phone/share",
        data={"profile": "KE8V-3TXY-Z72L", "institution": institution_id, "permissions": permissions},
        timeout=10,
    )
    assert response.status_code == 200
    return Page(response)


def test_the_share_page_mints_a_token_that_verifies_once_for_that_institution(institution, sandbox, phone) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    form_page = Page(phone.get(f"{sandbox.base_url}/phone/share", timeout=10))
    assert [name for kind, name, _ in form_page.forms[0].fields if kind == "text"] == ["institution"]

    page = _mint(phone, sandbox, onboarding.institution_id, ["full_score", "sanctions_clear"])
    tokens = SHARE_TOKEN.findall(page.text)
    assert len(set(tokens)) == 1
    token = tokens[0]

    other = sandbox.onboard("Someone Else")
    mismatch = PassidClient(sandbox.base_url, other.sandbox_key).verify(token)
    assert mismatch.deny_reason is DenyReason.INSTITUTION_MISMATCH

    result = client.verify(token)
    assert result.verified is True
    assert set(result.claims) == CLAIM_FIELDS["full_score"] | CLAIM_FIELDS["sanctions_clear"]
    assert result.claims["tier"] == "A"
    assert client.verify(token).deny_reason is DenyReason.TOKEN_ALREADY_USED


def _demo_institution(database_url: str) -> tuple[str, str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(text("SELECT id, name FROM sandbox_institution WHERE demo_slot = 'demo'")).one()
    finally:
        engine.dispose()
    return row[0], row[1]


def test_the_share_page_names_no_institution_but_the_demo_one(  # type: ignore[no-untyped-def]
    app_server, database_url: str, institution, sandbox, phone
) -> None:
    """A stranger must not learn who else uses the sandbox: no list of names and ids, in any answer."""
    open_qr_session(app_server.url)  # the app's first PASSID call onboards the demo institution
    demo_id, demo_name = _demo_institution(database_url)
    onboarding, _ = institution
    stranger = sandbox.onboard(f"Quiet Lender {uuid.uuid4().hex[:8]}")
    hidden = (stranger.institution_id, stranger.institution_name, onboarding.institution_id)

    form_page = phone.get(f"{sandbox.base_url}/phone/share", timeout=10)
    assert form_page.status_code == 200
    assert_readable_html(form_page)
    assert not [secret for secret in hidden if secret in form_page.text]
    page = Page(form_page)
    assert demo_id in page.forms[0].values("institution") and demo_name in page.text  # the demo is offered

    refused = phone.post(
        f"{sandbox.base_url}/phone/share",
        data={"profile": "KE8V-3TXY-Z72L", "institution": "inst_nope", "permissions": ["full_score"]}, timeout=10,
    )
    assert refused.status_code == 400
    assert not [secret for secret in hidden if secret in refused.text]

    minted = _mint(phone, sandbox, onboarding.institution_id, ["full_score"])  # an id the person already knows
    assert SHARE_TOKEN.search(minted.text)
    assert stranger.institution_id not in minted.html and stranger.institution_name not in minted.html


def test_the_revoke_button_makes_a_later_verify_token_revoked(institution, sandbox, phone) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    page = _mint(phone, sandbox, onboarding.institution_id, ["full_score"])
    token = SHARE_TOKEN.findall(page.text)[0]
    revoke_form = next(form for form in page.forms if any("Revoke" in label for _, _, label in form.buttons))
    response = phone.post(revoke_form.action, data={"token": revoke_form.values("token")[0]}, timeout=10)
    assert response.status_code == 200
    assert f"{token} no longer works" in Page(response).text
    assert client.verify(token).deny_reason is DenyReason.TOKEN_REVOKED


@refused_before_storage
def test_the_share_page_refuses_an_incomplete_form_with_a_400(institution, sandbox, phone) -> None:  # type: ignore[no-untyped-def]
    onboarding, _ = institution
    for data in (
        {"profile": "KE8V-3TXY-Z72L", "institution": onboarding.institution_id},
        {"profile": "KE8V-3TXY-Z72L", "institution": "inst_nope", "permissions": ["full_score"]},
        {"profile": "KE8V-3TXY-Z72L", "institution": "inst_\x00", "permissions": ["full_score"]},
        {"profile": "TEST-SANC-0005", "institution": onboarding.institution_id, "permissions": ["full_score"]},
    ):
        response = phone.post(f"{sandbox.base_url}/phone/share", data=data, timeout=10)
        assert response.status_code == 400
        assert "Choose a profile, an institution and at least one thing to share" in Page(response).text
        assert not SHARE_TOKEN.search(response.text)
