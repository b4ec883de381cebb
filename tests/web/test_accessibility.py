"""Every page passes axe-core at WCAG 2.1 A and AA, in English and in Arabic, read anonymously
and signed in (the forms then show).

The routes are the app's own: every GET page route of every `pages` module. Routes with ids get
real ones from a seeded world (the demo's seed steps, without the slow federated run), found as
links on the pages already visited, as a reader would find them; a proposal still in
deliberation, with a translated statement and a hidden one, adds the deliberation forms. The
API documentation (`/api/docs`, Swagger UI served by the hub) is walked too, once Swagger UI has
drawn it, and a second test opens its operations, tries one and shows the schemas.

axe-core comes from npm (`npm install --prefix tests/web axe-core@4`, done by `make install`
and `.ci/run`; or give its folder in AXE_CORE_DIR). It is injected with Playwright's
`add_init_script`, which the browser runs through the DevTools protocol before the page's own
scripts: the pages' Content-Security-Policy (no inline script) stays on while we test them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from concord.config import Settings
from concord.domains import domain_modules
from concord.events import deliver_pending
from concord.hubkey import load_or_create
from concord.seeding import World
from concord.web.docs import DOCS_URL

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE = Path(os.environ.get("AXE_CORE_DIR", Path(__file__).parent / "node_modules" / "axe-core"))
AXE_RUN = (
    "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
    ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help, "
    "nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))"
)


def page_routes(app: FastAPI) -> list[str]:
    """Every GET route of the app that answers with an HTML page, outside the API."""
    paths: list[str] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI's lazily included router
                walk(route.original_router.routes)
            elif (
                "GET" in (getattr(route, "methods", None) or ())
                and getattr(route, "response_class", None) is HTMLResponse
                and not str(route.path).startswith("/api")
                and route.path not in paths
            ):
                paths.append(str(route.path))

    walk(list(app.router.routes))
    return paths


def pattern(path: str) -> re.Pattern[str]:
    """`/members/{ref}` → a regular expression for real paths like `/members/kenya`."""
    parts = re.split(r"\{[^}]+\}", path)
    return re.compile("^" + "[^/?#]+".join(re.escape(p) for p in parts) + "$")


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[World]:
    load_or_create(settings)
    world = World(settings=settings, sessions=sessions)
    for module in domain_modules("seed"):
        if module.__name__ == "concord.federation.seed":
            continue  # it trains for minutes; the job it would run exists already, with its page
        module.seed(world)
        deliver_pending(sessions, settings)
    yield world


def deliberation(client: TestClient, world: World, make: Any) -> str:
    """A proposal in deliberation with statements, votes, a translation and a hidden one."""
    kenya = {"Authorization": f"Bearer {world.facts['tokens']['kenya']}"}
    france = {"Authorization": f"Bearer {world.facts['tokens']['france']}"}
    made = client.post(
        "/api/proposals",
        headers=kenya,
        json={
            "kind": "resolution",
            "title": "Model cards in six languages",
            "texts": {"en": "Every model card is published in the six languages."},
        },
    )
    ref = str(made.json()["reference"])
    client.post(f"/api/proposals/{ref}/deliberation", headers=kenya)
    ids = [
        client.post(
            f"/api/proposals/{ref}/statements",
            headers=h,
            json={"text": text, "language": lang},
        ).json()["id"]
        for h, text, lang in [
            (kenya, "Translation budgets come first.", "en"),
            (france, "Les cartes doivent rester courtes.", "fr"),
            (france, "Buy our product.", "en"),
        ]
    ]
    for h in (kenya, france):
        for sid in ids:
            client.post(
                f"/api/proposals/{ref}/statements/{sid}/votes", headers=h, json={"vote": "agree"}
            )
    client.post(
        f"/api/proposals/{ref}/translations",
        headers=make.person("translator").headers,
        json={"statement": ids[1], "language": "en", "text": "Model cards must stay short."},
    )
    client.post(
        f"/api/proposals/{ref}/statements/{ids[2]}/hide",
        headers=make.secretariat().headers,
        json={"reason": "Advertising."},
    )
    # the seeded commons holds models only: a dataset, for its page
    made = client.post(
        "/api/commons/repos",
        headers=kenya,
        json={"owner": "kenya", "name": "maize-leaves", "kind": "dataset", "licence": "cc-by-4.0"},
    )
    assert made.status_code == 201, made.text
    return ref


def evaluated(world: World) -> list[str]:
    """A campaign of a commons model with results, a decline and a pending member, tied to the
    seeded job if there is one: its page, the model's section and the job's final model show.
    Written straight into the tables: the nodes that would answer are not part of this walk."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from concord.commons import repositories as repos
    from concord.commons.tables import Repository
    from concord.federation.tables import (
        Campaign,
        CampaignAnswer,
        CampaignModel,
        CampaignResult,
        Job,
    )
    from concord.members.tables import Member

    now = datetime.now(UTC)
    with world.sessions() as s, s.begin():
        repo = s.scalars(select(Repository).where(Repository.kind == "model")).first()
        assert repo is not None, "the seeded commons holds a model"
        revision = repos.head(s, repo)
        assert revision is not None
        job = s.scalars(select(Job).order_by(Job.id)).first()
        members = {m.slug: m.id for m in s.scalars(select(Member)).all()}
        campaign = Campaign(
            title="Does it work for us?",
            task="logreg-digits",
            metric="accuracy",
            threshold=0.9,
            job_id=job.id if job else None,
            members=[members[m] for m in ("kenya", "brazil", "france", "nepal")],
            created_at=now,
        )
        s.add(campaign)
        s.flush()
        model = CampaignModel(
            campaign_id=campaign.id, repo=repos.repo_id(repo), revision=revision.sha
        )
        s.add(model)
        s.flush()
        for slug, accuracy in (("kenya", 0.93), ("brazil", 0.71)):
            s.add(
                CampaignResult(
                    campaign_id=campaign.id,
                    model_id=model.id,
                    member_id=members[slug],
                    metrics={"accuracy": accuracy},
                    num_examples=1200,
                    payload={},
                    signature="",
                    received_at=now,
                )
            )
        s.add(
            CampaignAnswer(
                campaign_id=campaign.id,
                member_id=members["france"],
                status="declined",
                signature="",
                received_at=now,
            )
        )
        pages = [f"/campaigns/{campaign.id}", f"/commons/models/{repos.repo_id(repo)}"]
        return pages + ([f"/jobs/{job.id}"] if job else [])


