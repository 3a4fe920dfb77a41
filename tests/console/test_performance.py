"""Calibration by tier: an inline SVG drawn on the server, and the same numbers as a table."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient

from app.console.chart import cohort_chart_svg, percent, scale_top
from app.passid import CohortReport, CohortTier, PassidClient
from tests.console.conftest import share_token_for
from tests.support.widget_actions import WidgetActions

EXPECTED = {"A": 0.02, "B": 0.05, "C": 0.10, "D": 0.18, "E": 0.30}


def report(observed: dict[str, tuple[int, int]]) -> CohortReport:
    """`observed` maps tier → (outcomes reported, defaulted); other tiers have none."""
    tiers = []
    for tier, expected in EXPECTED.items():
        reported, defaulted = observed.get(tier, (0, 0))
        tiers.append(CohortTier(tier, 40, reported, {"defaulted": defaulted},
                                defaulted / reported if reported else None, expected))
    return CohortReport(datetime(2026, 1, 2, tzinfo=UTC), tuple(tiers))


def bars(svg: str, series: str) -> list[str]:
    """The tiers that have a bar of `series` ("observed" or "expected")."""
    return re.findall(rf'<rect data-series="{series}" data-tier="([^"]*)"', svg)


def test_the_chart_draws_observed_against_expected_with_counts() -> None:
    svg = str(cohort_chart_svg(report({"A": (50, 1), "B": (30, 2), "E": (4, 3)})))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert '<title id="cohort-chart-title">' in svg and 'aria-labelledby="cohort-chart-title cohort-chart-desc"' in svg
    desc = re.search(r"<desc[^>]*>(.*?)</desc>", svg).group(1)
    assert "Tier A: observed 2% from 50 outcomes, expected 2%, 40 verifications." in desc
    assert "Tier C: no outcomes reported yet, expected 10%" in desc
    assert bars(svg, "observed") == ["A", "B", "E"]  # only tiers with outcomes
    assert bars(svg, "expected") == ["A", "B", "C", "D", "E"]
    for label in ("Tier A", "50 outcomes", "40 verified", "75%", "6.67%", "Observed default rate"):
        assert label in svg
    assert "<script" not in svg and "style=" not in svg  # nothing our CSP would block
    assert "No outcomes reported yet" not in svg


def test_the_chart_without_outcomes_draws_expected_rates_and_says_so() -> None:
    svg = str(cohort_chart_svg(report({})))
    assert bars(svg, "observed") == []
    assert bars(svg, "expected") == ["A", "B", "C", "D", "E"]
    assert "No outcomes reported yet — expected rates only" in svg
    assert re.search(r"<desc[^>]*>No outcomes have been reported yet", svg)


def test_the_chart_escapes_what_passid_sends() -> None:
    hostile = CohortReport(datetime.now(UTC), (CohortTier("<b>", 1, 0, {}, None, None),))
    svg = str(cohort_chart_svg(hostile))
    assert "<b>" not in svg and "&lt;b&gt;" in svg


def test_axis_and_labels_are_round() -> None:
    assert percent(0.0425) == "4.25%" and percent(0.2) == "20%" and percent(None) == "—"
    assert scale_top(report({}).tiers) == 0.4
    assert scale_top(report({"E": (4, 4)}).tiers) == 1.0


def test_percentages_follow_the_staff_language(app: Flask) -> None:
    """The locale's own percent format: French and German put a no-break space before the sign."""
    for language in ("fr", "de", "es"):
        with app.test_request_context("/console/performance", headers={"Accept-Language": language}):
            assert [percent(0.0425), percent(2 / 30), percent(0.2)] == [
                "4,25\N{NO-BREAK SPACE}%", "6,67\N{NO-BREAK SPACE}%", "20\N{NO-BREAK SPACE}%"], language


def test_the_page_shows_the_chart_and_table_with_data(
    app: Flask, staff_client: FlaskClient, widget: WidgetActions, app_demo: tuple[str, str], app_passid: PassidClient
) -> None:
    token = share_token_for(app.config["PASSID_BASE_URL"], app_demo[1], profile="GH2P-ABCD-56KL")
    assert 'data-view="success"' in widget.submit_token(token).text
    app_passid.report_outcome(token, "defaulted", "personal_loan", 900)
    page = staff_client.get("/console/performance").text
    assert 'role="img"' in page and 'data-series="observed" data-tier="C"' in page
    assert "No outcomes have been reported yet" not in page
    table = page.split("<table", 1)[1]
    assert len(re.findall(r'<th scope="row">', table)) == 5
    tier_c = re.search(r'<th scope="row">C</th>(.*?)</tr>', table, flags=re.S).group(1)
    assert "%" in re.findall(r"<td>(.*?)</td>", tier_c)[3]  # an observed rate, not "no outcomes yet"


def test_the_page_without_data_shows_expected_rates_and_a_note(staff_client: FlaskClient,
                                                              widget: WidgetActions) -> None:
    """An institution that verifies but never reports an outcome."""
    assert 'data-view="success"' in widget.submit_token("KE8V-3TXY-Z72L").text
    page = staff_client.get("/console/performance")
    assert page.status_code == 200
    assert "No outcomes have been reported yet, so only the expected rates are drawn." in page.text
    assert 'role="img"' in page.text
    assert 'data-series="observed"' not in page.text and page.text.count('data-series="expected"') == 5
    assert page.text.count("no outcomes yet") == 5
