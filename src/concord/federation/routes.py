"""HTTP API of the federation: nodes register (signed), long-poll for work, fetch parameters,
and push signed updates. The hub never connects to a node.

The routes that wait or move model-sized bodies are `async`: a waiting node costs the hub
neither a worker thread nor a database transaction, and an update's body streams to a file
while it arrives (never whole in memory); database work runs in the thread pool in short steps.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from concord import inflight
from concord import metrics as prometheus
from concord.config import Settings
from concord.db import read_session
from concord.errors import TooLarge
from concord.federation import campaign_routes, evaluation, jobs, robustness, secure_round, thin
from concord.federation.parameters import BadParameters, file_sha256
from concord.federation.tables import Job, Round
from concord.federation.wakeup import RECHECK_S, bell, lifespan
from concord.governance.jobspec import JobSpec
from concord.http import Db, allow_large_bodies, step
from concord.members.auth import CurrentPerson
from concord.members.people import acting_member
from concord.members.tables import Member, Person
from concord.members.tokens import BadToken
from concord.validation import (
    MAX_ID,
    MAX_JSON_HEADER_BYTES,
    Counter,
    FiniteHeader,
    Id,
    Number,
    Seconds,
    number_map,
)

router = APIRouter(prefix="/api/federation", tags=["federation"], lifespan=lifespan)
allow_large_bodies("/api/federation/jobs/")

MAX_WAIT_S = 30.0


class NodeRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(description="Tasks installed at the node")
    signed_at: str = Field(
        default="", description="When the node signed this registration (ISO 8601, with zone)"
    )
    signature: str = Field(
        default="",
        description="Ed25519 signature (base64) by the member's key of the registration message",
    )


@router.post("/nodes")
def register(body: NodeRegistration, db: Db, person: CurrentPerson) -> dict[str, Any]:
    """Registers (or refreshes) your member's node and the tasks installed there. The node
    signs `{purpose, member, tasks, signed_at}` with the member's key, proving it holds it."""
    member = acting_member(db, person)
    node = jobs.register_node(
        db, member, body.tasks, signed_at=body.signed_at, signature=body.signature
    )
    db.commit()
    return {"member": member.slug, "tasks": node.tasks, "key": node.key_fingerprint}


@router.get("/work")
async def work(
    request: Request,
    db: Db,
    person: CurrentPerson,
    wait: Seconds = 0.0,
    campaigns: Annotated[
        bool, Query(description="The node evaluates campaigns too (nodes before them do not)")
    ] = False,
) -> Response:
    """The round your node should train now — or, with `campaigns=true`, an evaluation campaign
    it should answer (`"kind": "evaluation"`); waits up to `wait` seconds (at most 30) for one
    to open (long polling), then answers 204 No Content. The header `Concord-Jobs-Waiting`
    of that answer lists the running jobs your member takes part in (comma-separated ids):
    with none listed, the node has nothing to wait for."""
    settings = request.app.state.settings
    deadline = time.monotonic() + max(0.0, min(wait, MAX_WAIT_S))
    member: Member | None = None
    while True:
        rung = bell.rings
        member, found = await step(db, _find_work, settings, person, member, campaigns)
        remaining = deadline - time.monotonic()
        if found is not None or remaining <= 0:
            break
        if await request.is_disconnected():  # the node went away: stop asking on its behalf
            return Response(status_code=204)
        await bell.wait(rung, min(remaining, RECHECK_S))
    if found is None:
        assert member is not None
        waiting = await step(db, jobs.taking_part, member)
        return Response(
            status_code=204, headers={jobs.WAITING_HEADER: ",".join(str(j) for j in waiting)}
        )
    return Response(json.dumps(found), media_type="application/json")


def _find_work(
    db: Db, settings: Settings, person: Person, member: Member | None, campaigns: bool = False
) -> tuple[Member, dict[str, Any] | None]:
    """One look for work, in one short transaction (the first also notes the node seen)."""
    if member is None:
        member = acting_member(db, person)
        jobs.seen(db, member)
    # Training first: a round has a deadline; a campaign waits for the node's next look.
    found = jobs.work_for(db, settings, member)
    if found is None and campaigns:
        found = evaluation.work_for(db, member)
    db.commit()  # advancing a job is work done for everyone; never hold the lock
    return member, found


