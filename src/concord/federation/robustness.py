"""What a robust strategy did to each member's update, round by round, so that members see it.

When a round of a job with a robust strategy closes, the hub records per member its update's
norm, its distance to the aggregate, and whether it was kept, clipped, down-weighted or
excluded, with the reason (a code translated here, and the numbers it quotes). The record goes
on the round (`Round.robustness`) and into the round's log entry. A member whose update was
left out (excluded or down-weighted) in more than half of at least `FLAG_AFTER` rounds it took
part in is flagged to the secretariat: listed on the job page and announced once by the event
`federation.member_flagged`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord import events
from concord.errors import N_
from concord.federation.strategies.whole import DOWN_WEIGHTED, EXCLUDED, Verdict
from concord.federation.tables import Job, Round

FLAG_AFTER = 3  # rounds a member took part in before a pattern counts
LEFT_OUT = (EXCLUDED, DOWN_WEIGHTED)

ACTIONS = {
    "kept": N_("kept"),
    "clipped": N_("clipped"),
    "down-weighted": N_("down-weighted"),
    "excluded": N_("excluded"),
}

# Each reason, as a member reads it; the numbers come from the record's `detail`.
REASONS = {
    "far-from-median": N_(
        "Far from the geometric median of the round: it weighed {share:.1%} instead of {plain:.1%}."
    ),
    "clipped-to-centre": N_(
        "It lay further than {tau:.4g} from the centre (the last aggregate), so it was clipped."
    ),
    "norm-above-bound": N_("Its norm exceeded the bound {bound:.4g}, so it was scaled down to it."),
    "krum-not-chosen": N_(
        "Not among the {keep:.0f} updates closest to the others (Krum), so it was left out."
    ),
}
BUCKET = N_("In bucket {bucket:.0f} of {buckets:.0f}, whose mean was treated so: {reason}")


def records(verdicts: Sequence[Verdict], slugs: dict[str, str]) -> list[dict[str, Any]]:
    """The round's records, keyed by member handle instead of the hub's internal id."""
    return [{**v.to_json(), "client": slugs.get(v.client, v.client)} for v in verdicts]


def explain(record: dict[str, Any], gettext: Any) -> str:
    """The record's reason in the reader's language ('' when the update was kept as it was)."""
    reason, detail = str(record.get("reason", "")), dict(record.get("detail", {}))
    bucketed = reason.startswith("bucket-")
    code = reason.removeprefix("bucket-")
    if code not in REASONS:
        return ""
    try:
        text = gettext(REASONS[code]).format(**detail)
        return str(gettext(BUCKET).format(reason=text, **detail) if bucketed else text)
    except (KeyError, ValueError):
        return str(gettext(REASONS[code]))


def flagged(rounds: Sequence[Round]) -> dict[str, tuple[int, int]]:
    """Members left out in more than half of the ≥ FLAG_AFTER closed rounds they took part in:
    handle → (rounds left out, rounds taken part in)."""
    seen: dict[str, list[int]] = {}
    for r in rounds:
        if r.status != "closed":
            continue
        for rec in r.robustness or []:
            counts = seen.setdefault(str(rec["client"]), [0, 0])
            counts[1] += 1
            counts[0] += rec.get("action") in LEFT_OUT
    return {
        m: (out, total)
        for m, (out, total) in seen.items()
        if total >= FLAG_AFTER and 2 * out > total
    }


def announce_flags(session: Session, job: Job, before: set[str]) -> None:
    """Publishes `federation.member_flagged` for each member flagged by the round just closed."""
    rounds = session.scalars(select(Round).where(Round.job_id == job.id)).all()
    for member, (out, total) in sorted(flagged(rounds).items()):
        if member not in before:
            events.publish(
                session,
                "federation.member_flagged",
                {"job": job.id, "member": member, "left_out": out, "rounds": total},
            )


def flagged_before(session: Session, job: Job) -> set[str]:
    return set(flagged(session.scalars(select(Round).where(Round.job_id == job.id)).all()))
