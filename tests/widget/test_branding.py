"""The bank's own look, in-process: theme attributes, contrast-safe accent colours, the logo and the favicon.

The logo is a file the institution configures and an SVG may hold scripts, so its response must be
sandboxed, never sniffed, and cached only under a URL that names its bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.widget.options import (
    DARK_BACKGROUND,
    LIGHT_BACKGROUND,
    TEXT_CONTRAST,
    UI_CONTRAST,
    contrast_ratio,
    readable_on,
)

SVG_LOGO = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><rect width="9" height="9" fill="#036"/></svg>'


# --- colours that keep WCAG AA whatever the bank configures -----------------------------------------

@pytest.mark.parametrize("colour", ["#ffff00", "#000080", "#00c27a", "#ffd400", "#ffffff", "#000000", "#7f7f7f"])
@pytest.mark.parametrize("background", [LIGHT_BACKGROUND, DARK_BACKGROUND])
@pytest.mark.parametrize("ratio", [TEXT_CONTRAST, UI_CONTRAST])
def test_the_primary_is_shifted_until_it_reads_on_each_background(colour: str, background: str, ratio: float) -> None:
    shifted = readable_on(colour, background, ratio)
    assert re.fullmatch(r"#[0-9a-f]{6}", shifted)
    assert contrast_ratio(shifted, background) >= ratio


def test_a_colour_that_already_reads_is_kept_as_configured() -> None:
    assert readable_on("#000080", LIGHT_BACKGROUND, TEXT_CONTRAST) == "#000080"  # navy on white: 16:1
    assert readable_on("#ffff00", DARK_BACKGROUND, TEXT_CONTRAST) == "#ffff00"  # yellow on near-black


def test_yellow_darkens_on_white_and_navy_lightens_on_dark() -> None:
    yellow_on_white = readable_on("#ffff00", LIGHT_BACKGROUND, TEXT_CONTRAST)
    navy_on_dark = readable_on("#000080", DARK_BACKGROUND, TEXT_CONTRAST)
    assert contrast_ratio("#ffff00", LIGHT_BACKGROUND) < TEXT_CONTRAST
    assert contrast_ratio(yellow_on_white, LIGHT_BACKGROUND) >= TEXT_CONTRAST
    assert contrast_ratio("#000080", DARK_BACKGROUND) < TEXT_CONTRAST
    assert contrast_ratio(navy_on_dark, DARK_BACKGROUND) >= TEXT_CONTRAST
    # The least shift, so the hue stays the bank's: not simply black or white.
    assert yellow_on_white not in ("#000000", "#ffffff") and navy_on_dark not in ("#000000", "#ffffff")


def full_hex(colour: str) -> str:
    """`#fff` and `#ffffff` name one colour: compare colours, not spellings."""
    digits = colour.lower().removeprefix("#")
    return "#" + ("".join(digit * 2 for digit in digits) if len(digits) == 3 else digits)


def stylesheet_backgrounds(css: str) -> list[str]:
    """Each scheme's `--bg` in the order the stylesheet declares them: light, forced dark, dark by media query."""
    return [full_hex(value) for value in re.findall(r"--bg:\s*(#[0-9a-fA-F]{3,6})\s*;", css)]


def test_the_backgrounds_in_python_are_the_stylesheet_s() -> None:
    """The contrast maths runs on the Python constants; the page paints the stylesheet's: they must be one."""
    css = (Path(__file__).parents[2] / "static" / "widget" / "widget.css").read_text()
    assert stylesheet_backgrounds(css) == [full_hex(LIGHT_BACKGROUND), full_hex(DARK_BACKGROUND),
                                           full_hex(DARK_BACKGROUND)]


def test_a_stylesheet_whose_background_drifted_is_told_apart() -> None:
    """The comparison above is not blind: a dark background edited in the stylesheet alone is seen."""
    css = (Path(__file__).parents[2] / "static" / "widget" / "widget.css").read_text()
    for which in range(3):  # each scheme's declaration in turn
        spots = list(re.finditer(r"--bg:\s*#[0-9a-fA-F]{3,6}\s*;", css))
        drifted = css[:spots[which].start()] + "--bg:#7f7f7f;" + css[spots[which].end():]
        assert stylesheet_backgrounds(drifted) != stylesheet_backgrounds(css), which


# --- the page carries the theme ----------------------------------------------------------------------