class ModelFile(FileResponse):
    """A file sent in 1 MiB reads: Starlette's 64 KiB make ten nodes' downloads of a CNN
    (6.7 MB each) a thousand thread hops and writes."""

    chunk_size = 1024 * 1024


@router.get("/jobs/{job_id}/rounds/{number}/parameters")
def parameters(
    job_id: Id,
    number: Number,
    db: Db,
    request: Request,
    base: Annotated[
        int | None,
        Query(ge=0, le=MAX_ID, description="A round whose start model you hold: send a delta"),
    ] = None,
) -> Response:
    """The global parameters a round starts from (safetensors). The header
    `X-Concord-Sha256` gives their SHA-256, to check before training.

    With `base=m`, from a node that holds round m's start model: the difference from it
    (federation/delta.py; header `X-Concord-Delta-Base: m`), lossless, the model rebuilt
    from it has the same SHA-256. Without that header the answer is the whole model (the hub
    no longer has round m's model, or the models differ in layout)."""
    settings = request.app.state.settings
    job = jobs.get_job(db, job_id)
    target = thin.start_of(db, job.id, number)
    if target is None:
        raise jobs.RoundClosed(round=number, job=job_id)
    held = thin.start_of(db, job.id, base) if base is not None and base != number else None
    db.commit()  # nothing below reads the database: never hold a transaction while sending
    root = jobs.folder(settings)
    sha = thin.model_sha256(root, target)
    if held is not None:
        body = thin.delta_body(root, held, target)
        if body is not None:
            prometheus.moved("out", len(body))
            return Response(
                body,
                media_type="application/octet-stream",
                headers={
                    "Content-Encoding": "identity",
                    thin.SHA_HEADER: sha,
                    thin.BASE_HEADER: str(base),
                },
            )
    # Streamed from the file; floats barely compress, so gzip would only spend the hub's CPU.
    return ModelFile(
        root / target,
        media_type="application/octet-stream",
        headers={"Content-Encoding": "identity", thin.SHA_HEADER: sha},
    )


@router.post("/jobs/{job_id}/rounds/{number}/updates", status_code=201)
async def update(
    job_id: Id,
    number: Number,
    request: Request,
    response: Response,
    db: Db,
    person: CurrentPerson,
    x_concord_examples: Annotated[int, Header(le=MAX_ID)],
    x_concord_signature: Annotated[str, Header(pattern=SIGNATURE_PATTERN)],
    x_concord_metrics: Annotated[str, Header(max_length=MAX_JSON_HEADER_BYTES)] = "{}",
    x_concord_evaluation: Annotated[str, Header(max_length=MAX_JSON_HEADER_BYTES)] = "",
    x_concord_energy_kwh: FiniteHeader = 0.0,
    x_concord_emissions_kg: FiniteHeader = 0.0,
) -> dict[str, Any]:
    """A node's signed update (safetensors body) for the open round. Sending the same update
    again (after a lost answer) gets the same receipt with `repeated: true`, status 200.

    Who may send it (a delegate of a member selected for this round of an existing job) is
    checked before a byte of the body is read; the body may be no larger than the job's model
    and counts against the member's `member_upload_bytes` while it streams in."""
    settings = request.app.state.settings
    metrics = number_map("X-Concord-Metrics", x_concord_metrics)
    evaluation = _evaluation(x_concord_evaluation)
    member_id, largest = await run_in_threadpool(_admit, db, settings, person, job_id, number)
    spool = jobs.folder(settings) / f"job-{job_id}" / "incoming"
    spool.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=spool, prefix=".up-")
    received = Path(name)
    try:
        with (
            os.fdopen(descriptor, "wb") as handle,
            inflight.allowance(member_id, settings.member_upload_bytes) as quota,
        ):
            async for chunk in request.stream():
                if quota.taken + len(chunk) > largest:
                    raise TooLarge(limit=largest)
                quota.take(len(chunk))
                handle.write(chunk)
        receipt = await run_in_threadpool(
            _accept,
            db,
            settings,
            person,
            job_id,
            number,
            received,
            examples=x_concord_examples,
            metrics=metrics,
            signature=x_concord_signature,
            energy_kwh=x_concord_energy_kwh,
            emissions_kg=x_concord_emissions_kg,
            evaluation=evaluation,
        )
    finally:
        received.unlink(missing_ok=True)  # gone already when accepted
    if receipt["repeated"]:
        response.status_code = 200
    return receipt


