"""The cooperation loop in a real browser (Debian's chromium), as two delegates meet it.

France's delegate reads in French, Kenya's switches to Arabic: each reads the joint project and
its opinion map, votes on statements and casts a ballot signed on "their own machine" (here,
the test holding their private key). Once the project is adopted, both members' nodes train it;
the delegates follow the rounds, open the published model and see the dashboard. Every page is
screenshotted into the test's output folder.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from concord.events import wait_for_deliveries
from concord.federation import data
from concord.federation.node import run_node
from concord.federation.tasks.logreg import DigitsLogReg
from concord.governance import ballots
from concord.members import keys

pytestmark = pytest.mark.browser

SOUTH = [
    ("kenya", "KE"),
    ("brazil", "BR"),
    ("india", "IN"),
    ("nigeria", "NG"),
    ("indonesia", "ID"),
    ("mexico", "MX"),
    ("egypt", "EG"),
]
NORTH = [("france", "FR"), ("germany", "DE"), ("japan", "JP"), ("canada", "CA"), ("sweden", "SE")]
MODEL = "kenya/digits-together"
SPEC = {
    "task": "logreg-digits",
    "participants": {"members": ["kenya", "france"]},
    "rounds": 2,
    "min_participants": 2,
    "round_deadline_s": 60,
    "local": {"epochs": 2, "batch_size": 32, "learning_rate": 0.2},
    "publish_as": MODEL,
    "licence": "Apache-2.0",
}
STATEMENTS = [
    ("Start with a small task that every member can run.", "all"),
    ("Each node must report the energy it used.", "north"),
    ("Training seats should come before compute.", "south"),
    ("The model belongs to every member equally.", "all"),
    ("Five continents must be represented in every round.", "south"),
]


def _project(client: TestClient, actors: dict[str, Any]) -> tuple[str, list[int]]:
    """Kenya proposes the project; every member deliberates; the ballot opens."""
    kenya = actors["kenya"]
    made = client.post(
        "/api/proposals",
        headers=kenya.headers,
        json={
            "kind": "project",
            "title": "Handwritten digits, trained together",
            "texts": {
                "en": "Members train a digit recogniser on data that never leaves them.",
                "fr": "Les membres entraînent un lecteur de chiffres sur des données qui ne "
                "les quittent jamais.",
                "ar": "يدرّب الأعضاء نموذجًا للتعرّف على الأرقام على بيانات لا تغادرهم أبدًا.",
            },
            "body": SPEC,
            "cosponsors": ["france"],
        },
    )
    assert made.status_code == 201, made.text
    ref = str(made.json()["reference"])
    assert client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers).is_success
    ids = []
    for text, _stance in STATEMENTS:
        answer = client.post(
            f"/api/proposals/{ref}/statements", headers=kenya.headers, json={"text": text}
        )
        ids.append(int(answer.json()["id"]))
    # The others vote along their blocs, so that the map has groups; the two delegates of the
    # story vote in the browser.
    for i, (slug, actor) in enumerate(actors.items()):
        if slug in ("kenya", "france"):
            continue
        south = slug in dict(SOUTH)
        for j, (sid, (_text, stance)) in enumerate(zip(ids, STATEMENTS, strict=True)):
            agree = stance == "all" or (stance == "south") == south
            if stance != "all" and (i + j) % 4 == 0:  # members are not their bloc
                agree = not agree
            client.post(
                f"/api/proposals/{ref}/statements/{sid}/votes",
                headers=actor.headers,
                json={"vote": "agree" if agree else "disagree"},
            )
    opened = client.post(f"/api/proposals/{ref}/ballot", headers=kenya.headers, json={})
    assert opened.status_code == 200, opened.text
    return ref, ids


def _sign_in(page: Any, server: str, token: str) -> None:
    page.goto(f"{server}/sign-in")
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("button[type=submit]")


def _deliberate_and_vote(page: Any, ref: str, ids: list[int], actor: Any, votes: str) -> None:
    """Votes on statements from the page, then prepares, signs and casts a ballot."""
    for sid, vote in zip(ids, votes, strict=False):
        with page.expect_navigation():
            page.locator(f"#s{sid} button[value={'agree' if vote == '+' else 'disagree'}]").click()
    assert page.locator("button[aria-pressed=true]").count() == len(votes)
    page.check("input[name=choice][value=yes]")
    with page.expect_navigation():
        page.click("form[method=get][action*='#ballot'] button")
    # The delegate signs the exact text shown, with the key that never leaves their machine.
    text = page.inner_text("#payload")
    page.fill("#signature", keys.sign(actor.key, text.encode()))
    with page.expect_navigation():
        page.click("form[action$='/ballot'] button")


def _train(server: str, actors: dict[str, Any], folder: Path) -> None:
    """Both participants' nodes train the adopted job on their own partitions."""
    x, y, _xt, _yt = DigitsLogReg().split()
    parts = data.dirichlet(y, 2, alpha=1.0, seed=7)
    errors: list[BaseException] = []

    def node(slug: str, part: Any) -> None:
        site = folder / slug
        data.write_partition(site, x[part], y[part])
        keys.save_private(actors[slug].key, site / "key.pem")
        try:
            run_node(
                server,
                slug,
                site,
                actors[slug].token,
                site / "key.pem",
                energy=False,  # codecarbon's tracker adds seconds per round; the demo measures it
                wait=1.0,
                idle_exit=2.0,
            )
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    threads = [
        threading.Thread(target=node, args=(slug, part), daemon=True)
        for slug, part in zip(["kenya", "france"], parts, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


def test_two_delegates_walk_the_whole_story(
    live_server: str, client: TestClient, browser: Any, make: Any, shots: Path, tmp_path: Path
) -> None:
    # Prepare: five members from both blocs, a project in its ballot.
    actors = {slug: make.delegate(slug, code) for slug, code in SOUTH + NORTH}
    secretariat = make.secretariat()
    ref, ids = _project(client, actors)
    france = browser.new_context(locale="fr-FR", viewport={"width": 1100, "height": 800})
    kenya = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 800})
    try:
        # Execute and assert: France's delegate, in French.
        page = france.new_page()
        _sign_in(page, live_server, actors["france"].token)
        page.goto(f"{live_server}/proposals")
        assert page.locator("html").get_attribute("lang") == "fr"
        assert page.inner_text("h1") == "Propositions"
        page.screenshot(path=shots / "01-proposals-fr.png")
        with page.expect_navigation():
            page.click(f"a[href='/proposals/{ref}']")
        assert page.inner_text("h2#map") == "Carte des opinions"
        assert page.locator("svg circle").count() >= 3
        _deliberate_and_vote(page, ref, ids, actors["france"], "+++")
        page.goto(f"{live_server}/proposals/{ref}#map")
        page.screenshot(path=shots / "02-proposal-map-fr.png", full_page=True)

        # Kenya's delegate switches to Arabic with the language menu.
        page = kenya.new_page()
        _sign_in(page, live_server, actors["kenya"].token)
        page.goto(f"{live_server}/proposals/{ref}")
        page.select_option("#lang-select", "ar")
        with page.expect_navigation():
            page.click("form.lang button")
        html = page.locator("html")
        assert html.get_attribute("lang") == "ar" and html.get_attribute("dir") == "rtl"
        assert page.inner_text("h2#map") == "خريطة الآراء"
        assert page.inner_text("h2#ballot") == "الاقتراع"
        _deliberate_and_vote(page, ref, ids, actors["kenya"], "+-+")
        page.screenshot(path=shots / "03-proposal-ar.png", full_page=True)
        cast_so_far = client.get(f"/api/proposals/{ref}/ballots").json()
        assert {b["member"] for b in cast_so_far} == {"kenya", "france"}

        # The other members vote by API; the secretariat closes: adopted under the charter.
        for slug in actors.keys() - {"kenya", "france"}:
            payload = ballots.make_payload(ref, slug, "yes")
            signed = {
                "payload": payload,
                "signature": keys.sign(actors[slug].key, ballots.message(payload)),
            }
            cast = client.post(
                f"/api/proposals/{ref}/ballots",
                headers=actors[slug].headers,
                json={"ballots": [signed]},
            )
            assert cast.status_code == 201, cast.text
        closed = client.post(f"/api/proposals/{ref}/close", headers=secretariat.headers)
        assert closed.status_code == 200 and closed.json()["outcome"] == "adopted", closed.text
        wait_for_deliveries()
        page.goto(f"{live_server}/proposals/{ref}/result")
        page.screenshot(path=shots / "04-result-ar.png", full_page=True)

        # The adopted project becomes a job; the two members' nodes train it.
        jobs = client.get("/api/federation/jobs").json()
        job = next(j for j in jobs if j.get("reference") == ref)
        _train(live_server, actors, tmp_path / "sites")

        # Kenya's delegate follows the rounds, back in English.
        page.goto(f"{live_server}/jobs/{job['id']}?lang=en")
        assert page.locator("html").get_attribute("dir") == "ltr"
        assert page.locator("table tbody tr").count() == SPEC["rounds"]
        assert "completed" in page.inner_text("dl.facts")
        page.screenshot(path=shots / "05-job-rounds.png", full_page=True)
        with page.expect_navigation():
            page.click(f"a[href='/commons/models/{MODEL}']")
        assert page.inner_text("h1") == MODEL
        provenance = page.inner_text("main")
        assert ref in provenance and "france" in provenance
        page.screenshot(path=shots / "06-model.png", full_page=True)
        # Kenya downloads the model as any Hub client would, counted for Kenya on the dashboard.
        weights = client.get(
            f"/{MODEL}/resolve/main/model.safetensors", headers=actors["kenya"].headers
        )
        assert weights.status_code == 200 and len(weights.content) > 1000
        page.goto(f"{live_server}/impact")
        assert page.inner_text("h1") == "Who takes part and who benefits"
        page.screenshot(path=shots / "07-impact.png", full_page=True)

        # France's delegate sees the same job in French.
        page = france.new_page()
        page.goto(f"{live_server}/jobs/{job['id']}")
        assert "Cycles" in page.inner_text("main")
        page.screenshot(path=shots / "08-job-rounds-fr.png", full_page=True)
    finally:
        france.close()
        kenya.close()
    assert all(p.stat().st_size > 1000 for p in shots.glob("*.png"))
