"""Only a configured name reaches the customer's phone.

`/verify?institutionName=…` (and embed.js's data-institution-name) is public: anyone
can write it. Were it passed on as it is, the customer's PASSID app would read
"<anything> asks to verify you" under the institution's own key. A per-embed name is
used only when PASSID_INSTITUTION_NAMES lists it; anything else falls back to
PASSID_INSTITUTION_NAME. The app here allows "Partner Bank" and "Acme Lending, Ltd", as the
browser tests' widget server does (in-process: its PASSID calls reach its sandbox over HTTP).
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from app.config import ConfigError, load_settings
from app.passid import PassidClient
from tests.support.html_fields import hidden
from tests.support.widget_actions import WidgetActions


@pytest.fixture
def app_settings() -> dict[str, str]:
    return {"PASSID_INSTITUTION_NAMES": "Partner Bank|Acme Lending, Ltd"}


def _what_the_phone_reads(widget: WidgetActions, client: FlaskClient, sandbox: PassidClient,
                          requested_name: str) -> tuple[str, str, str]:
    """Open the widget with `institutionName`, generate a QR, and read the request on PASSID's side.

    Returns (the widget page, the sandbox phone's consent page, the name PASSID's public API gives).
    """
    page = widget.open(institutionName=requested_name).text
    session = widget.generate_qr(hidden(page, "o"))
    phone = client.get(f"/sandbox/phone/request/{session.request_id}").text
    public = sandbox.get_request_by_code(session.code)
    return page, phone, public.institution_name


@pytest.mark.parametrize("stranger", ["Evil Corp", "Partner Bank Fraud Dept", "Demo Bank<script>"])
def test_a_name_off_the_list_never_reaches_passid(widget: WidgetActions, client: FlaskClient,
                                                  app_sandbox: PassidClient, stranger: str) -> None:
    page, phone, public_name = _what_the_phone_reads(widget, client, app_sandbox, stranger)
    assert public_name == "Demo Bank"
    assert "Demo Bank asks to verify you" in phone
    assert stranger not in phone and stranger not in page


@pytest.mark.parametrize(("requested", "shown"), [
    ("Partner Bank", "Partner Bank"),
    ("Acme Lending, Ltd", "Acme Lending, Ltd"),
    ("  partner   BANK ", "Partner Bank"),  # spacing and case are forgiven; the configured spelling is shown
])
def test_a_name_on_the_list_reaches_passid(widget: WidgetActions, client: FlaskClient, app_sandbox: PassidClient,
                                           requested: str, shown: str) -> None:
    page, phone, public_name = _what_the_phone_reads(widget, client, app_sandbox, requested)
    assert public_name == shown
    assert f"{shown} asks to verify you" in phone
    assert f'<p class="passid__institution">{shown}</p>' in page


def test_the_list_is_separated_by_bars_so_names_may_hold_commas() -> None:
    settings = load_settings({
        "SECRET_KEY": "test-secret", "DATABASE_URL": "sqlite:///:memory:",
        "PASSID_INSTITUTION_NAMES": " Acme Lending, Ltd | Partner Bank ||",
    })
    assert settings.institution_names == ("Acme Lending, Ltd", "Partner Bank")


@pytest.mark.parametrize("bad", ["x" * 81, "Acme\x00Bank", "Acme\nBank"])
def test_an_unusable_name_on_the_list_stops_start_up_with_a_sentence(bad: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"SECRET_KEY": "test-secret", "DATABASE_URL": "sqlite:///:memory:",
                       "PASSID_INSTITUTION_NAMES": f"Partner Bank|{bad}"})
    assert "PASSID_INSTITUTION_NAMES" in str(error.value)
