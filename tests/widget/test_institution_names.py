"""Only a configured name reaches the customer's phone (issue 9, finding 6).

`/verify?institutionName=…` (and embed.js's data-institution-name) is public: anyone
can write it. Were it passed on as it is, the customer's PASSID app would read
"<anything> asks to verify you" under the institution's own key. A per-embed name is
used only when PASSID_INSTITUTION_NAMES lists it; anything else falls back to
PASSID_INSTITUTION_NAME. The shared widget server allows "Partner Bank" and
"Acme Lending, Ltd" (see tests/browser/conftest.py).
"""

from __future__ import annotations

import re

import pytest
import requests

from app.config import ConfigError, load_settings
from app.passid import PassidClient
from tests.support.servers import AppServer
from tests.support.widget_http import open_qr_session


def _what_the_phone_reads(server: AppServer, requested_name: str) -> tuple[str, str, str]:
    """Open the widget with `institutionName`, generate a QR, and read the request on PASSID's side.

    Returns (the widget page, the sandbox phone's consent page, the name PASSID's public API gives).
    """
    http = requests.Session()
    page = http.get(f"{server.url}/verify", params={"institutionName": requested_name}, timeout=10).text
    options = re.search(r'name="o" value="([^"]+)"', page)
    assert options, "no signed options on /verify"
    session = open_qr_session(server.url, http, options.group(1))
    phone = requests.get(f"{server.sandbox_url}/phone/request/{session.request_id}", timeout=10).text
    public = PassidClient(server.sandbox_url).get_request_by_code(session.code)
    return page, phone, public.institution_name


@pytest.mark.parametrize("stranger", ["Evil Corp", "Partner Bank Fraud Dept", "Demo Bank<script>"])
def test_a_name_off_the_list_never_reaches_passid(widget_server: AppServer, stranger: str) -> None:
    page, phone, public_name = _what_the_phone_reads(widget_server, stranger)
    assert public_name == "Demo Bank"
    assert "Demo Bank asks to verify you" in phone
    assert stranger not in phone and stranger not in page


@pytest.mark.parametrize(("requested", "shown"), [
    ("Partner Bank", "Partner Bank"),
    ("Acme Lending, Ltd", "Acme Lending, Ltd"),
    ("  partner   BANK ", "Partner Bank"),  # spacing and case are forgiven; the configured spelling is shown
])
def test_a_name_on_the_list_reaches_passid(widget_server: AppServer, requested: str, shown: str) -> None:
    page, phone, public_name = _what_the_phone_reads(widget_server, requested)
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
