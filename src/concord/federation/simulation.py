"""`concord simulate`: many clients on one machine, for choosing settings before members commit.

The cohort of a round trains as ONE batched computation. Logistic regression: the clients'
parameters are stacked (C, d, k), their data padded to (C, n_max, d) with a mask, and every SGD
step is two einsums for all clients at once. PyTorch models (`NetworkTask`): the same stacking
with torch.func's vmap over a functional call (`concord.federation.cohort`). Models that cannot
be batched fall back to a loop over clients; tests check that both give the same parameters.
The strategies are the ones the hub runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from concord.errors import N_, Invalid
from concord.federation import compression, delta
from concord.federation.attacks import Attack, flip_labels
from concord.federation.cohort import NotVectorisable, train_cohort
from concord.federation.parameters import Parameters, to_safetensors
from concord.federation.privacy import mechanism, secagg
from concord.federation.privacy.clipping import difference
from concord.federation.privacy.noise import share_std
from concord.federation.strategies.base import ClientUpdate, Strategy
from concord.federation.tasks.base import EvalResult, TaskData, TrainResult
from concord.federation.tasks.logreg import LogisticRegression, one_hot, softmax
from concord.federation.tasks.network import NetworkTask
from concord.governance.jobspec import (
    SUM_STRATEGIES,
    Compression,
    SecureAggregation,
    SecureAggregationNeedsMean,
)

F = NDArray[np.float64]


class NotSimulable(Invalid):
    code = "federation.not_simulable"
    message = N_("The task “{task}” brings no data set to simulate with; these do: {tasks}.")


class UnknownBackend(Invalid):
    code = "federation.unknown_backend"
    message = N_("No simulation backend “{backend}”; choose local or ray.")


class SimulatedTask(Protocol):
    name: str

    def init_parameters(self, seed: int) -> Parameters: ...

    def train(self, params: Parameters, data: TaskData, config: dict[str, Any]) -> TrainResult: ...

    def evaluate(self, params: Parameters, data: TaskData) -> EvalResult: ...


@dataclass
class SimulationResult:
    parameters: Parameters
    history: list[dict[str, float]] = field(default_factory=list)
    vectorised: bool = True  # False when the model had to fall back to the loop
    privacy: list[mechanism.RoundPrivacy] = field(default_factory=list)  # one per DP round
    stopped: str = ""  # why the run ended before its rounds (the privacy budget)


@dataclass(frozen=True)
class Clients:
    """Every simulated client's data: all examples, and each client's indices into them."""

    x: NDArray[Any]
    y: NDArray[Any]
    partitions: list[NDArray[np.int64]]

    def data(self, c: int) -> tuple[NDArray[Any], NDArray[Any]]:
        return self.x[self.partitions[c]], self.y[self.partitions[c]]

    def stacks(self, chosen: list[int]) -> tuple[list[NDArray[Any]], list[NDArray[Any]]]:
        """The chosen clients' inputs and labels, as two lists (for a batched step)."""
        pairs = [self.data(c) for c in chosen]
        return [x for x, _y in pairs], [y for _x, y in pairs]

    def size(self, c: int) -> int:
        return len(self.partitions[c])


@dataclass(frozen=True)
class Work:
    """A round's local training: which clients, with what settings, and each client's seed."""

    chosen: list[int]
    config: dict[str, Any]
    seeds: list[int]

    def shares(self, size: int) -> Iterator[Work]:
        """The work cut into consecutive shares of at most `size` clients."""
        for start in range(0, len(self.chosen), size):
            end = start + size
            yield Work(self.chosen[start:end], self.config, self.seeds[start:end])


# Tasks found not to run under vmap: asked once per process, not once per round.
_LOOPED: set[str] = set()


def client_seed(seed: int, round_number: int, client: int) -> int:
    return int(np.random.SeedSequence([seed, round_number, client]).generate_state(1)[0])


