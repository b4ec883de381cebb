"""A real browser (Debian's chromium via Playwright) signs in and browses the directory."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


def test_sign_in_and_browse_in_two_languages(live_server: str, browser, make, shots: Path) -> None:
    kenya = make.delegate("kenya", "KE")
    for slug, code in [("brazil", "BR"), ("germany", "DE"), ("china", "CN")]:
        make.member(slug, code)
    page = browser.new_page(locale="fr-FR")
    page.goto(f"{live_server}/members")
    assert page.locator("html").get_attribute("lang") == "fr"
    page.screenshot(path=shots / "directory-fr.png", full_page=True)
    page.goto(f"{live_server}/sign-in")
    page.fill("#token", kenya.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    assert "kenya" in page.inner_text("header")
    page.select_option("#lang-select", "ar")
    page.click("form.lang button")  # choosing alone changes nothing (WCAG 3.2.2 "On Input")
    page.wait_for_url("**lang=ar**")
    assert page.locator("html").get_attribute("dir") == "rtl"
    page.goto(f"{live_server}/members?region=Americas")
    rows = page.locator("tbody tr")
    assert rows.count() == 1
    page.screenshot(path=shots / "directory-ar.png", full_page=True)
    page.click("text=Brazil")
    page.screenshot(path=shots / "member-ar.png", full_page=True)
    assert (shots / "member-ar.png").stat().st_size > 1000