def _evaluation(text: str) -> dict[str, float] | None:
    """The node's signed evaluation of the model it received (header X-Concord-Evaluation);
    None when it sent none (its site does not evaluate, or the round is not due)."""
    return number_map("X-Concord-Evaluation", text) if text else None


# An Ed25519 signature (64 bytes) in standard base64.
SIGNATURE_PATTERN = r"^[A-Za-z0-9+/]{86}==$"


def _admit(db: Db, settings: Settings, person: Person, job_id: int, number: int) -> tuple[int, int]:
    """Everything about an update that needs no body, in one short transaction: the person
    acts for a member, the job exists, the member may send to this round. Returns the member's
    id and the most bytes the update may have."""
    member = acting_member(db, person)
    job = jobs.get_job(db, job_id)
    jobs.expect_update(db, job, number, member)
    largest = jobs.largest_update(settings, job)
    member_id = member.id
    db.commit()  # never hold the lock while the body streams in
    return member_id, largest


def _accept(
    db: Db,
    settings: Settings,
    person: Person,
    job_id: int,
    number: int,
    received: Path,
    **kw: Any,
) -> dict[str, Any]:
    size = received.stat().st_size  # before submit moves the file into place
    start = thin.compressed_start(db, job_id, number)
    signed = file_sha256(received) if start is not None else None  # what the node signed
    try:
        if start is not None:  # the whole model it stands for, before any check
            thin.expand(jobs.folder(settings), *start, received)
        checked, problem = jobs.check_received(settings, job_id, received), None
    except BadParameters as exc:
        checked, problem = None, exc
    sha256 = signed or checked or file_sha256(received)  # malformed or not
    member = acting_member(db, person)
    job = jobs.get_job(db, job_id)
    if problem is not None:  # logged only if signed by a member chosen for the round
        jobs.refuse(
            db,
            job,
            number,
            member,
            problem,
            sha256=sha256,
            examples=kw["examples"],
            signature=kw["signature"],
        )
    receipt = jobs.submit(db, settings, job, number, member, received, sha256=sha256, **kw)
    answer = {
        "update": receipt.update.id,
        "sha256": receipt.update.sha256,
        "repeated": receipt.repeated,
    }
    db.commit()
    if not receipt.repeated:
        prometheus.count("update")
        prometheus.moved("in", size)
    moved = jobs.advance(db, settings, job)
    db.commit()
    if moved:  # after the commit, so that the woken requests see the new round
        bell.ring()
    return answer


class RoundDecline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signature: str = Field(
        default="",
        description="Ed25519 signature (base64) by the member's key of the decline message",
    )


@router.post("/jobs/{job_id}/rounds/{number}/decline")
def decline(
    job_id: Id, number: Number, db: Db, person: CurrentPerson, body: RoundDecline | None = None
) -> dict[str, Any]:
    """Your node declines the open round it was chosen for, because its site policy does not
    allow the work. The node signs `{purpose, job, round, member}` with the member's key; the
    decline is logged."""
    member = acting_member(db, person)
    job = jobs.get_job(db, job_id)
    entry = jobs.decline(db, job, number, member, signature=body.signature if body else "")
    db.commit()
    return {"declined": True, "log_index": entry.index}


@router.get("/jobs")
def list_jobs(db: Db) -> list[dict[str, Any]]:
    """Federated jobs with their progress."""
    return [_job(db, j) for j in db.scalars(select(Job).order_by(Job.id.desc())).all()]


@router.get("/jobs/{job_id}")
def get_job(job_id: Id, db: Db) -> dict[str, Any]:
    """One job with every round."""
    return _job(db, jobs.get_job(db, job_id), rounds=True)


