"""A real browser deliberates: signs in, adds a statement, votes, and sees the opinion map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_delegate_deliberates_in_the_browser(
    live_server: str, browser: Any, assembly: dict[str, Any], shots: Path
) -> None:
    kenya = assembly["kenya"]
    with httpx.Client(base_url=live_server) as api:
        ref = api.post(
            "/api/proposals",
            headers=kenya.headers,
            json={
                "kind": "resolution",
                "title": "Shared compute",
                "texts": {"en": "Members pool compute for training."},
            },
        ).json()["reference"]
        api.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
        texts = [
            "Pooling saves money.",
            "Access must be equal.",
            "Energy must be reported.",
            "Start with a pilot.",
            "Open source only.",
            "Data stays home.",
            "Report usage.",
        ]
        ids = [
            api.post(
                f"/api/proposals/{ref}/statements", headers=kenya.headers, json={"text": t}
            ).json()["id"]
            for t in texts
        ]
        for slug, actor in assembly.items():
            for j, sid in enumerate(ids):
                south = slug in ("kenya", "brazil", "india")
                vote = "agree" if (j > 1 or (j == 0) == south) else "disagree"
                api.post(
                    f"/api/proposals/{ref}/statements/{sid}/votes",
                    headers=actor.headers,
                    json={"vote": vote},
                )
    page = browser.new_page()
    page.goto(f"{live_server}/sign-in")
    page.fill("#token", assembly["france"].token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    page.goto(f"{live_server}/proposals/{ref}")
    assert page.locator("svg circle").count() == 5
    page.fill("#text", "Training seats for every member.")
    with page.expect_navigation():
        page.click("form[action$='/statements'] button")
    assert page.locator(".statement", has_text="Training seats for every member.").count() == 1
    with page.expect_navigation():
        page.locator(f"#s{ids[1]} button[value=agree]").click()
    assert page.locator(f"#s{ids[1]} button[value=agree]").get_attribute("aria-pressed") == "true"
    page.screenshot(path=shots / "proposal.png", full_page=True)
    assert (shots / "proposal.png").stat().st_size > 1000