def test_the_page_names_scheme_radius_and_font_and_emits_both_schemes_accents(client: FlaskClient) -> None:
    page = client.get("/verify?colorScheme=dark&radius=round&font=serif&theme=%23ffff00").text
    assert re.search(r'<html [^>]*data-color-scheme="dark" data-radius="round" data-font="serif"', page)
    style = re.search(r"<style nonce=[^>]*>(.*?)</style>", page, re.S).group(1)  # type: ignore[union-attr]
    accents = dict(re.findall(r"--passid-([a-z-]+):(#[0-9a-f]{6})", style))
    assert accents["primary"] == "#ffff00" and accents["on-primary"] == "#000000"
    assert contrast_ratio(accents["link-light"], LIGHT_BACKGROUND) >= TEXT_CONTRAST
    assert contrast_ratio(accents["ring-light"], LIGHT_BACKGROUND) >= UI_CONTRAST
    assert contrast_ratio(accents["link-dark"], DARK_BACKGROUND) >= TEXT_CONTRAST
    assert contrast_ratio(accents["ring-dark"], DARK_BACKGROUND) >= UI_CONTRAST


def test_values_off_the_lists_fall_back_to_configuration(build_app: Callable[..., Flask]) -> None:
    client = build_app(PASSID_THEME_COLOR_SCHEME="light", PASSID_THEME_RADIUS="square",
                       PASSID_THEME_FONT="inherit").test_client()
    page = client.get('/verify?colorScheme=purple&radius=1px;x&font="Comic Sans"').text
    assert 'data-color-scheme="light" data-radius="square" data-font="inherit"' in page


# --- the logo -----------------------------------------------------------------------------------------

@pytest.fixture
def svg_logo(tmp_path: Path) -> Path:
    path = tmp_path / "bank-logo.svg"
    path.write_bytes(SVG_LOGO)
    return path


def test_without_a_logo_there_is_no_img_and_the_route_is_404(client: FlaskClient) -> None:
    assert "passid__logo" not in client.get("/verify").text
    assert client.get("/verify/logo").status_code == 404


def test_the_logo_is_served_sandboxed_nosniff_and_cached_under_its_hash(
    build_app: Callable[..., Flask], svg_logo: Path
) -> None:
    client = build_app(PASSID_LOGO_PATH=str(svg_logo), PASSID_INSTITUTION_NAME="Acme Bank").test_client()
    page = client.get("/verify").text
    img = re.search(r'<img class="passid__logo" src="([^"]+)" alt="([^"]+)">', page)
    assert img is not None
    assert img.group(2) == "Acme Bank logo"
    assert re.fullmatch(r"/verify/logo\?v=[0-9a-f]{12}", img.group(1))
    answer = client.get(img.group(1))
    assert answer.status_code == 200 and answer.data == SVG_LOGO
    assert answer.headers["Content-Type"] == "image/svg+xml"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    # Its own policy replaces the page's, frame-ancestors included: an image no site may frame.
    assert answer.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"
    )
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_a_new_logo_gets_a_new_url(build_app: Callable[..., Flask], svg_logo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.png"
    other.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    first = build_app(PASSID_LOGO_PATH=str(svg_logo)).test_client()
    second = build_app(PASSID_LOGO_PATH=str(other)).test_client()
    url = re.compile(r'src="(/verify/logo\?v=[0-9a-f]+)"')
    first_url = url.search(first.get("/verify").text).group(1)  # type: ignore[union-attr]
    second_url = url.search(second.get("/verify").text).group(1)  # type: ignore[union-attr]
    assert first_url != second_url
    assert second.get(second_url).headers["Content-Type"] == "image/png"


# --- the favicon --------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/verify", "/sandbox/phone", "/staff/sign-in"])
def test_pages_link_a_favicon_we_serve(client: FlaskClient, path: str) -> None:
    icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', client.get(path).text)
    assert icon is not None
    answer = client.get(icon.group(1))
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("image/svg+xml")


def test_favicon_ico_leads_to_the_icon(client: FlaskClient) -> None:
    answer = client.get("/favicon.ico")
    assert answer.status_code == 302
    assert re.fullmatch(r"/static/favicon\.[0-9a-f]{12}\.svg", answer.headers["Location"])
    assert client.get(answer.headers["Location"]).status_code == 200
