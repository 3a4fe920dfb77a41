"""Expiry, and PASSID being down, slow or answering nonsense: error state, then recovery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.faulty_upstream import FaultyUpstream
from tests.support.servers import AppServer, base_env, migrate


@pytest.fixture
def short_ttl_server(tmp_path: Path) -> Iterator[AppServer]:
    """A widget whose QR requests live three seconds."""
    env = base_env(
        f"sqlite:///{tmp_path / 'passid.db'}", PASSID_SANDBOX_MIN_TTL_SECONDS="1", PASSID_REQUEST_TTL_SECONDS="3"
    )
    migrate(env)
    server = AppServer(env, tmp_path / "app.log").start()
    yield server
    server.stop()


def test_an_expired_code_offers_generate_new_code_which_starts_a_fresh_session(
    page: Page, short_ttl_server: AppServer
) -> None:
    page.goto(f"{short_ttl_server.url}/verify")
    page.get_by_role("button", name="Generate QR").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting")
    first_code = page.locator(".passid-code").inner_text()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "declined", timeout=8_000)
    expect(page.locator(".passid-message")).to_contain_text("expired")
    page.get_by_role("button", name="Generate new code").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting")
    assert page.locator(".passid-code").inner_text() != first_code


def test_the_countdown_reaches_zero_with_the_expiry(page: Page, short_ttl_server: AppServer) -> None:
    page.goto(f"{short_ttl_server.url}/verify")
    page.get_by_role("button", name="Generate QR").click()
    countdown = page.locator(".passid-countdown__time")
    expect(countdown).to_have_text("0:02", timeout=3_000)
    expect(countdown).to_have_text("0:01", timeout=2_000)


@pytest.mark.parametrize("mode", ["reset", "hang", "error500", "garbage", "wrong_shape"])
def test_passid_failing_shows_the_error_state_and_try_again_recovers(
    page: Page, upstream: tuple[AppServer, FaultyUpstream], mode: str
) -> None:
    server, proxy = upstream
    page.goto(f"{server.url}/verify")
    proxy.mode = mode
    page.get_by_role("button", name="Generate QR").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "error", timeout=8_000)
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    proxy.mode = "forward"
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting")


def test_a_manual_verify_that_fails_upstream_can_be_retried(
    page: Page, upstream: tuple[AppServer, FaultyUpstream]
) -> None:
    server, proxy = upstream
    page.goto(f"{server.url}/verify")
    proxy.mode = "error500"
    page.get_by_label("Enter a PASSID token").fill("KE8V-3TXY-Z72L")
    page.get_by_role("button", name="Verify token").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "error")
    proxy.mode = "forward"
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "idle")
    page.get_by_label("Enter a PASSID token").fill("KE8V-3TXY-Z72L")
    page.get_by_role("button", name="Verify token").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "success")


def test_a_poll_that_fails_upstream_resumes_the_same_code(
    page: Page, upstream: tuple[AppServer, FaultyUpstream]
) -> None:
    server, proxy = upstream
    page.goto(f"{server.url}/verify")
    page.get_by_role("button", name="Generate QR").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting")
    code = page.locator(".passid-code").inner_text()
    proxy.mode = "error500"
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "error", timeout=6_000)
    proxy.mode = "forward"
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting")
    assert page.locator(".passid-code").inner_text() == code


def test_our_own_server_being_unreachable_still_shows_the_error_state(
    page: Page, upstream: tuple[AppServer, FaultyUpstream]
) -> None:
    server, _ = upstream
    page.goto(f"{server.url}/verify")
    server.stop()
    page.get_by_role("button", name="Generate QR").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "error")
    expect(page.get_by_role("link", name="Try again")).to_be_visible()
