"""`concord node`: a member's node. It reaches out to the hub (nodes sit behind firewalls; the
hub never connects to them), trains with tasks installed here on data that never leaves, and
sends back signed parameters only.

The node outlives the hub's restarts: while the hub cannot be reached it waits and tries again,
and it sends an update again until it gets an answer — the hub recognises a repeat and counts
it once. An update that comes too late is refused by the hub; the node logs it and goes on.

A site policy (TOML) lists what the site accepts:

    tasks = ["logreg-digits"]        # tasks this site will run
    projects = ["CP-2026-1"]         # adopted projects it takes part in ("*" for any)
    evaluate = ["logreg-digits"]     # tasks it evaluates commons models with ("*": any;
                                     # absent: none — it declines every campaign, signed)
    approve_evaluations = true       # results wait for `concord node approve`

Evaluation campaigns come through the same long poll (`federation.evaluator` does the work).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from concord.client import HubClient
from concord.errors import N_, ConcordError, HubUnreachable, RemoteError
from concord.federation import compression, delta, evaluator, secure_round, thin
from concord.federation.attacks import craft_own
from concord.federation.evaluation import answer_message, result_message
from concord.federation.jobs import (
    WAITING_HEADER,
    decline_message,
    registration_message,
    update_message,
)
from concord.federation.parameters import (
    BadParameters,
    Parameters,
    from_safetensors,
    to_safetensors,
)
from concord.federation.privacy import secagg
from concord.federation.privacy.clipping import difference
from concord.federation.privacy.mechanism import privatise
from concord.federation.privacy.noise import fresh_generator
from concord.federation.tasks.base import installed, load_task
from concord.governance.jobspec import Compression
from concord.members.keys import load_private, sign

log = logging.getLogger("concord.node")
T = TypeVar("T")
RETRY_MAX_S = 5.0  # longest pause between attempts to reach the hub
LOST = {  # the hub's answers that end this node's part in a round
    "federation.round_closed",
    "federation.not_selected",
    "federation.duplicate_update",
}


@dataclass
class SitePolicy:
    tasks: set[str] | None = None
    projects: set[str] | None = None
    evaluate: set[str] = field(default_factory=set)  # none unless the policy lists some
    approve_evaluations: bool = False

    @classmethod
    def read(cls, path: Path | None) -> SitePolicy:
        if path is None:
            return cls()
        data = tomllib.loads(path.read_text())
        tasks = data.get("tasks")
        projects = data.get("projects")
        return cls(
            set(tasks) if tasks is not None else None,
            None if projects is None or "*" in projects else set(projects),
            {str(t) for t in data.get("evaluate", [])},
            bool(data.get("approve_evaluations", False)),
        )

    def evaluates(self, task: str) -> bool:
        return task in self.evaluate or "*" in self.evaluate

    def allows(self, work: dict[str, Any]) -> bool:
        if self.tasks is not None and work["task"] not in self.tasks:
            return False
        return self.projects is None or work.get("reference") in self.projects


@dataclass
class NodeReport:
    trained: list[tuple[int, int]] = field(default_factory=list)
    declined: list[tuple[int, int]] = field(default_factory=list)
    lost: list[tuple[int, int]] = field(default_factory=list)  # refused as late
    evaluated: list[int] = field(default_factory=list)  # campaigns whose results were sent
    evaluations_held: list[int] = field(default_factory=list)  # waiting for approval
    evaluations_declined: list[int] = field(default_factory=list)
    downloaded_bytes: int = 0  # models pulled for campaigns


@dataclass
class Memory:
    """What the node keeps between rounds, per job: the last start model it verified (so
    that the next one can come as a difference from it) and, under update compression, the
    error-feedback residual — what its earlier messages left out. In memory only: a
    restarted node downloads one whole model and starts a fresh residual."""

    models: dict[int, tuple[int, Parameters]] = field(default_factory=dict)
    residuals: dict[int, Parameters] = field(default_factory=dict)


class UnverifiedModel(BadParameters):
    code = "federation.unverified_model"
    message = N_(
        "The model received for round {round} of job {job} does not match the SHA-256 the hub "
        "gave for it; the node does not train on a model it cannot verify."
    )


def fetch_model(client: HubClient, job: int, number: int, memory: Memory) -> Parameters:
    """Round `number`'s start model, verified by SHA-256: as a difference from the model this
    node already holds when it can (federation/delta.py), whole otherwise — and whole again
    if the difference does not rebuild the hub's model exactly."""
    path = f"/api/federation/jobs/{job}/rounds/{number}/parameters"
    held = memory.models.get(job)
    if held is not None and held[0] != number:
        answer = retrying(lambda: client.send("GET", path, params={"base": held[0]}))
        expected = answer.headers.get(thin.SHA_HEADER)
        if answer.headers.get(thin.BASE_HEADER) == str(held[0]):
            try:
                model = delta.apply(held[1], answer.content)
                if expected and hashlib.sha256(to_safetensors(model)).hexdigest() == expected:
                    memory.models[job] = (number, model)
                    return model
            except BadParameters:
                pass
            log.warning("round %s of job %s: difference unusable; whole model", number, job)
        else:
            return _verified(answer.content, expected, job, number, memory)
    answer = retrying(lambda: client.send("GET", path))
    return _verified(answer.content, answer.headers.get(thin.SHA_HEADER), job, number, memory)


