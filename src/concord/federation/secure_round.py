"""A round under SecAgg+ at the hub: its four stages over the nodes' long polls.

Each chosen node, after training, goes through the stages in order; the hub only relays and
keeps rows (`SecAggMessage`) and the masked vectors (`Update` rows, their files `.u32`):

1. keys: the node advertises two X25519 public keys and its weight, signed with the member's
   Ed25519 key. The stage closes when every chosen node has, or at 40 % of the round's time.
   The nodes that did form U1; the hub then fixes the neighbourhood graph, t and the scale.
2. shares: each node of U1 sends its neighbours' encrypted shares (AES-GCM, keys the hub
   cannot derive), signed. Closes when U1 has sent, or at 55 %: the senders form U2.
3. masked: each node of U2 uploads y = x + masks (mod 2^32), signed like an update. Closes
   when U2 has, or at 75 %: the uploaders are the survivors U3; U2 \\ U3 dropped out.
4. reveal: each survivor opens, for each neighbour, the share of b (survivor) or of s (dropped).
   Closes when U3 has answered, or at 90 %. The hub unmasks the sum and the round closes with
   it; with fewer than t survivors or shares it fails, is logged, and is tried again.

A stage's end depends only on the rows and the clock, so every hub process agrees on it, and a
message for a closed stage is refused. The hub never holds an update in clear: it stores the
masked vectors, the public keys, and ciphertexts; what it reconstructs is the self-mask seeds
of survivors and the mask keys of the dropped, which unmask the sum and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Conflict, Invalid
from concord.federation.parameters import Parameters
from concord.federation.privacy import secagg
from concord.federation.tables import Round, SecAggMessage, Update
from concord.governance.jobspec import JobSpec, SecureAggregation
from concord.ledger.log import canonical_json
from concord.members.keys import verify
from concord.members.tables import Member

STAGES = ("keys", "shares", "masked", "reveal")


class StageClosed(Conflict):
    code = "federation.secagg_stage"
    message = N_(
        "Secure aggregation stage “{stage}” of round {round} is not open for member "
        "“{member}”: its part in this round is over."
    )


class BadSecAggMessage(Invalid):
    code = "federation.secagg_message"
    message = N_("The secure aggregation message is refused: {reason}")


def message(stage: str, job: int, number: int, attempt: int, member: str, body: str) -> bytes:
    """What a node signs for a stage: the round, the member, and the SHA-256 of its body."""
    return canonical_json(
        {
            "purpose": f"concord.secagg-{stage}",
            "job": job,
            "round": number,
            "attempt": attempt,
            "member": member,
            "sha256": body,
        }
    )


def body_digest(payload: Any) -> str:
    return hashlib.sha256(canonical_json(payload)).hexdigest()


@dataclass
class State:
    """Where a round stands: who sent what, which stages have closed, and what follows."""

    row: Round
    settings: SecureAggregation
    weighted: bool
    keys: dict[int, dict[str, Any]] = field(default_factory=dict)  # U1
    shares: dict[int, dict[str, Any]] = field(default_factory=dict)  # U2
    masked: dict[int, Update] = field(default_factory=dict)  # U3
    reveals: dict[int, dict[str, Any]] = field(default_factory=dict)  # U4
    closed: dict[str, bool] = field(default_factory=dict)

    @property
    def graph(self) -> dict[int, list[int]]:
        return secagg.neighbours(self.keys, self.settings.num_shares, self.row.id)

    @property
    def threshold(self) -> int:
        graph = self.graph
        smallest = min((len(v) for v in graph.values()), default=0)
        return secagg.threshold_for(smallest, self.settings.threshold)

    @property
    def total_weight(self) -> int:
        return sum(int(p["weight"]) for p in self.keys.values())

    @property
    def scale(self) -> float:
        return secagg.scale_for(self.settings.clip_range, self.total_weight)

    @property
    def dropped(self) -> list[int]:
        return sorted(set(self.shares) - set(self.masked))

    def sent(self, stage: str) -> dict[int, Any]:
        """The messages of a stage, by member id."""
        return {"keys": self.keys, "shares": self.shares, "reveal": self.reveals}[stage]

    def context(self) -> str:
        return secagg.context_of(self.row.job_id, self.row.number, self.row.attempt)


# The latest end of each stage, as a fraction of the round's time. The first is the longest:
# nodes train before they advertise their keys.
STAGE_ENDS = (0.4, 0.55, 0.75, 0.9)


def stage_deadline(row: Round, index: int) -> datetime:
    """Stage `index` (1–4) ends at STAGE_ENDS[index − 1] of the round's time at the latest."""
    return row.opened_at + (row.deadline - row.opened_at) * STAGE_ENDS[index - 1]