def batched_logreg(
    w0: F,
    b0: F,
    xs: list[F],
    ys: list[NDArray[Any]],
    classes: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    mu: float,
    seeds: list[int],
) -> tuple[F, F]:
    """Local SGD of C clients at once. Returns W (C, d, k) and b (C, k)."""
    c = len(xs)
    d = w0.shape[0]
    n = np.array([len(x) for x in xs])  # (C,)
    n_max = int(n.max())
    # float32 on the batched path: half the memory traffic of the plain loop's float64, and
    # results within 1e-5 of it (tested), as the parameters travel as float32 anyway.
    y = np.zeros((c, n_max, classes), dtype=np.float32)  # (C, N, k)
    if (n == n_max).all():
        x = np.stack(xs).astype(np.float32, copy=False)  # (C, N, d)
        y[:] = np.eye(classes, dtype=np.float32)[np.stack(ys).astype(int)]
    else:
        x = np.zeros((c, n_max, d), dtype=np.float32)
        for i in range(c):
            x[i, : n[i]] = xs[i]
            y[i, : n[i]] = one_hot(ys[i], classes)
    w0 = w0.astype(np.float32)
    b0 = b0.astype(np.float32)
    w = np.broadcast_to(w0, (c, *w0.shape)).copy()  # (C, d, k)
    b = np.broadcast_to(b0, (c, *b0.shape)).copy()  # (C, k)
    shared = True  # every client still holds w0: the logits are one large matrix product
    rngs = [np.random.default_rng(s) for s in seeds]
    full = batch_size <= 0 or batch_size >= n_max
    for _ in range(epochs):
        if full:
            batches = [np.broadcast_to(np.arange(n_max), (c, n_max))]
            valid = [np.arange(n_max)[None, :] < n[:, None]]  # (C, N)
        else:
            # Each client's own shuffle (as the plain loop draws it), cut into batches.
            orders = np.zeros((c, n_max), dtype=np.int64)
            for i in range(c):
                orders[i, : n[i]] = rngs[i].permutation(n[i])
            steps = int(np.ceil(n_max / batch_size))
            batches, valid = [], []
            for j in range(steps):
                cols = np.arange(j * batch_size, min((j + 1) * batch_size, n_max))
                batches.append(orders[:, cols])  # (C, B)
                valid.append(cols[None, :] < n[:, None])  # (C, B)
        for idx, ok in zip(batches, valid, strict=True):
            if full:
                xb, yb = x, y  # the whole padded data: no gathered copy
            else:
                rows = np.arange(c)[:, None]
                xb, yb = x[rows, idx], y[rows, idx]  # (C, B, d), (C, B, k)
            m = ok[..., None].astype(np.float32)  # (C, B, 1)
            count = np.maximum(ok.sum(axis=1), 1)[:, None, None]  # (C, 1, 1)
            active = np.asarray(ok.any(axis=1), dtype=np.float32)  # clients with a batch now
            if shared:
                z = (xb.reshape(-1, d) @ w0).reshape(*xb.shape[:2], -1) + b0  # (C, B, k)
            else:
                z = np.matmul(xb, w) + b[:, None, :]  # batched GEMM: (C, B, d) @ (C, d, k)
            p = softmax(z)  # (C, B, k)
            g = (p - yb) * m / count  # (C, B, k)
            grad_w = np.matmul(xb.transpose(0, 2, 1), g)  # (C, d, k)
            if mu:
                grad_w += np.float32(mu) * (w - w0)
            shared = False
            step = np.float32(lr) * active[:, None, None]
            w = w - step * grad_w
            b = b - np.float32(lr) * active[:, None] * g.sum(axis=1)
    return w, b


def _cohorts(
    task: LogisticRegression, params: Parameters, clients: Clients, work: Work, cohort: int
) -> Iterator[ClientUpdate]:
    """Trains the chosen clients `cohort` at a time and yields their updates, so memory
    grows with the cohort, not with the number of clients."""
    config = work.config
    for group in work.shares(cohort):
        w, b = batched_logreg(
            params["weight"].astype(np.float64),
            params["bias"].astype(np.float64),
            *clients.stacks(group.chosen),
            task.classes,
            epochs=int(config.get("epochs", 1)),
            batch_size=int(config.get("batch_size", 10)),
            lr=float(config.get("learning_rate", 0.1)),
            mu=float(config.get("proximal_mu", 0.0)),
            seeds=group.seeds,
        )
        for i, c in enumerate(group.chosen):
            yield ClientUpdate(
                {"weight": w[i].astype(np.float32), "bias": b[i].astype(np.float32)},
                clients.size(c),
                str(c),
            )


def _network_cohorts(
    task: NetworkTask, params: Parameters, clients: Clients, work: Work, cohort: int
) -> Iterator[ClientUpdate]:
    for group in work.shares(cohort):
        models = train_cohort(task, params, *clients.stacks(group.chosen), work.config, group.seeds)
        for c, model in zip(group.chosen, models, strict=True):
            yield ClientUpdate(model, clients.size(c), str(c))