def _job(db: Db, job: Job, rounds: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": job.id,
        "title": job.title,
        "reference": job.reference,
        "status": job.status,
        "rounds_done": job.rounds_done,
        "rounds": job.spec.get("rounds"),
        "task": job.spec.get("task"),
        "digest": job.digest,
        "decision": job.decision_id,
    }
    if rounds:
        data["rounds_detail"] = [
            {
                "number": r.number,
                "attempt": r.attempt,
                "status": r.status,
                "participants": r.participants,
                "examples": r.examples,
                "metrics": r.metrics,
                "digest": r.digest,
                "log_index": r.log_index,
                "robustness": r.robustness or [],
            }
            for r in db.scalars(
                select(Round).where(Round.job_id == job.id).order_by(Round.id)
            ).all()
        ]
        data["flagged"] = sorted(
            robustness.flagged(db.scalars(select(Round).where(Round.job_id == job.id)).all())
        )
    return data


# --- SecAgg+ stages (federation/secure_round.py) -------------------------------------------


class SecAggKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    c_pk: str = Field(description="X25519 public key for the shares' encryption (base64)")
    s_pk: str = Field(description="X25519 public key for the pairwise masks (base64)")
    weight: int = Field(description="The node's weight: its examples (1 under DP)")
    signature: str = Field(description="Ed25519 signature by the member's key")