def audit(context: Any, base: str, start: list[str], routes: list[str]) -> dict[str, Any]:
    """Visits `start` and then, for every route still unvisited, the first link to it found on
    a visited page; returns {path: violations} and the routes never reached."""
    page = context.new_page()
    wanted = {route: pattern(route) for route in routes}
    reached: dict[str, str] = {}
    queue = list(start)
    results: dict[str, Any] = {}
    statuses: dict[str, int] = {}
    seen: set[str] = set()
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        response = page.goto(base + path)
        assert response is not None, path
        statuses[path] = response.status  # a refusal (403) is a page too: it is checked alike
        if path == DOCS_URL:  # Swagger UI draws the page from the OpenAPI document
            page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        results[path] = page.evaluate(AXE_RUN, TAGS)
        for route, regex in wanted.items():
            if route in reached:
                continue
            if regex.match(urlparse(path).path):
                reached[route] = path
                continue
            for href in page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)"):
                url = urlparse(href)
                if href.startswith(base) and regex.match(url.path):
                    reached[route] = url.path
                    queue.append(url.path)
                    break
    page.close()
    shown = {route for route, path in reached.items() if statuses.get(path) == 200}
    return {"violations": results, "shown": shown, "missing": sorted(set(routes) - set(reached))}


def test_every_page_passes_axe_in_english_and_arabic(
    live_server: str, browser: Any, client: TestClient, world: World, make: Any, app: FastAPI
) -> None:
    # Prepare
    if not (AXE / "axe.min.js").exists():
        pytest.fail(f"{AXE}/axe.min.js is missing: npm install --prefix tests/web axe-core@4")
    ref = deliberation(client, world, make)
    routes = page_routes(app)
    # the proposal, and (for a delegate) with a proxy to France prepared for signing
    start = [r for r in routes if "{" not in r] + [
        f"/proposals/{ref}",
        f"/proposals/{ref}?holder=france",
    ]
    # every proposal: the decided ones link to their result
    start += [f"/proposals/{p['reference']}" for p in client.get("/api/proposals").json()]
    start += ["/commons/datasets/kenya/maize-leaves", DOCS_URL, *evaluated(world)]
    staff = make.secretariat()
    found: dict[str, Any] = {}
    # Execute: anonymous readers and a signed-in delegate, in English and in Arabic
    for language in ("en", "ar"):
        for who in ("reader", "delegate", "secretariat"):
            context = browser.new_context(locale=language)
            context.add_init_script(path=str(AXE / "axe.min.js"))
            if who != "reader":
                token = world.facts["tokens"]["kenya"] if who == "delegate" else staff.token
                page = context.new_page()
                page.goto(f"{live_server}/sign-in")
                page.fill("#token", token)
                page.click("button[type=submit]")
                page.wait_for_url(f"{live_server}/")
                page.close()
            found[f"{language}/{who}"] = audit(context, live_server, start, routes)
            context.close()
    # Assert
    problems = [
        f"{key} {path}: {v['id']} ({v['impact']}) {v['help']} at {v['nodes']}"
        for key, result in found.items()
        for path, violations in result["violations"].items()
        for v in violations
    ]
    missing = {key: result["missing"] for key, result in found.items() if result["missing"]}
    never_shown = set(routes) - set().union(*(result["shown"] for result in found.values()))
    assert not missing and not problems and not never_shown, (
        f"routes never reached with a real id: {missing}\n"
        f"routes no identity could see (200): {sorted(never_shown)}\n"
        + "axe-core found violations:\n"
        + "\n".join(problems)
    )