def _batchable(task: NetworkTask) -> bool:
    return task.vectorise and task.name not in _LOOPED


def _loop(
    task: SimulatedTask, params: Parameters, clients: Clients, work: Work
) -> Iterator[ClientUpdate]:
    """The plain way: each client trains as a node would, one after the other."""
    for c, s in zip(work.chosen, work.seeds, strict=True):
        result = task.train(params, TaskData(*clients.data(c)), {**work.config, "seed": s})
        yield ClientUpdate(result.parameters, clients.size(c), str(c))


def local_updates(
    task: SimulatedTask,
    params: Parameters,
    clients: Clients,
    work: Work,
    cohort: int,
    vectorised: bool,
) -> Iterator[ClientUpdate]:
    """The chosen clients' updates, trained in this process: batched where the model allows."""
    if work.config.get("dp_sgd"):
        return _loop(task, params, clients, work)  # per-example clipping runs client by client
    if vectorised and isinstance(task, LogisticRegression):
        return _cohorts(task, params, clients, work, cohort)
    if vectorised and isinstance(task, NetworkTask) and _batchable(task):
        try:
            # Trained in full here, so that a model found not to vectorise is retried by the
            # loop before any of its updates reach the strategy.
            return iter(list(_network_cohorts(task, params, clients, work, cohort)))
        except NotVectorisable:
            _LOOPED.add(task.name)
    return _loop(task, params, clients, work)


def crafted(
    attack: Attack, params: Parameters, updates: list[ClientUpdate], round_number: int
) -> list[ClientUpdate]:
    """The round's updates with the malicious members' ones replaced by the attack's."""
    names = list(params)
    base = np.concatenate([params[k].astype(np.float64).ravel() for k in names])

    def delta(u: ClientUpdate) -> F:
        return np.asarray(
            np.concatenate([u.parameters[k].astype(np.float64).ravel() for k in names]) - base,
            dtype=np.float64,
        )

    bad = [i for i, u in enumerate(updates) if u.client in attack.malicious]
    if not bad or attack.poisons_data:
        return updates
    honest = [delta(u) for i, u in enumerate(updates) if i not in bad]
    stacked = np.stack(honest) if honest else np.zeros((0, base.size))
    made = attack.craft([delta(updates[i]) for i in bad], stacked, len(updates), round_number)
    out = list(updates)
    for i, vector in zip(bad, made, strict=True):
        model, offset = {}, 0
        for k in names:
            size = params[k].size
            piece = base[offset : offset + size] + vector[offset : offset + size]
            model[k] = piece.reshape(params[k].shape).astype(params[k].dtype)
            offset += size
        out[i] = ClientUpdate(model, updates[i].num_examples, updates[i].client)
    return out


class Wire:
    """What each client's round would move over its link, as `concord node` and the hub move
    it: down, the round's model as a difference from the last one the client held (whole the
    first time, or when the difference is larger); up, its update, compressed under the job's
    `compression` (with the client's own error-feedback residual, carried between rounds)."""

    def __init__(self, squeeze: Compression | None) -> None:
        self.squeeze = squeeze
        self.residuals: dict[str, Parameters] = {}
        self.held: dict[str, int] = {}  # client → the round whose start model it holds
        self.models: dict[int, Parameters] = {}  # start models some client still holds
        self.previous = 0  # bytes down for a client that holds the last round's model

    def download(self, number: int, params: Parameters, clients: list[str]) -> float:
        """Mean bytes down for the round's clients; remembers what each now holds."""
        whole = len(to_safetensors(params))
        self.models[number] = params
        sizes: dict[int, int] = {}
        if number - 1 in self.models:  # what a node that trained the last round would fetch
            body = delta.encode(self.models[number - 1], params)
            self.previous = min(whole, len(body)) if body is not None else whole
        else:
            self.previous = whole
        total = 0
        for c in clients:
            base = self.held.get(c)
            if base is None:
                total += whole
            else:
                if base not in sizes:
                    body = delta.encode(self.models[base], params)
                    sizes[base] = min(whole, len(body)) if body is not None else whole
                total += sizes[base]
            self.held[c] = number
        kept = set(self.held.values()) | {number}
        self.models = {r: m for r, m in self.models.items() if r in kept}
        return total / max(len(clients), 1)

    def upload(
        self, params: Parameters, updates: list[ClientUpdate]
    ) -> tuple[list[ClientUpdate], float]:
        """The updates as the hub decodes them, and the mean bytes each client sent."""
        if self.squeeze is None:
            sizes = [len(to_safetensors(u.parameters)) for u in updates[:1]] * len(updates)
            return updates, sum(sizes) / max(len(updates), 1)
        decoded, total = [], 0
        for u in updates:
            message, self.residuals[u.client] = compression.encode(
                self.squeeze,
                compression.difference(u.parameters, params),
                self.residuals.get(u.client),
            )
            total += len(to_safetensors(message))
            model = compression.decode(self.squeeze, message, params)
            decoded.append(ClientUpdate(model, u.num_examples, u.client, u.metrics))
        return decoded, total / max(len(updates), 1)