def state(session: Session, row: Round, spec: JobSpec) -> State:
    settings = spec.privacy.secagg
    assert settings is not None
    current = State(row, settings, weighted=spec.privacy.differential_privacy is None)
    for m in session.scalars(select(SecAggMessage).where(SecAggMessage.round_id == row.id)):
        current.sent(m.stage)[m.member_id] = m.payload
    for u in session.scalars(select(Update).where(Update.round_id == row.id)):
        current.masked[u.member_id] = u
    return review(current)


def review(current: State) -> State:
    """Which stages have closed, from the messages in `current` and the clock. A route that
    took a message reviews the state it already holds (the message added to it) rather than
    reading the round again while it holds the job's lock."""
    row = current.row
    now = utcnow()
    expected = set(row.participants)
    before = True
    stages: list[tuple[str, set[int]]] = [
        ("keys", set(current.keys)),
        ("shares", set(current.shares)),
        ("masked", set(current.masked)),
    ]
    for index, (stage, senders) in enumerate(stages, 1):
        done = before and (senders >= expected or now >= stage_deadline(row, index))
        current.closed[stage] = done
        expected, before = senders, done
    current.closed["reveal"] = before and (
        set(current.reveals) >= set(current.masked) or now >= stage_deadline(row, 4)
    )
    return current


def _open(current: State, stage: str, member: Member, allowed: set[int]) -> None:
    index = STAGES.index(stage)
    ready = index == 0 or current.closed[STAGES[index - 1]]
    if (
        current.row.status != "open"
        or not ready
        or current.closed[stage]
        or member.id not in allowed
    ):
        raise StageClosed(stage=stage, round=current.row.number, member=member.slug)


def _repeated(current: State, stage: str, member: Member, payload: Any) -> bool:
    """Whether this is the member's message for the stage again, as taken: a node that lost
    the answer sends it again, and since the answer waits for the stage to close (routes),
    the stage may have closed meanwhile. A repeat changes nothing, so it is answered as the
    first was rather than refused as late."""
    return current.row.status == "open" and current.sent(stage).get(member.id) == payload


def _record(session: Session, current: State, member: Member, stage: str, payload: Any) -> None:
    earlier = current.sent(stage).get(member.id)
    if earlier == payload:
        return  # the node sent it again after a lost answer: taken once
    if earlier is not None:
        raise StageClosed(stage=stage, round=current.row.number, member=member.slug)
    session.add(
        SecAggMessage(
            round_id=current.row.id,
            member_id=member.id,
            stage=stage,
            payload=payload,
            received_at=utcnow(),
        )
    )
    session.flush()
    current.sent(stage)[member.id] = payload


def _verify(
    session: Session, current: State, member: Member, stage: str, payload: Any, signature: str
) -> None:
    row = current.row
    signed = message(stage, row.job_id, row.number, row.attempt, member.slug, body_digest(payload))
    verify(session, member, signed, signature)


def post_keys(
    session: Session, current: State, member: Member, body: dict[str, Any], signature: str
) -> None:
    """Stage 1: the member's public keys and its weight (examples; 1 under DP)."""
    try:
        for name in ("c_pk", "s_pk"):
            if len(secagg.unb64(str(body[name]))) != 32:
                raise ValueError(name)
        weight = int(body["weight"])
    except (KeyError, ValueError, TypeError) as exc:
        raise BadSecAggMessage(reason=N_("two 32-byte public keys and a weight")) from exc
    if not 0 < weight < 10**9 or (not current.weighted and weight != 1):
        raise BadSecAggMessage(reason=N_("the weight is out of range"))
    payload = {"c_pk": body["c_pk"], "s_pk": body["s_pk"], "weight": weight}
    if _repeated(current, "keys", member, payload):
        return
    _open(current, "keys", member, set(current.row.participants))
    _verify(session, current, member, "keys", payload, signature)
    _record(session, current, member, "keys", payload)


def roster(current: State, member: Member) -> dict[str, Any] | None:
    """After stage 1: U1's public keys, this member's neighbours, t, and the scale."""
    if not current.closed["keys"]:
        return None
    if member.id not in current.keys:
        raise StageClosed(stage="keys", round=current.row.number, member=member.slug)
    return {
        "me": member.id,
        "publics": {
            str(i): {"c_pk": p["c_pk"], "s_pk": p["s_pk"]} for i, p in current.keys.items()
        },
        "neighbours": current.graph[member.id],
        "threshold": current.threshold,
        "scale": current.scale,
        "clip_range": current.settings.clip_range,
        "weighted": current.weighted,
    }


