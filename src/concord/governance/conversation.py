"""A deliberation exported in the Polis export's shape, so that Polis' tools and notebooks
(and anyone used to them) read it as they read a Polis conversation.

- comments.csv: timestamp, datetime, comment-id, author-id, agrees, disagrees, moderated,
  comment-body; `moderated` is 1 (shown) or -1 (hidden by the secretariat, whose body is
  left out, as readers see it);
- votes.csv: timestamp, datetime, comment-id, voter-id, vote (1 agree, -1 disagree, 0 pass);
- participants-votes.csv: participant, group-id, n-comments, n-votes, n-agree, n-disagree,
  then one column per comment id with that participant's vote (empty: none).

Ids are the hub's statement and person numbers; timestamps are Unix seconds and `datetime`
is ISO 8601 in UTC. Every vote is exported, including votes on hidden statements (flagged by
their comment's `moderated`), as Polis does; the opinion map leaves those out.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.errors import N_, NotFound
from concord.governance import deliberation
from concord.governance.tables import Proposal, StatementVote

COMMENTS = (
    "timestamp",
    "datetime",
    "comment-id",
    "author-id",
    "agrees",
    "disagrees",
    "moderated",
    "comment-body",
)
VOTES = ("timestamp", "datetime", "comment-id", "voter-id", "vote")
PARTICIPANTS = ("participant", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree")
FILES = ("comments.csv", "votes.csv", "participants-votes.csv")


class NoSuchExport(NotFound):
    code = "conversation.no_export"
    message = N_("There is no export “{name}”: comments.csv, votes.csv, participants-votes.csv.")


def _when(at: datetime) -> tuple[int, str]:
    return int(at.timestamp()), at.isoformat(timespec="seconds")


def _votes(session: Session, proposal: Proposal) -> list[StatementVote]:
    return list(
        session.scalars(
            select(StatementVote)
            .where(StatementVote.proposal_id == proposal.id)
            .order_by(StatementVote.created_at, StatementVote.id)
        ).all()
    )


def comments(session: Session, proposal: Proposal) -> list[dict[str, Any]]:
    votes = _votes(session, proposal)
    rows = []
    for s in deliberation.statements(session, proposal):
        stamp, iso = _when(s.created_at)
        mine = [v.vote for v in votes if v.statement_id == s.id]
        rows.append(
            {
                "timestamp": stamp,
                "datetime": iso,
                "comment-id": s.id,
                "author-id": s.person_id,
                "agrees": mine.count(1),
                "disagrees": mine.count(-1),
                "moderated": -1 if s.hidden_at is not None else 1,
                "comment-body": "" if s.hidden_at is not None else s.text,
            }
        )
    return rows


def votes(session: Session, proposal: Proposal) -> list[dict[str, Any]]:
    rows = []
    for v in _votes(session, proposal):
        stamp, iso = _when(v.created_at)
        rows.append(
            {
                "timestamp": stamp,
                "datetime": iso,
                "comment-id": v.statement_id,
                "voter-id": v.person_id,
                "vote": v.vote,
            }
        )
    return rows


def participants(session: Session, proposal: Proposal) -> list[dict[str, Any]]:
    """One row per person who wrote or voted, with their opinion group from the map."""
    items = deliberation.statements(session, proposal)
    opinion = deliberation.opinion_map(session, proposal, max_age_s=0)  # matched to the votes
    # the map's points are in the order of the ids of the people who voted on what it counts
    _shown, counted = deliberation.map_votes(session, proposal)
    mapped = sorted({row[0] for row in counted})
    group = {p: opinion["points"][i][2] for i, p in enumerate(mapped) if i < len(opinion["points"])}
    by_person: dict[int, dict[int, int]] = {}
    for v in _votes(session, proposal):
        by_person.setdefault(v.person_id, {})[v.statement_id] = v.vote
    written: dict[int, int] = {}
    for s in items:
        written[s.person_id] = written.get(s.person_id, 0) + 1
    rows = []
    for person in sorted(set(by_person) | set(written)):
        cast = by_person.get(person, {})
        row: dict[str, Any] = {
            "participant": person,
            "group-id": group.get(person, "") if group.get(person, -1) >= 0 else "",
            "n-comments": written.get(person, 0),
            "n-votes": len(cast),
            "n-agree": sum(1 for x in cast.values() if x == 1),
            "n-disagree": sum(1 for x in cast.values() if x == -1),
        }
        for s in items:
            row[str(s.id)] = cast.get(s.id, "")
        rows.append(row)
    return rows


def as_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def export_file(session: Session, proposal: Proposal, name: str) -> str:
    """One of FILES as CSV text."""
    if name not in FILES:
        raise NoSuchExport(name=name[:64])
    if name == "comments.csv":
        return as_csv(comments(session, proposal), COMMENTS)
    if name == "votes.csv":
        return as_csv(votes(session, proposal), VOTES)
    ids = [str(s.id) for s in deliberation.statements(session, proposal)]
    return as_csv(participants(session, proposal), [*PARTICIPANTS, *ids])


def export_json(session: Session, proposal: Proposal) -> dict[str, Any]:
    return {
        "proposal": proposal.reference,
        "comments": comments(session, proposal),
        "votes": votes(session, proposal),
        "participants": participants(session, proposal),
    }