def simulate(
    task: SimulatedTask,
    x: NDArray[Any],
    y: NDArray[Any],
    partitions: list[NDArray[np.int64]],
    strategy: Strategy,
    *,
    rounds: int,
    local: dict[str, Any],
    clients_per_round: int | None = None,
    test: tuple[NDArray[Any], NDArray[Any]] | None = None,
    seed: int = 0,
    vectorised: bool = True,
    cohort: int = 2048,
    target_accuracy: float | None = None,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    attack: Attack | None = None,
    privacy: mechanism.Settings | None = None,
    secure: SecureAggregation | None = None,
    wire: Wire | None = None,
) -> SimulationResult:
    """Runs `rounds` rounds (or until the test accuracy reaches `target_accuracy`).

    `backend="ray"` trains each round's clients in Ray worker processes (`workers` of them on
    this machine, or the cluster at `address`); the strategy, seeds and results are the same.

    `attack`: the members it names as malicious send crafted updates (or, for label flipping,
    train on poisoned labels), so that the robust strategies can be measured.
    `privacy`: client-level DP as the hub applies it (`privacy.mechanism`), ε accounted after
    every round and the run stopped before a round that would exceed the budget. The noise is
    drawn from a generator seeded by `seed`, so that a simulation can be repeated (the hub's
    noise is never seeded).

    `secure`: SecAgg+ — every client quantises and masks its update and the server unmasks
    the sum, through the same functions as `concord node` and the hub (privacy.secagg); with
    DP, distributed noise only (the server sees no single update to clip or noise).

    `wire`: each client's update goes through the job's compression and back (the hub
    decodes before it aggregates), and every round's history counts the bytes a client moves
    down (`download_bytes`) and up (`update_bytes`), as the hub and `concord node` move them.
    """
    if secure is not None and strategy.name not in SUM_STRATEGIES:
        raise SecureAggregationNeedsMean(strategy=strategy.name, allowed=", ".join(SUM_STRATEGIES))
    params = task.init_parameters(seed)
    result = SimulationResult(params, vectorised=vectorised)
    names = [str(i) for i in range(len(partitions))]
    if attack is not None and attack.poisons_data:
        y = y.copy()
        for c in attack.malicious:
            y[partitions[int(c)]] = flip_labels(y[partitions[int(c)]])
    clients = Clients(x, y, partitions)
    cluster = None
    if backend == "ray":
        from concord.federation.spread import Cluster

        cluster = Cluster(task.name, clients, workers, address)
    elif backend != "local":
        raise UnknownBackend(backend=backend)
    noise_rng = np.random.default_rng([seed, 0x0D1FF])
    clip_norm = privacy.clip_norm if privacy is not None else 0.0
    for r in range(1, rounds + 1):
        started = time.perf_counter()
        chosen = [int(c) for c in strategy.select(r, names, clients_per_round, seed)]
        sampling_rate = len(chosen) / len(names)
        steps = [(p.sampling_rate, p.noise_multiplier) for p in result.privacy]
        if privacy is not None:
            upcoming = mechanism.next_epsilon(steps, sampling_rate, privacy)
            if upcoming > privacy.budget:
                result.stopped = f"privacy budget: round {r} would take ε to {upcoming:.3g}"
                break
        work = Work(chosen, strategy.configure(r, local), [client_seed(seed, r, c) for c in chosen])
        if cluster is not None:
            updates = cluster.updates(params, work, cohort, vectorised)
        else:
            updates = local_updates(task, params, clients, work, cohort, vectorised)
        if vectorised and isinstance(task, NetworkTask) and not _batchable(task):
            result.vectorised = False
        if attack is not None:
            updates = iter(crafted(attack, params, list(updates), r))
        entry: dict[str, float] = {"round": r, "clients": len(chosen)}
        if wire is not None:
            entry["download_bytes"] = wire.download(r, params, [str(c) for c in chosen])
            entry["download_bytes_from_previous"] = wire.previous
            arrived, entry["update_bytes"] = wire.upload(params, list(updates))
            updates = iter(arrived)
        if secure is not None:
            params, record = _secure_round(
                strategy, params, updates, secure, privacy, clip_norm, len(chosen), noise_rng, r
            )
            if record is not None and privacy is not None:
                record.sampling_rate = sampling_rate
                mechanism.account(steps, record, privacy)
                result.privacy.append(record)
                entry.update(epsilon=record.epsilon, clip_norm=record.clip_norm)
        elif privacy is None:
            params = strategy.aggregate(
                r, params, list(updates) if strategy.needs_all_updates else updates
            )
        else:
            params, record = _private_round(
                strategy, params, updates, privacy, clip_norm, len(chosen), sampling_rate, noise_rng
            )
            mechanism.account(steps, record, privacy)
            result.privacy.append(record)
            clip_norm = record.next_clip_norm
            entry.update(epsilon=record.epsilon, clip_norm=record.clip_norm)
        entry["seconds"] = time.perf_counter() - started
        if test is not None:
            evaluation = task.evaluate(params, TaskData(test[0], test[1]))
            entry.update(loss=evaluation.loss, **evaluation.metrics)
        result.history.append(entry)
        if target_accuracy is not None and entry.get("accuracy", 0.0) >= target_accuracy:
            break
    result.parameters = params
    return result