def _verified(
    body: bytes, expected: str | None, job: int, number: int, memory: Memory
) -> Parameters:
    if expected is not None and hashlib.sha256(body).hexdigest() != expected:
        raise UnverifiedModel(job=job, round=number)
    model = from_safetensors(body)
    memory.models[job] = (number, model)
    return model


def compress(
    spec: Compression, trained: Parameters, start: Parameters, job: int, memory: Memory
) -> bytes:
    """The update's message under the job's compression, the residual kept for next time."""
    message, memory.residuals[job] = compression.encode(
        spec, compression.difference(trained, start), memory.residuals.get(job)
    )
    return to_safetensors(message)


def measure_energy(country_iso3: str) -> Any:
    """codecarbon's offline tracker for the node's country, or None where it cannot run."""
    try:
        from codecarbon import OfflineEmissionsTracker

        return OfflineEmissionsTracker(
            country_iso_code=country_iso3,
            save_to_file=False,
            log_level="error",
            measure_power_secs=1,
        )
    except Exception:  # the tracker is an estimate; training must not depend on it
        log.warning("energy measurement unavailable")
        return None


def run_node(
    hub: str,
    member: str,
    data: Path,
    token: str,
    key_file: Path,
    *,
    policy: SitePolicy | None = None,
    once: bool = False,
    max_rounds: int | None = None,
    wait: float = 25.0,
    energy: bool = True,
    idle_exit: float | None = None,
    attack: str | None = None,
    state: Path | None = None,
) -> NodeReport:
    """Works rounds and campaigns until stopped (or after one round with `once`). `state`:
    the node's own folder (model cache, results held for approval; default
    `<data>/.concord-node`)."""
    policy = policy or SitePolicy()
    state = state if state is not None else default_state(data)
    answered: set[int] = set()
    private = load_private(key_file)
    report = NodeReport()
    available = sorted(installed())
    declined: set[tuple[int, int]] = set()
    idle = Idle(idle_exit)
    memory = Memory()
    with HubClient(hub, token, timeout=wait + 60) as client:
        country = retrying(lambda: client.get(f"/api/members/{member}"))["country"]["iso3"]
        retrying(lambda: register(client, member, available, private))
        while True:
            work, waiting = retrying(
                lambda: _poll(client, member, available, private, wait), on_failure=idle.reset
            )
            if not work:
                if waiting - {job for job, _round in declined}:
                    # A job this node is part of waits on others (or will choose it later):
                    # the node is needed until that job ends, so this is not idle time.
                    idle.reset()
                elif idle.expired():
                    return report
                continue
            if work.get("kind") == "evaluation":
                campaign = int(work["campaign"])
                if campaign in answered:  # the hub has not seen our answer yet
                    time.sleep(1)
                    continue
                answered.add(campaign)
                site = Site(hub, token, member, data, state, private)
                _answer_campaign(client, work, site, policy, report)
                idle.reset()
                continue
            key = (int(work["job"]), int(work["round"]))
            if key in declined:
                time.sleep(1)
                continue
            if not policy.allows(work):
                declined.add(key)
                report.declined.append(key)
                _decline(client, key, member, private)
                continue
            trained = _train_round(
                client,
                work,
                member,
                data,
                private,
                country,
                energy,
                attack,
                memory,
                evaluates=policy.evaluates(str(work["task"])),
            )
            if trained:
                report.trained.append(key)
            else:
                report.lost.append(key)
            idle.reset()
            if once or (max_rounds is not None and len(report.trained) >= max_rounds):
                return report


