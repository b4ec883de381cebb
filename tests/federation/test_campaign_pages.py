"""The pages that show how a model works for whom: the campaign matrix, the commons model
page's section, the training job's final model by member, and the impact indicator.

Campaign results are written straight into the campaign tables (no nodes): these tests are
about what the pages show from the domain's matrix, not about how nodes answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from concord.commons import repositories as repos
from concord.commons.chunks import open_store
from concord.config import Settings
from concord.federation.parameters import to_safetensors
from concord.federation.tables import (
    Campaign,
    CampaignAnswer,
    CampaignModel,
    CampaignResult,
    Job,
)
from concord.members.tables import Member

NBSP = "\u00a0"


def _publish(sessions: sessionmaker[Session], settings: Settings, tmp: Path, name: str) -> str:
    source = tmp / f"{name}.safetensors"
    source.write_bytes(to_safetensors({"w": np.zeros((2, 2), dtype=np.float32)}))
    with sessions() as s:
        member = s.scalars(select(Member).where(Member.slug == "kenya")).one()
        revision = repos.publish_model(
            s,
            open_store(settings),
            member,
            name,
            {"model.safetensors": source},
            licence="mit",
            card_text="",
            provenance={},
        )
        s.commit()
        return revision.sha


@pytest.fixture
def campaign(make, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path):
    """Kenya (0.95 on 120), Brazil (0.62 on 40) and Norway (0.91 on 80) evaluated two models
    of the commons; Nepal declined; India has not answered. Threshold 0.9."""
    actors = {
        slug: make.delegate(slug, code)
        for slug, code in [
            ("kenya", "KE"),
            ("brazil", "BR"),
            ("norway", "NO"),
            ("nepal", "NP"),
            ("india", "IN"),
        ]
    }
    shas = [_publish(sessions, settings, tmp_path, n) for n in ("digits", "baseline")]
    ids = {slug: a.member.id for slug, a in actors.items()}
    now = datetime.now(UTC)
    figures = {
        "kenya/digits": {"kenya": (0.95, 120), "brazil": (0.62, 40), "norway": (0.91, 80)},
        "kenya/baseline": {"kenya": (0.5, 120), "brazil": (0.48, 40), "norway": (0.7, 80)},
    }
    with sessions() as s, s.begin():
        spec = {"task": "logreg-digits", "rounds": 1, "strategy": {"name": "fedavg"}, "privacy": {}}
        job = Job(title="Digits for all", spec=spec, status="finished", created_at=now)
        s.add(job)
        s.flush()
        row = Campaign(
            title="Does it read our digits?",
            task="logreg-digits",
            metric="accuracy",
            threshold=0.9,
            job_id=job.id,
            members=list(ids.values()),
            created_at=now,
        )
        s.add(row)
        s.flush()
        for repo, sha in zip(figures, shas, strict=True):
            model = CampaignModel(campaign_id=row.id, repo=repo, revision=sha)
            s.add(model)
            s.flush()
            for slug, (accuracy, n) in figures[repo].items():
                s.add(
                    CampaignResult(
                        campaign_id=row.id,
                        model_id=model.id,
                        member_id=ids[slug],
                        metrics={"accuracy": accuracy, "loss": 0.3},
                        num_examples=n,
                        payload={},
                        signature="",
                        received_at=now,
                    )
                )
        s.add(
            CampaignAnswer(
                campaign_id=row.id,
                member_id=ids["nepal"],
                status="declined",
                reason="site policy",
                signature="",
                received_at=now,
            )
        )
        return row.id, job.id


def _text(html: str) -> str:
    """The page's text, tags dropped and spaces folded, to assert what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_campaign_page_shows_the_matrix_and_its_aggregates(client: TestClient, campaign):
    # Prepare
    campaign_id, _job = campaign

    # Execute
    page = client.get(f"/campaigns/{campaign_id}")
    listing = client.get("/campaigns")

    # Assert
    assert page.status_code == 200
    html = page.text
    assert "<caption>accuracy of each model on each member" in html
    assert html.count('<th scope="row">') >= 5  # kenya, brazil, norway, nepal, india
    text = _text(html)
    assert "0.950 ✓" in text and "0.620 ✗" in text
    assert "declined by the site's policy" in text and "not answered yet" in text
    # Worst member, spread, pass share (2 of 3 members pass 0.9) and the region means.
    assert "0.620 · brazil" in text
    assert "Spread (best minus worst) 0.330 0.220" in text
    assert "Members for whom it passes 67% 0%" in text
    assert "UN region: Africa 0.950 0.500" in text
    assert "Bloc: Global South 0.785 0.490" in text
    assert text.index("Income group: lower-middle 0.950") < text.index("Income group: high 0.910")
    assert f'href="/api/campaigns/{campaign_id}/matrix.csv"' in html
    assert f'href="/campaigns/{campaign_id}"' in listing.text
    assert client.get("/campaigns/999").status_code == 404


def test_the_campaign_page_speaks_the_readers_language(client: TestClient, campaign):
    campaign_id, _job = campaign

    page = client.get(f"/campaigns/{campaign_id}", headers={"Accept-Language": "fr"})

    text = _text(page.text)
    assert "Pire membre" in text and "0,620 · brazil" in text
    assert f"67{NBSP}%" in page.text  # CLDR French puts a no-break space before %


def test_the_model_page_says_how_it_works_for_whom(client: TestClient, campaign):
    campaign_id, _job = campaign

    page = client.get("/commons/models/kenya/digits").text

    text = _text(page)
    assert 'id="how-it-works-for-whom"' in page
    assert "Worst member 0.620 · brazil" in text and "Spread (best minus worst) 0.330" in text
    assert "Africa 0.950" in text and "Americas 0.620" in text
    assert f'href="/campaigns/{campaign_id}"' in page


def test_the_job_page_shows_the_final_model_by_member(client: TestClient, campaign):
    campaign_id, job_id = campaign

    page = client.get(f"/jobs/{job_id}").text

    text = _text(page)
    assert 'id="final-model"' in page and f'href="/campaigns/{campaign_id}"' in page
    assert "brazil americas 0.620 40" in text.lower()


def test_the_impact_dashboard_shows_model_performance_equity(client: TestClient, campaign):
    campaign_id, _job = campaign

    page = client.get("/impact").text

    text = _text(page)
    assert 'id="model-equity"' in page
    # kenya/digits: 3 members, worst 0.62 (brazil), spread 0.33; by income group
    # from the poorest up: Kenya lower-middle 0.95, Brazil upper-middle 0.62, Norway high 0.91.
    assert "kenya/digits accuracy 3 0.620 · brazil 0.330 0.950 0.620 0.910" in text
    assert f'href="/campaigns/{campaign_id}"' in page
    (row,) = [r for r in client.get("/api/impact/models").json() if r["repo"] == "kenya/digits"]
    assert (row["campaign"], row["members"], row["worst_member"]) == (campaign_id, 3, "brazil")
    assert row["spread"] == pytest.approx(0.33)
    assert row["by_income"] == pytest.approx(
        {"high": 0.91, "lower-middle": 0.95, "upper-middle": 0.62}
    )