def _secure_round(
    strategy: Strategy,
    params: Parameters,
    updates: Iterator[ClientUpdate],
    secure: SecureAggregation,
    privacy: mechanism.Settings | None,
    clip_norm: float,
    chosen: int,
    rng: np.random.Generator,
    number: int,
) -> tuple[Parameters, mechanism.RoundPrivacy | None]:
    """A SecAgg+ round in-process: the clients' deltas (clipped and noised first under DP)
    quantised, masked and summed; the server unmasks the sum, then the strategy's update."""
    deltas: dict[int, NDArray[np.float64]] = {}
    weights: dict[int, int] = {}
    share = share_std(privacy.noise_multiplier, clip_norm, chosen) if privacy else 0.0
    for i, u in enumerate(updates, 1):
        model = u.parameters
        if privacy is not None:
            model = mechanism.privatise(
                model, params, clip_norm=clip_norm, noise_std=share, rng=rng
            )
        deltas[i] = secagg.flatten(difference(model, params))
        weights[i] = 1 if privacy is not None else u.num_examples
    mean, _round = secagg.secure_mean(
        deltas,
        weights,
        clip_range=secure.clip_range,
        num_shares=secure.num_shares,
        threshold=secure.threshold,
        divisor=chosen if privacy is not None else None,
        seed=number,
        rng=rng,
    )
    record = None
    if privacy is not None:
        record = secagg.round_privacy(privacy, clip_norm, chosen, len(deltas), 1.0)
    combined = mechanism.apply_mean(params, secagg.unflatten(mean, params))
    updated = strategy.server_update(params, combined)
    return {k: v.astype(params[k].dtype, copy=False) for k, v in updated.items()}, record


def _private_round(
    strategy: Strategy,
    params: Parameters,
    updates: Iterator[ClientUpdate],
    privacy: mechanism.Settings,
    clip_norm: float,
    chosen: int,
    sampling_rate: float,
    rng: np.random.Generator,
) -> tuple[Parameters, mechanism.RoundPrivacy]:
    """DP-FedAvg's round as the hub runs it; in distributed mode each client first clips and
    noises its own update, as `concord node` does."""
    models = (u.parameters for u in updates)
    if privacy.noise == "distributed":
        share = share_std(privacy.noise_multiplier, clip_norm, chosen)
        models = (
            mechanism.privatise(m, params, clip_norm=clip_norm, noise_std=share, rng=rng)
            for m in models
        )
    mean, record = mechanism.private_mean(
        params,
        models,
        privacy,
        clip_norm=clip_norm,
        chosen=chosen,
        sampling_rate=sampling_rate,
        rng=rng,
    )
    updated = strategy.server_update(params, mechanism.apply_mean(params, mean))
    return {k: v.astype(params[k].dtype, copy=False) for k, v in updated.items()}, record