def default_state(data: Path) -> Path:
    return data / ".concord-node"


@dataclass
class Site:
    """What evaluating needs to know of this node."""

    hub: str
    token: str
    member: str
    data: Path
    state: Path
    private: Any


def _answer_campaign(
    client: HubClient, work: dict[str, Any], site: Site, policy: SitePolicy, report: NodeReport
) -> None:
    """Evaluates a campaign's models here and answers: results, held results, or a signed
    decline (site policy, or nothing here to evaluate with)."""
    campaign, task = int(work["campaign"]), str(work["task"])
    if not policy.evaluates(task):
        report.evaluations_declined.append(campaign)
        _campaign_answer(client, campaign, site, "declined", "site policy")
        return
    started = time.monotonic()
    try:
        payload, moved = retrying(
            lambda: evaluator.evaluate(
                work,
                hub=site.hub,
                token=site.token,
                member=site.member,
                data=site.data,
                state=site.state,
            )
        )
    except ConcordError as exc:  # no evaluation set here, the task not installed, …
        log.warning("campaign %s: cannot evaluate (%s)", campaign, exc.code)
        report.evaluations_declined.append(campaign)
        _campaign_answer(client, campaign, site, "declined", exc.code)
        return
    report.downloaded_bytes += moved
    if policy.approve_evaluations:
        evaluator.hold(site.state, payload)
        report.evaluations_held.append(campaign)
        _campaign_answer(client, campaign, site, "held", "")
        log.info("campaign evaluated; results held for approval", extra={"campaign": campaign})
        return
    evaluated = time.monotonic()
    if send_results(client, payload, site.member, site.private):
        report.evaluated.append(campaign)
    log.info(
        "campaign evaluated",
        extra={
            "campaign": campaign,
            "downloaded_bytes": moved,
            "evaluate_s": round(evaluated - started, 4),  # pulls included
            "send_s": round(time.monotonic() - evaluated, 4),
        },
    )


def send_results(client: HubClient, payload: dict[str, Any], member: str, private: Any) -> bool:
    """Sends signed results; False if the campaign no longer takes them."""
    return refusal(client, payload, member, private) is None


def refusal(
    client: HubClient, payload: dict[str, Any], member: str, private: Any
) -> RemoteError | None:
    """Sends signed results; the hub's refusal, or None once it took them."""
    campaign = int(payload["campaign"])
    signature = sign(private, result_message(payload))
    try:
        retrying(
            lambda: client.post(
                f"/api/campaigns/{campaign}/results",
                json={"payload": payload, "signature": signature},
            )
        )
    except RemoteError as exc:
        # Refused (the campaign closed meanwhile, or the hub finds the results malformed):
        # logged here, and the node goes on with its other work.
        log.warning("campaign %s: results not taken (%s)", campaign, exc.code)
        return exc
    return None


def _campaign_answer(
    client: HubClient, campaign: int, site: Site, status: str, reason: str
) -> None:
    signature = sign(site.private, answer_message(campaign, site.member, status, reason))
    try:
        retrying(
            lambda: client.post(
                f"/api/campaigns/{campaign}/{'decline' if status == 'declined' else status}",
                json={"signature": signature, "reason": reason},
            )
        )
    except RemoteError as exc:
        log.warning("campaign %s: answer not taken (%s)", campaign, exc.code)


# Refusals after which the same results can never be taken: they leave the waiting folder
# (for `refused/`). Any other refusal (a token or key the hub does not accept, a hub that
# finds the file malformed) keeps them waiting, so that the operator can send them again.
FINAL_REFUSALS = frozenset({"federation.campaign_closed", "federation.campaign_unknown"})


def approve(
    hub: str,
    member: str,
    token: str,
    key_file: Path,
    state: Path,
    campaign: int | None = None,
    show: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[int], dict[int, RemoteError]]:
    """`concord node approve`: shows each held result (`show`), then sends it signed; the
    campaigns whose results the hub took, and the hub's refusal of the others. Results leave
    the waiting folder only when taken, or when their campaign can no longer take them."""
    private = load_private(key_file)
    sent: list[int] = []
    refused: dict[int, RemoteError] = {}
    with HubClient(hub, token) as client:
        for path, payload in evaluator.held(state, campaign):
            if show is not None:
                show(payload)
            number = int(payload["campaign"])
            answer = refusal(client, payload, member, private)
            if answer is None:
                sent.append(number)
                evaluator.released(state, path)
                continue
            refused[number] = answer
            if answer.code in FINAL_REFUSALS:
                evaluator.released(state, path, folder="refused")
    return sent, refused


