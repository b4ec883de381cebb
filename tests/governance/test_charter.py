"""The charter's presets against the arithmetic of the bodies they copy, and bad charters."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.governance import charter
from concord.governance.tables import CharterVersion
from concord.ledger.tables import LogEntry

PRESETS = charter.parse(charter.DEFAULT_CHARTER).rules


def ballots(**counts: int) -> list[dict[str, Any]]:
    out = []
    for choice, n in counts.items():
        out += [{"member": f"{choice}{i}", "choice": choice, "reason": "r"} for i in range(n)]
    return out


@pytest.mark.parametrize(
    ("rule", "counts", "eligible", "outcome"),
    [
        ("un-ga-simple", {"yes": 5, "no": 5}, 10, "rejected"),  # a tie is not a majority
        (
            "un-ga-simple",
            {"yes": 6, "no": 5, "abstain": 40},
            193,
            "adopted",
        ),  # abstentions excluded
        ("un-ga-two-thirds", {"yes": 20, "no": 10}, 30, "adopted"),  # exactly 2/3
        ("un-ga-two-thirds", {"yes": 19, "no": 10}, 30, "rejected"),
        ("iso", {"yes": 8, "no": 2}, 10, "adopted"),  # 80 % yes, 20 % negative
        ("iso", {"yes": 14, "no": 6}, 20, "rejected"),  # 70 % yes but 30 % negative
        ("wto-consensus", {"yes": 3, "abstain": 100}, 164, "adopted"),
        ("wto-consensus", {"yes": 160, "objection": 1}, 164, "rejected"),
    ],
)
def test_presets(rule: str, counts: dict[str, int], eligible: int, outcome: str) -> None:
    assert charter.apply(PRESETS[rule], ballots(**counts), eligible, {})["outcome"] == outcome


def test_broad_consensus_needs_quorum_blocs_and_few_objections() -> None:
    rule = PRESETS["broad-consensus"]
    blocs = {"global-south": ["s1", "s2", "s3"], "global-north": ["n1", "n2"]}

    def vote(**choices: str) -> dict[str, Any]:
        return charter.apply(
            rule, [{"member": m, "choice": c, "reason": "r"} for m, c in choices.items()], 5, blocs
        )

    assert vote(s1="yes", s2="yes", s3="yes", n1="yes", n2="abstain")["outcome"] == "adopted"
    assert vote(s1="yes", s2="yes")["outcome"] == "rejected"  # quorum 2/5 < 1/2 and no North
    two_objections = vote(s1="yes", s2="yes", s3="objection", n1="yes", n2="objection")
    assert two_objections["outcome"] == "rejected"
    no_north = vote(s1="yes", s2="yes", s3="yes", n1="no", n2="abstain")
    assert no_north["blocs"]["global-north"]["met"] is False and no_north["outcome"] == "rejected"


def test_bad_charters_are_refused(client: TestClient, make: Any, db: Session) -> None:
    staff = make.secretariat()
    kenya = make.delegate("kenya", "KE")

    def put(text: str, who: Any = staff) -> Any:
        return client.put("/api/charter", headers=who.headers, json={"text": text})

    assert put("[rules\n").json()["error"]["code"] == "charter.unparsable"
    unknown_bloc = charter.DEFAULT_CHARTER.replace('"global-north"]', '"atlantis"]')
    assert put(unknown_bloc).json()["error"]["code"] == "charter.unknown_bloc"
    no_kind = charter.DEFAULT_CHARTER.replace('resolution = "broad-consensus"', "")
    assert put(no_kind).json()["error"]["code"] == "charter.invalid"
    bad_share = charter.DEFAULT_CHARTER.replace('threshold = "2/3"', 'threshold = "3/2"', 1)
    assert put(bad_share).json()["error"]["code"] == "charter.invalid"
    assert put(charter.DEFAULT_CHARTER, kenya).status_code == 403
    assert db.scalar(select(func.count()).select_from(CharterVersion)) == 0
    stored = put(charter.DEFAULT_CHARTER.replace('threshold = "2/3"', 'threshold = "3/4"', 1))
    assert stored.json()["version"] == 1
    assert client.get("/api/charter").json()["rules"]["broad-consensus"]["threshold"] == "3/4"
    logged = db.scalar(
        select(func.count()).select_from(LogEntry).where(LogEntry.kind == "governance.charter")
    )
    assert logged == 1