class SecAggShares(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shares: dict[str, str] = Field(description="Ciphertext for each neighbour, by member id")
    signature: str


class SecAggReveal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    b: dict[str, str] = Field(description="Shares of survivors' self-mask seeds, by member id")
    s: dict[str, str] = Field(description="Shares of dropped nodes' mask keys, by member id")
    signature: str


def _secure_step(
    db: Db,
    settings: Settings,
    person: Person,
    key: tuple[int, int, int],
    act: Any,
    write: bool = True,
) -> Any:
    """Runs `act(state, member)` on the round's SecAgg+ state (under the job's lock when it
    writes) and commits. `key`: job, round and the attempt the node is working on (a node
    still on an attempt that failed meanwhile is told its part is over).

    A write rings the bell only when a stage has closed with it: a message that closes
    nothing changes no answer the other nodes wait for, and ten nodes re-reading the round
    after each of ten messages was most of a round's time at the hub. The round itself is
    advanced only once its last stage has closed (before that `advance` has nothing to do)."""
    job_id, number, attempt = key
    member = acting_member(db, person)
    job = jobs.get_job(db, job_id)
    if write:
        jobs.lock(db, job)
    row = jobs.current_round(db, job)
    spec = JobSpec.model_validate(job.spec)
    if row is None or row.number != number or spec.privacy.secagg is None:
        raise jobs.RoundClosed(round=number, job=job_id)
    if attempt and row.attempt != attempt:
        raise secure_round.StageClosed(stage="keys", round=number, member=member.slug)
    current = secure_round.state(db, row, spec)
    closed = dict(current.closed)
    result = act(current, member)  # a message taken is added to `current`
    secure_round.review(current)
    db.commit()
    moved = current.closed != closed
    if write and current.closed["reveal"]:
        moved |= jobs.advance(db, settings, job)
        db.commit()  # never leave a transaction open: the route may wait next (SQLite's lock)
    if moved:
        bell.ring()  # wake the nodes waiting for the next stage (or the next round)
    return result


def _secure_look(request: Request, person_id: int, key: tuple[int, int, int], look: Any) -> Any:
    """A waiting node's look at the round, in a read-only transaction: on SQLite it neither
    waits for nor holds the write lock that every message takes (ten nodes looking at once
    used to queue behind each other and behind the messages)."""
    with read_session(request.app.state.sessions) as db:
        # The person as this session sees it. The request's own object may have been expired
        # (a write's lock expires everything): reloading it would open a transaction in the
        # request's session that nothing ends while the route waits — on SQLite, holding
        # the write lock against every other request.
        own = db.get(Person, person_id)
        if own is None:
            raise BadToken()
        return _secure_step(db, request.app.state.settings, own, key, look, write=False)


async def _secure_next(
    request: Request, person_id: int, key: tuple[int, int, int], wait: float, look: Any
) -> Any:
    """The next stage's data for this node once the stage before has closed, or None after
    `wait` seconds (at most MAX_WAIT_S) or when the node has gone away."""
    deadline = time.monotonic() + max(0.0, min(wait, MAX_WAIT_S))
    while True:
        rung = bell.rings
        found = await run_in_threadpool(_secure_look, request, person_id, key, look)
        remaining = deadline - time.monotonic()
        if found is not None:
            return found
        if remaining <= 0 or await request.is_disconnected():
            return None
        await bell.wait(rung, min(remaining, RECHECK_S))


async def _secure_wait(
    request: Request, person: Person, key: tuple[int, int, int], wait: float, look: Any
) -> Response:
    """Long poll for the next stage's data: 204 until the stage before has closed."""
    found = await _secure_next(request, person.id, key, wait, look)
    if found is None:
        return Response(status_code=204)
    return Response(json.dumps(found), media_type="application/json")


async def _posted(
    request: Request,
    db: Db,
    person: Person,
    key: tuple[int, int, int],
    act: Any,
    following: tuple[Any, float] | None = None,
) -> dict[str, Any]:
    """Takes a stage's message. With `following` (what the node reads next, and how long it
    will wait for it), the answer also carries the next stage's data under "next" once it is
    there: the node's long poll rides on its own message, one request a stage instead of
    two. Without "next" (the wait ran out), the node long-polls the stage's reader."""
    person_id = person.id  # read before the step expires the request's objects
    await run_in_threadpool(_secure_step, db, request.app.state.settings, person, key, act)
    return await _answer(request, person_id, key, following)


async def _answer(
    request: Request, person_id: int, key: tuple[int, int, int], following: Any
) -> dict[str, Any]:
    """A taken message's answer, with the next stage's data as `_posted` says."""
    answer: dict[str, Any] = {"accepted": True}
    if following is not None and following[1] > 0:
        look, wait = following
        found = await _secure_next(request, person_id, key, wait, look)
        if found is not None:
            answer["next"] = found
    return answer


def _stage_reader(stage: str, look: Any, description: str) -> None:
    """Registers `GET …/secagg/{stage}`: the long poll a node makes for the next stage's
    data. The three readers differ only in what `look` reads from the round's state."""

    async def read(
        job_id: Id,
        number: Number,
        request: Request,
        person: CurrentPerson,
        wait: Seconds = 0.0,
        attempt: Counter = 0,
    ) -> Response:
        return await _secure_wait(request, person, (job_id, number, attempt), wait, look)

    path = f"/jobs/{{job_id}}/rounds/{{number}}/secagg/{stage}"
    router.add_api_route(
        path, read, methods=["GET"], name=f"secagg_{stage}", description=description
    )


_stage_reader(
    "roster",
    secure_round.roster,
    "After stage 1: the public keys of the nodes in the round, your neighbours, t and the "
    "quantisation scale; 204 while stage 1 is open.",
)
_stage_reader(
    "inbox",
    secure_round.inbox,
    "After stage 2: the shares your neighbours sent you; 204 while stage 2 is open.",
)
_stage_reader(
    "survivors",
    secure_round.survivors,
    "After stage 3: who sent a masked vector and who dropped out after sharing keys.",
)

NEXT_WAIT = (
    "Seconds (at most 30) to wait for the next stage's data, returned under `next` "
    "(0: answer at once; the node then long-polls the stage's reader)"
)


@router.post("/jobs/{job_id}/rounds/{number}/secagg/keys", status_code=201)
async def secagg_keys(
    job_id: Id,
    number: Number,
    body: SecAggKeys,
    request: Request,
    db: Db,
    person: CurrentPerson,
    attempt: Counter = 0,
    wait: Annotated[Seconds, Query(description=NEXT_WAIT)] = 0.0,
) -> dict[str, Any]:
    """SecAgg+ stage 1: your node's two X25519 public keys and its weight, signed; with
    `wait`, the answer brings the roster (as `GET …/secagg/roster`) under `next`."""
    payload = {"c_pk": body.c_pk, "s_pk": body.s_pk, "weight": body.weight}
    return await _posted(
        request,
        db,
        person,
        (job_id, number, attempt),
        lambda state, member: secure_round.post_keys(db, state, member, payload, body.signature),
        (secure_round.roster, wait),
    )


@router.post("/jobs/{job_id}/rounds/{number}/secagg/shares", status_code=201)
async def secagg_shares(
    job_id: Id,
    number: Number,
    body: SecAggShares,
    request: Request,
    db: Db,
    person: CurrentPerson,
    attempt: Counter = 0,
    wait: Annotated[Seconds, Query(description=NEXT_WAIT)] = 0.0,
) -> dict[str, Any]:
    """SecAgg+ stage 2: encrypted shares for your neighbours (the hub cannot read them);
    with `wait`, the answer brings your inbox (as `GET …/secagg/inbox`) under `next`."""
    return await _posted(
        request,
        db,
        person,
        (job_id, number, attempt),
        lambda state, member: secure_round.post_shares(
            db, state, member, body.shares, body.signature
        ),
        (secure_round.inbox, wait),
    )


@router.post("/jobs/{job_id}/rounds/{number}/secagg/masked", status_code=201)
async def secagg_masked(
    job_id: Id,
    number: Number,
    request: Request,
    db: Db,
    person: CurrentPerson,
    x_concord_examples: Annotated[int, Header()],
    x_concord_signature: Annotated[str, Header()],
    x_concord_metrics: Annotated[str, Header()] = "{}",
    x_concord_evaluation: Annotated[str, Header(max_length=MAX_JSON_HEADER_BYTES)] = "",
    attempt: Counter = 0,
    wait: Annotated[Seconds, Query(description=NEXT_WAIT)] = 0.0,
) -> dict[str, Any]:
    """SecAgg+ stage 3: your masked vector (little-endian uint32, the model's tensors in name
    order), signed like an update; with `wait`, the answer brings the survivors (as
    `GET …/secagg/survivors`) under `next`."""
    settings = request.app.state.settings
    person_id = person.id  # read before the step expires the request's objects
    try:
        metrics = {k: float(v) for k, v in json.loads(x_concord_metrics).items()}
    except (ValueError, AttributeError) as exc:
        raise jobs.BadUpdate(reason="metrics must be a JSON object of numbers") from exc
    evaluation = _evaluation(x_concord_evaluation)
    spool = jobs.folder(settings) / f"job-{job_id}" / "incoming"
    spool.mkdir(parents=True, exist_ok=True)
    # A masked vector holds 4 bytes a parameter: never more than the model's own file.
    # (In a step of its own: a transaction left open while the body streams in would hold
    # SQLite's write lock against every other node's message.)
    largest = await step(db, lambda d: jobs.largest_update(settings, jobs.get_job(d, job_id)))
    descriptor, name = tempfile.mkstemp(dir=spool, prefix=".masked-")
    received = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            taken = 0
            async for chunk in request.stream():
                taken += len(chunk)
                if taken > largest:
                    raise TooLarge(limit=largest)
                handle.write(chunk)
        sha256 = await run_in_threadpool(file_sha256, received)

        def act(state: secure_round.State, member: Member) -> None:
            start = jobs.read_parameters(settings, state.row.parameters)
            size = secure_round.size_of(start)
            if not secure_round.check_masked(state, member, received, size, sha256):
                return  # the vector taken before, sent again after a lost answer
            state.masked[member.id] = jobs.submit_masked(
                db,
                settings,
                state.row,
                member,
                received,
                sha256=sha256,
                examples=x_concord_examples,
                metrics=metrics,
                signature=x_concord_signature,
                evaluation=evaluation,
            )

        await run_in_threadpool(_secure_step, db, settings, person, (job_id, number, attempt), act)
    finally:
        received.unlink(missing_ok=True)
    key = (job_id, number, attempt)
    return await _answer(request, person_id, key, (secure_round.survivors, wait))


@router.post("/jobs/{job_id}/rounds/{number}/secagg/reveal", status_code=201)
async def secagg_reveal(
    job_id: Id,
    number: Number,
    body: SecAggReveal,
    request: Request,
    db: Db,
    person: CurrentPerson,
    attempt: Counter = 0,
) -> dict[str, Any]:
    """SecAgg+ stage 4: the shares that unmask the sum (of b for survivors, of s for the
    dropped; never both for one node)."""
    payload = {"b": body.b, "s": body.s}
    return await _posted(
        request,
        db,
        person,
        (job_id, number, attempt),
        lambda state, member: secure_round.post_reveal(db, state, member, payload, body.signature),
    )


# Campaigns live under /api/campaigns (campaign_routes); this domain's router serves both.
federation_api = router
router = APIRouter()
router.include_router(federation_api)
router.include_router(campaign_routes.router)