def _decline(client: HubClient, key: tuple[int, int], member: str, private: Any) -> None:
    """Tells the hub, signed, that this site declines the round; a round that closed
    meanwhile needs no answer."""
    job, number = key
    try:
        client.post(
            f"/api/federation/jobs/{job}/rounds/{number}/decline",
            json={"signature": sign(private, decline_message(job, number, member))},
        )
    except RemoteError as exc:
        if exc.code not in LOST:
            raise
        log.warning("round %s of job %s: decline not taken (%s)", number, job, exc.code)


def register(client: HubClient, member: str, tasks: list[str], private: Any) -> Any:
    """Registers the node, signed with the member's key."""
    signed_at = datetime.now(UTC).isoformat()
    return client.post(
        "/api/federation/nodes",
        json={
            "tasks": tasks,
            "signed_at": signed_at,
            "signature": sign(private, registration_message(member, tasks, signed_at)),
        },
    )


def _poll(
    client: HubClient, member: str, tasks: list[str], private: Any, wait: float
) -> tuple[Any, set[int]]:
    """The work the hub offers (None if none), and the running jobs this node takes part in."""
    try:
        answer = client.send(
            "GET", "/api/federation/work", params={"wait": wait, "campaigns": "true"}
        )
    except RemoteError as exc:
        if exc.code != "federation.node_unregistered":  # e.g. a hub restored from a backup
            raise
        register(client, member, tasks, private)
        return None, set()
    if answer.status_code == 204:
        listed = answer.headers.get(WAITING_HEADER, "")
        return None, {int(j) for j in listed.split(",") if j.strip().isdigit()}
    return answer.json(), set()