def test_the_api_docs_pass_axe_as_they_are_used(live_server: str, browser: Any) -> None:
    """/api/docs in the states a reader brings it to: every operation listed, one opened, tried
    and answered (a response with its copy button), a POST opened with its schema, and the
    schemas listed. The colours Swagger UI ships fail AA contrast and its deep links nest a
    link in a button: `static/docs.css` and `static/docs.js` fix both, so no rule is skipped."""
    # Prepare
    if not (AXE / "axe.min.js").exists():
        pytest.fail(f"{AXE}/axe.min.js is missing: npm install --prefix tests/web axe-core@4")
    context = browser.new_context(locale="en")
    context.add_init_script(path=str(AXE / "axe.min.js"))
    page = context.new_page()
    found: dict[str, Any] = {}
    # Execute
    page.goto(live_server + DOCS_URL)
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    found["listed"] = page.evaluate(AXE_RUN, TAGS)
    page.click(".opblock-get .opblock-summary-control >> nth=0")
    page.wait_for_selector(".opblock.is-open .try-out__btn")
    found["opened"] = page.evaluate(AXE_RUN, TAGS)
    page.click(".opblock.is-open .try-out__btn")
    page.click(".opblock.is-open .btn.execute")
    page.wait_for_selector(".opblock.is-open .live-responses-table .copy-to-clipboard button")
    found["answered"] = page.evaluate(AXE_RUN, TAGS)
    page.click(".opblock-post .opblock-summary-control >> nth=0")
    page.wait_for_selector(".opblock-post.is-open .opblock-body")
    found["post"] = page.evaluate(AXE_RUN, TAGS)
    page.locator("section.models").scroll_into_view_if_needed()
    found["schemas"] = page.evaluate(AXE_RUN, TAGS)
    context.close()
    # Assert
    problems = [
        f"{state}: {v['id']} ({v['impact']}) {v['help']} at {v['nodes']}"
        for state, violations in found.items()
        for v in violations
    ]
    assert not problems, "axe-core found violations on /api/docs:\n" + "\n".join(problems)


def _tab_to(page: Any, selector: str, limit: int = 120) -> None:
    """Presses Tab until `selector` has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


def test_sign_in_and_deliberate_with_the_keyboard_alone(
    live_server: str, browser: Any, client: TestClient, make: Any
) -> None:
    # Prepare: a proposal in deliberation
    kenya = make.delegate("kenya", "KE")
    made = client.post(
        "/api/proposals",
        headers=kenya.headers,
        json={"kind": "resolution", "title": "Open models", "texts": {"en": "Share models."}},
    )
    ref = made.json()["reference"]
    client.post(f"/api/proposals/{ref}/deliberation", headers=kenya.headers)
    page = browser.new_context(locale="en").new_page()
    # Execute: the skip link, the sign-in form, the language menu, the statement form
    page.goto(f"{live_server}/sign-in")
    page.keyboard.press("Tab")
    skip = page.evaluate("document.activeElement.getAttribute('href')")
    page.keyboard.press("Enter")
    in_main = page.evaluate("document.activeElement.id")
    _tab_to(page, "#token")
    page.keyboard.type(kenya.token)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/")
    page.goto(f"{live_server}/proposals/{ref}")
    _tab_to(page, "#lang-select")
    page.keyboard.press("ArrowDown")  # choosing a language must not leave the page by itself
    stayed = page.url
    page.keyboard.press("ArrowUp")
    _tab_to(page, "#text")
    page.keyboard.type("Keyboards are enough.")
    _tab_to(page, "#statement-language")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/proposals/{ref}#statements")
    # Assert
    assert skip == "#content" and in_main == "content"
    assert stayed == f"{live_server}/proposals/{ref}"
    said = client.get(f"/api/proposals/{ref}/statements").json()
    assert [s["text"] for s in said] == ["Keyboards are enough."]
    assert page.locator(".statement").first.is_visible()