def post_shares(
    session: Session, current: State, member: Member, shares: dict[str, str], signature: str
) -> None:
    """Stage 2: ciphertexts for the member's neighbours (one each, all of them in U1)."""
    if _repeated(current, "shares", member, dict(shares)):
        return
    _open(current, "shares", member, set(current.keys))
    neighbours = set(current.graph[member.id])
    try:
        targets = {int(k) for k in shares}
    except ValueError as exc:
        raise BadSecAggMessage(reason=N_("shares are keyed by member id")) from exc
    if targets != neighbours or not all(
        isinstance(v, str) and len(v) < 4096 for v in shares.values()
    ):
        raise BadSecAggMessage(reason=N_("one share for each neighbour, and only for them"))
    _verify(session, current, member, "shares", shares, signature)
    _record(session, current, member, "shares", dict(shares))


def inbox(current: State, member: Member) -> dict[str, Any] | None:
    """After stage 2: the shares addressed to this member by the senders of U2."""
    if not current.closed["shares"]:
        return None
    if member.id not in current.shares:
        raise StageClosed(stage="shares", round=current.row.number, member=member.slug)
    mine = str(member.id)
    return {
        "shares": {
            str(sender): payload[mine]
            for sender, payload in current.shares.items()
            if mine in payload
        }
    }


def check_masked(current: State, member: Member, received: Path, size: int, sha256: str) -> bool:
    """Stage 3's checks before the masked vector is taken as the member's update; False when
    it is the vector already taken from this member, sent again (nothing to take)."""
    earlier = current.masked.get(member.id)
    if current.row.status == "open" and earlier is not None and earlier.sha256 == sha256:
        return False
    _open(current, "masked", member, set(current.shares) - set(current.masked))
    if received.stat().st_size != 4 * size:
        raise BadSecAggMessage(reason=N_("the masked vector has the wrong length"))
    return True


def survivors(current: State, member: Member) -> dict[str, Any] | None:
    """After stage 3: who delivered a masked vector, and who dropped after sharing."""
    if not current.closed["masked"]:
        return None
    if member.id not in current.masked:
        raise StageClosed(stage="masked", round=current.row.number, member=member.slug)
    return {"survivors": sorted(current.masked), "dropped": current.dropped}


def post_reveal(
    session: Session, current: State, member: Member, body: dict[str, Any], signature: str
) -> None:
    """Stage 4: shares of b for survivors, of s for the dropped — never both for one."""
    try:
        b = {str(int(k)): str(int(v)) for k, v in dict(body["b"]).items()}
        s = {str(int(k)): str(int(v)) for k, v in dict(body["s"]).items()}
    except (KeyError, ValueError, TypeError) as exc:
        raise BadSecAggMessage(reason=N_("shares of b and of s, by member id")) from exc
    alive = {str(i) for i in current.masked}
    gone = {str(i) for i in current.dropped}
    if not set(b) <= alive or not set(s) <= gone:
        raise BadSecAggMessage(reason=N_("a share for a client in the wrong group"))
    payload = {"b": b, "s": s}
    if _repeated(current, "reveal", member, payload):
        return
    _open(current, "reveal", member, set(current.masked))
    _verify(session, current, member, "reveal", payload, signature)
    _record(session, current, member, "reveal", payload)


flatten = secagg.flatten
unflatten = secagg.unflatten


def size_of(params: Parameters) -> int:
    return sum(v.size for v in params.values())


def unmasked_sum(root: Path, current: State, size: int) -> secagg.Vector:
    """The survivors' plain quantised sum, or SecAggFailed when it cannot be had."""
    alive = sorted(current.masked)
    t = current.threshold
    if len(alive) < t:
        raise secagg.SecAggFailed(
            round=current.row.number, reason=f"{len(alive)} survivors, threshold t = {t}"
        )
    total = np.zeros(size, dtype=np.uint32)
    for member_id in alive:
        total += np.fromfile(root / current.masked[member_id].path, dtype="<u4")
    revealed = {
        holder: {
            "b": {int(k): v for k, v in r["b"].items()},
            "s": {int(k): v for k, v in r["s"].items()},
        }
        for holder, r in current.reveals.items()
    }
    publics = {i: p for i, p in current.keys.items()}
    try:
        return secagg.unmask(
            total,
            revealed,
            alive,
            current.dropped,
            publics,
            current.graph,
            current.shares,
            t,
            current.context(),
        )
    except ValueError as exc:
        raise secagg.SecAggFailed(round=current.row.number, reason=str(exc)) from exc


def survivors_weight(current: State) -> int:
    return sum(int(current.keys[i]["weight"]) for i in current.masked)