class Idle:
    """How long the hub has answered "no work" in a row while no job this node takes part in
    was running. Time while the hub is unreachable does not count: a node riding out a hub
    restart must not give up on its first answer."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.since: float | None = None

    def reset(self) -> None:
        self.since = None

    def expired(self) -> bool:
        """Counts one empty answer; True once they have lasted longer than the limit."""
        now = time.monotonic()
        if self.since is None:
            self.since = now
        return self.limit is not None and now - self.since > self.limit


def retrying(
    call: Callable[[], T],
    until: float | None = None,
    on_failure: Callable[[], None] | None = None,
) -> T:
    """`call()`, again and again while the hub is unreachable or unavailable (restarting),
    pausing longer each time; past `until` (a `time.monotonic()`), the last error is raised."""
    pause = 0.5
    while True:
        try:
            return call()
        except (HubUnreachable, RemoteError) as exc:
            if isinstance(exc, RemoteError) and exc.status not in (502, 503, 504):
                raise
            if on_failure is not None:
                on_failure()
            if until is not None and time.monotonic() > until:
                raise
            log.warning("hub not reachable (%s); trying again in %.1f s", exc, pause)
            time.sleep(pause)
            pause = min(RETRY_MAX_S, pause * 2)


def _train_round(
    client: HubClient,
    work: dict[str, Any],
    member: str,
    data: Path,
    private: Any,
    country: str,
    energy: bool,
    attack: str | None = None,
    memory: Memory | None = None,
    *,
    evaluates: bool = False,
) -> bool:
    """Trains one round and delivers the update; False if the hub refused it as late. In a
    round due for evaluation, a site that `evaluates` the task first evaluates the model it
    received on its test data and sends the result, signed with the update."""
    job, number = int(work["job"]), int(work["round"])
    task = load_task(work["task"])
    memory = memory if memory is not None else Memory()
    started = time.monotonic()
    params = fetch_model(client, job, number, memory)
    fetched = time.monotonic()
    local = task.load_data(data)
    received = (
        _evaluate_received(task, params, local) if evaluates and work.get("evaluate") else None
    )
    tracker = measure_energy(country) if energy else None
    if tracker is not None:
        tracker.start()
    result = task.train(params, local, work["config"])
    client_dp = work["config"].get("client_dp")
    if client_dp:
        # Distributed noise: this node clips its delta and adds its share of the noise, so
        # the hub never holds this member's update without it (privacy.mechanism).
        result.parameters = privatise(
            result.parameters,
            params,
            clip_norm=float(client_dp["clip_norm"]),
            noise_std=float(client_dp["noise_std"]),
            rng=fresh_generator(),
        )
    kwh = kg = 0.0
    if tracker is not None:
        kg = float(tracker.stop() or 0.0)
        final = getattr(tracker, "final_emissions_data", None)
        kwh = float(getattr(final, "energy_consumed", 0.0) or 0.0)
    evaluation = task.evaluate(result.parameters, local)
    if attack:  # for tests only: this node cheats (see `concord.federation.attacks`)
        result.parameters = craft_own(attack, params, result.parameters)
    trained = time.monotonic()
    secure = work["config"].get("secagg")
    if secure:
        local_metrics = {"local_" + k: v for k, v in evaluation.metrics.items()}
        weight = 1 if client_dp else result.num_examples
        sent = _secure_send(
            client,
            (job, number, int(secure["attempt"])),
            member,
            private,
            difference(result.parameters, params),
            (weight, result.num_examples, local_metrics),
            received,
        )
        log.info("round trained (secure aggregation)", extra={"job": job, "round": number})
        return sent
    squeeze = work["config"].get("compression")
    if squeeze:  # the delta, compressed; the hub rebuilds the model (federation/compression)
        body = compress(Compression.model_validate(squeeze), result.parameters, params, job, memory)
    else:
        body = to_safetensors(result.parameters)
    sha = hashlib.sha256(body).hexdigest()
    signature = sign(
        private, update_message(job, number, member, sha, result.num_examples, received)
    )
    headers = {
        **_evaluation_header(received),
        "X-Concord-Examples": str(result.num_examples),
        "X-Concord-Signature": signature,
        "X-Concord-Metrics": json.dumps(
            {
                **{"local_" + k: v for k, v in evaluation.metrics.items()},
                # DP-SGD's noise multiplier as applied here: the hub accounts record-level ε.
                **{k: v for k, v in result.metrics.items() if k == "dp_sgd_noise"},
            }
        ),
        "X-Concord-Energy-kWh": f"{kwh:.9f}",
        "X-Concord-Emissions-kg": f"{kg:.9f}",
        "Content-Type": "application/octet-stream",
    }
    try:
        retrying(
            lambda: client.post(
                f"/api/federation/jobs/{job}/rounds/{number}/updates",
                content=body,
                headers=headers,
            )
        )
    except RemoteError as exc:
        if exc.code not in LOST:
            raise
        log.warning("round %s of job %s: update not taken (%s)", number, job, exc.code)
        return False
    log.info(
        "round trained",
        extra={
            "job": job,
            "round": number,
            "fetch_s": round(fetched - started, 4),
            "train_s": round(trained - fetched, 4),
            "send_s": round(time.monotonic() - trained, 4),
            "sent_bytes": len(body),
        },
    )
    return True


def _evaluate_received(task: Any, params: Parameters, local: Any) -> dict[str, float] | None:
    """This site's metrics of the model it received (the previous round's global model) on its
    test share; None without a test share or when a metric is not finite (the hub takes
    finite numbers only)."""
    if local.x_test is None or local.y_test is None:
        return None
    result = task.evaluate(params, local)
    metrics = {"loss": float(result.loss), **{k: float(v) for k, v in result.metrics.items()}}
    if "accuracy" not in metrics or not all(math.isfinite(v) for v in metrics.values()):
        return None
    return {**metrics, "num_examples": int(result.num_examples)}


def _evaluation_header(evaluation: dict[str, float] | None) -> dict[str, str]:
    return {"X-Concord-Evaluation": json.dumps(evaluation)} if evaluation is not None else {}


# A test option, never set in production: the node kills itself (SIGKILL) at this point of a
# SecAgg+ round, so that tests can place a dropout exactly (e.g. "after-shares").
DIE_AT = "CONCORD_TEST_SECAGG_DIE"


def _secure_send(
    client: HubClient,
    key: tuple[int, int, int],
    member: str,
    private: Any,
    delta: Parameters,
    sizes: tuple[int, int, dict[str, float]],
    evaluation: dict[str, float] | None = None,
) -> bool:
    """SecAgg+ from the node's side (federation/secure_round): keys, shares, the masked
    update, the reveal. False if the hub ended this node's part (a stage closed on it)."""
    job, number, attempt = key
    weight, examples, metrics = sizes
    base = f"/api/federation/jobs/{job}/rounds/{number}/secagg"
    on = {"attempt": attempt}
    context = secagg.context_of(job, number, attempt)
    mine = secagg.ClientSecrets()

    def signed(stage: str, payload: Any) -> str:
        digest = secure_round.body_digest(payload)
        return sign(private, secure_round.message(stage, job, number, attempt, member, digest))

    try:
        keys = {**mine.public(), "weight": weight}
        roster = _post_then_wait(
            client,
            f"{base}/keys",
            f"{base}/roster",
            on,
            json={**keys, "signature": signed("keys", keys)},
        )
        me = int(roster["me"])
        publics = {int(k): v for k, v in roster["publics"].items()}
        graph = {me: [int(j) for j in roster["neighbours"]]}
        ciphertexts = secagg.share_keys(me, mine, publics, graph, int(roster["threshold"]), context)
        shares = {str(j): c for j, c in ciphertexts.items()}
        sent = {"shares": shares, "signature": signed("shares", shares)}
        if os.environ.get(DIE_AT) == "after-shares":  # for tests: die once the shares are taken
            retrying(lambda: client.post(f"{base}/shares", params=on, json=sent))
            os.kill(os.getpid(), signal.SIGKILL)
        inbox = _post_then_wait(client, f"{base}/shares", f"{base}/inbox", on, json=sent)
        held = secagg.receive_shares(
            me, mine, publics, {int(k): v for k, v in inbox["shares"].items()}, context
        )
        quantised = secagg.quantise(
            secure_round.flatten(delta),
            float(roster["clip_range"]),
            float(roster["scale"]),
            weight,
            fresh_generator(),
        )
        body = secagg.mask(me, mine, quantised, publics, sorted(held), context).astype("<u4")
        payload = body.tobytes()
        sha = hashlib.sha256(payload).hexdigest()
        headers = {
            "X-Concord-Examples": str(examples),
            "X-Concord-Signature": sign(
                private, update_message(job, number, member, sha, examples, evaluation)
            ),
            "X-Concord-Metrics": json.dumps(metrics),
            # Beside the masked vector, in the clear: this member reveals its own accuracy.
            **_evaluation_header(evaluation),
            "Content-Type": "application/octet-stream",
        }
        groups = _post_then_wait(
            client, f"{base}/masked", f"{base}/survivors", on, content=payload, headers=headers
        )
        opened = secagg.reveal(held, groups["survivors"], groups["dropped"])
        reveal = {part: {str(i): v for i, v in opened[part].items()} for part in ("b", "s")}
        retrying(
            lambda: client.post(
                f"{base}/reveal", params=on, json={**reveal, "signature": signed("reveal", reveal)}
            )
        )
    except RemoteError as exc:
        if exc.code not in LOST and not exc.code.startswith("federation.secagg"):
            raise
        log.warning("round %s of job %s: secure aggregation ended (%s)", number, job, exc.code)
        return False
    return True


# How long a stage's message waits at the hub for the next stage's data (the hub's MAX_WAIT_S
# is 30); past it the node long-polls the stage's reader.
STAGE_WAIT_S = 25.0


def _post_then_wait(
    client: HubClient, path: str, reader: str, on: dict[str, int], **body: Any
) -> Any:
    """Posts a stage's message and returns the next stage's data: from the message's answer
    (the hub holds it until the stage closes: one request a stage, no extra round trip), or,
    when the hub answered without it (its wait ran out), by long-polling `reader`."""
    answer = retrying(lambda: client.post(path, params={**on, "wait": STAGE_WAIT_S}, **body))
    if isinstance(answer, dict) and answer.get("next") is not None:
        return answer["next"]
    return _wait_for(client, reader, on)


def _wait_for(client: HubClient, path: str, on: dict[str, int], wait: float = 25.0) -> Any:
    """Long-polls a SecAgg+ stage's data until the stage before it has closed."""
    while True:
        answer = retrying(lambda: client.send("GET", path, params={**on, "wait": wait}))
        if answer.status_code != 204:
            return answer.json()
