"""`concord simulate`: many clients on one machine, for choosing settings before members commit.

The simulator knows tasks only through their protocols (`tasks.base`): a `Simulable` task
brings the data, and one that is `Vectorisable` trains a cohort of clients as ONE computation —
logistic regression with stacked parameters (C, d, k) and batched matrix products
(`tasks.logreg.batched_sgd`), PyTorch models with torch.func's vmap (`cohort`). Other tasks,
or one found not to vectorise, run the plain loop over clients through `Task.train`; tests
check that both give the same parameters. The strategies are the ones the hub runs; under the
default weighted mean (FedAvg, FedProx, FedOpt) the stacked models are averaged in one product.
Evaluation scores every client's test share in one pass when the task has `ExampleMetrics`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

import numpy as np
from numpy.typing import NDArray

from concord.errors import N_, Invalid
from concord.federation import compression, delta
from concord.federation.attacks import Attack, flip_labels
from concord.federation.parameters import Parameters, to_safetensors
from concord.federation.privacy import mechanism, secagg
from concord.federation.privacy.clipping import difference
from concord.federation.privacy.noise import share_std
from concord.federation.strategies.base import ClientUpdate, Strategy
from concord.federation.tasks.base import (
    EvalResult,
    ExampleMetrics,
    NotVectorisable,
    TaskData,
    TrainResult,
    Vectorisable,
)
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


class Clients:
    """Every simulated client's data: each client's examples, and how many.

    When every client holds as many examples (iid shares), the examples are stored once in
    client order, (C, n, …), so that a round of all clients trains on a view of them and a
    sample of clients is one gather; otherwise each cohort's rows are gathered and padded."""

    def __init__(
        self, x: NDArray[Any], y: NDArray[Any], partitions: list[NDArray[np.int64]]
    ) -> None:
        self.partitions = partitions
        self.sizes = np.array([len(p) for p in partitions], dtype=np.int64)
        self.equal = len(partitions) > 0 and bool((self.sizes == self.sizes[0]).all())
        if self.equal:
            order = np.concatenate(partitions)
            shape = (len(partitions), int(self.sizes[0]))
            if len(order) == len(y) and bool((order == np.arange(len(y))).all()):
                x, y = x.reshape(*shape, *x.shape[1:]), y.reshape(shape)  # already in order
            else:
                x, y = x[order].reshape(*shape, *x.shape[1:]), y[order].reshape(shape)
        self.x, self.y = x, y

    def data(self, c: int) -> tuple[NDArray[Any], NDArray[Any]]:
        if self.equal:
            return self.x[c], self.y[c]
        return self.x[self.partitions[c]], self.y[self.partitions[c]]

    def stacks(self, chosen: list[int]) -> tuple[list[NDArray[Any]], list[NDArray[Any]]]:
        """The chosen clients' inputs and labels, as two lists."""
        pairs = [self.data(c) for c in chosen]
        return [x for x, _y in pairs], [y for _x, y in pairs]

    def stacked(self, chosen: list[int]) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.int64]]:
        """The chosen clients' inputs (C, N, …) and labels (C, N), padded, and their sizes."""
        sizes = self.sizes[chosen]
        if self.equal:
            if len(chosen) == len(self.sizes) and chosen == list(range(len(self.sizes))):
                return self.x, self.y, sizes  # every client, in order: a view
            return self.x[chosen], self.y[chosen], sizes
        index = np.zeros((len(chosen), int(sizes.max())), dtype=np.int64)  # padding → row 0
        for i, c in enumerate(chosen):
            index[i, : sizes[i]] = self.partitions[c]
        return self.x[index], self.y[index], sizes

    def size(self, c: int) -> int:
        return int(self.sizes[c])


class Seeds(Sequence[int]):
    """Each chosen client's seed for a round, `client_seed(seed, round, client)`, worked out
    when asked for: a round of full-batch steps draws no shuffle, and 1,000 seed sequences
    cost more than the round's training."""

    def __init__(self, seed: int, round_number: int, clients: Sequence[int]) -> None:
        self.seed, self.round_number, self.clients = seed, round_number, clients

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> Seeds: ...

    def __getitem__(self, index: int | slice) -> int | Seeds:
        if isinstance(index, slice):
            return Seeds(self.seed, self.round_number, self.clients[index])
        return client_seed(self.seed, self.round_number, self.clients[index])

    def __len__(self) -> int:
        return len(self.clients)


@dataclass(frozen=True)
class Work:
    """A round's local training: which clients, with what settings, and each client's seed."""

    chosen: list[int]
    config: dict[str, Any]
    seeds: Sequence[int]

    def shares(self, size: int) -> Iterator[Work]:
        """The work cut into consecutive shares of at most `size` clients."""
        for start in range(0, len(self.chosen), size):
            end = start + size
            yield Work(self.chosen[start:end], self.config, self.seeds[start:end])


@dataclass(frozen=True)
class Cohort:
    """Some clients' trained models, every tensor stacked (C, *shape), and their example counts."""

    models: Parameters
    sizes: NDArray[np.int64]
    chosen: list[int]

    def updates(self) -> Iterator[ClientUpdate]:
        for i, c in enumerate(self.chosen):
            model = {k: v[i] for k, v in self.models.items()}
            yield ClientUpdate(model, int(self.sizes[i]), str(c))


# Tasks found not to train stacked: asked once per process, not once per round.
_LOOPED: set[str] = set()


def client_seed(seed: int, round_number: int, client: int) -> int:
    return int(np.random.SeedSequence([seed, round_number, client]).generate_state(1)[0])


def fast_path(task: SimulatedTask, work: Work, vectorised: bool) -> bool:
    """Whether this round's clients train stacked: the task says it can (`Vectorisable`),
    it has not been found unable to, and no per-example clipping (DP-SGD) is asked for."""
    return (
        vectorised
        and isinstance(task, Vectorisable)
        and task.name not in _LOOPED
        and not work.config.get("dp_sgd")
    )


def stacked_cohorts(
    task: Vectorisable, params: Parameters, clients: Clients, work: Work, cohort: int
) -> list[Cohort]:
    """The chosen clients trained `cohort` at a time, each share as one computation. All
    shares are trained before any is returned, so that a task found not to vectorise is
    retried by the loop before any of its updates reach the strategy."""
    done = []
    for group in work.shares(cohort):
        x, y, sizes = clients.stacked(group.chosen)
        models = task.train_stacked(params, x, y, sizes, work.config, group.seeds)
        done.append(Cohort(models, sizes, group.chosen))
    return done


def _loop(
    task: SimulatedTask, params: Parameters, clients: Clients, work: Work
) -> Iterator[ClientUpdate]:
    """The plain way: each client trains as a node would, one after the other."""
    for c, s in zip(work.chosen, work.seeds, strict=True):
        result = task.train(params, TaskData(*clients.data(c)), {**work.config, "seed": s})
        yield ClientUpdate(result.parameters, clients.size(c), str(c))


def trained(
    task: SimulatedTask,
    params: Parameters,
    clients: Clients,
    work: Work,
    cohort: int,
    vectorised: bool,
) -> list[Cohort] | Iterator[ClientUpdate]:
    """The round's training in this process: stacked cohorts where the task allows,
    otherwise each client's update from the plain loop."""
    if fast_path(task, work, vectorised):
        try:
            return stacked_cohorts(task, params, clients, work, cohort)  # type: ignore[arg-type]
        except NotVectorisable:
            _LOOPED.add(task.name)
    return _loop(task, params, clients, work)


def local_updates(
    task: SimulatedTask,
    params: Parameters,
    clients: Clients,
    work: Work,
    cohort: int,
    vectorised: bool,
) -> Iterator[ClientUpdate]:
    """The chosen clients' updates, trained in this process: batched where the model allows."""
    done = trained(task, params, clients, work, cohort, vectorised)
    if isinstance(done, list):
        return (u for part in done for u in part.updates())
    return done


def plain_mean(strategy: Strategy) -> bool:
    """Whether the strategy combines by the default example-weighted mean (FedAvg, FedProx,
    the FedOpt family): then stacked cohorts are averaged in one product, not client by client."""
    return type(strategy).combine is Strategy.combine and not strategy.needs_all_updates


def stacked_mean(cohorts: list[Cohort]) -> Parameters:
    """The example-weighted mean of every stacked model: one matrix-vector product per
    tensor, in float32 (the models' type; a float64 copy of 1,000 models took longer than
    their training), the sum carried across cohorts in float64."""
    total = float(sum(int(c.sizes.sum()) for c in cohorts))
    if total <= 0:
        raise ValueError("no examples to aggregate")
    out: dict[str, NDArray[np.float64]] = {}
    for part in cohorts:
        weights = part.sizes.astype(np.float64) / total
        for k, v in part.models.items():
            flat = v.reshape(len(weights), -1)
            piece = (weights.astype(flat.dtype) @ flat).astype(np.float64).reshape(v.shape[1:])
            out[k] = out[k] + piece if k in out else piece
    return out


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


@dataclass(frozen=True)
class TestShares:
    """The test pool and which client owns each of its examples (-1: none). The simulator
    partitions the task's public test set among its clients the same way as the training
    pool (iid, label shards, Dirichlet), so each client is scored on data like its own."""

    x: NDArray[Any]
    y: NDArray[Any]
    owner: NDArray[np.int64]
    counts: NDArray[np.int64]

    @classmethod
    def of(
        cls, x: NDArray[Any], y: NDArray[Any], partitions: list[NDArray[np.int64]] | None
    ) -> TestShares:
        owner = np.full(len(y), -1, dtype=np.int64)
        for c, part in enumerate(partitions or []):
            owner[part] = c
        counts = np.bincount(owner[owner >= 0], minlength=len(partitions or []))
        return cls(x, y, owner, counts.astype(np.int64))


def fairness(values: NDArray[np.float64]) -> dict[str, float]:
    """Aggregates of one metric over clients: the mean, the mean of the worst 10 % (at least
    one client), the worst client, and the spread (max − min, and the standard deviation)."""
    ranked = np.sort(values)
    decile = max(1, int(np.ceil(0.1 * len(ranked))))
    return {
        "mean": float(ranked.mean()),
        "worst10": float(ranked[:decile].mean()),
        "worst": float(ranked[0]),
        "spread": float(ranked[-1] - ranked[0]),
        "std": float(ranked.std()),
    }


def evaluation(task: SimulatedTask, params: Parameters, test: TestShares) -> dict[str, float]:
    """The model on the whole test pool (`loss`, `accuracy`, …) and, when clients hold test
    shares, each metric's fairness over clients (`accuracy_worst10`, …).

    A task with `ExampleMetrics` is scored in one pass over every example; each client's
    metric is then a `bincount` over its examples. Other tasks: `evaluate` once on the pool
    and once per client (correct, and slow for thousands of clients)."""
    scored = test.owner >= 0
    if isinstance(task, ExampleMetrics):
        per_example = task.example_metrics(params, test.x, test.y)
        overall = {k: float(np.mean(v)) for k, v in per_example.items()}
        per_client: dict[str, NDArray[np.float64]] = {
            k: np.bincount(
                test.owner[scored], weights=v[scored], minlength=len(test.counts)
            ).astype(np.float64)
            for k, v in per_example.items()
        }
    else:
        whole = task.evaluate(params, TaskData(test.x, test.y))
        overall = {"loss": whole.loss, **whole.metrics}
        runs = [
            task.evaluate(params, TaskData(test.x[test.owner == c], test.y[test.owner == c]))
            for c in range(len(test.counts))
            if test.counts[c]
        ]
        held = test.counts > 0
        per_client = {}
        for k in overall:
            sums = np.zeros(len(test.counts))
            sums[held] = [
                (r.loss if k == "loss" else r.metrics.get(k, np.nan)) * r.num_examples for r in runs
            ]
            per_client[k] = sums
    entry = dict(overall)
    held = test.counts > 0
    if held.any():
        for k, sums in per_client.items():
            if k == "loss":
                continue  # fairness is read on the task's metrics (a loss has no "worst" side)
            means = sums[held] / test.counts[held]
            entry.update({f"{k}_{name}": v for name, v in fairness(means).items()})
        entry["clients_evaluated"] = float(held.sum())
    return entry


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
    test_partitions: list[NDArray[np.int64]] | None = None,
    evaluate_every: int = 1,
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

    Evaluation on `test` runs every `evaluate_every` rounds and after the last; its time is
    `evaluation_seconds` in the round's history, apart from the round's training `seconds`.
    With `test_partitions` (each client's indices into the test set), every client is scored
    on its own share and the history gives each metric's fairness over clients: `_mean`,
    `_worst10` (mean of the lowest decile), `_worst`, `_spread` (max − min) and `_std`.

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
    shares = TestShares.of(test[0], test[1], test_partitions) if test is not None else None
    cluster = None
    if backend == "ray":
        from concord.federation.spread import Cluster

        cluster = Cluster(task.name, clients, workers, address)
    elif backend != "local":
        raise UnknownBackend(backend=backend)
    # Nothing between the clients and the mean: stacked cohorts average in one product.
    direct = attack is None and wire is None and secure is None and privacy is None
    noise_rng = np.random.default_rng([seed, 0x0D1FF])
    clip_norm = privacy.clip_norm if privacy is not None else 0.0
    every = max(1, evaluate_every)
    for r in range(1, rounds + 1):
        started, cpu = time.perf_counter(), time.process_time()
        # In client order (the names sort as strings): a round of every client then trains
        # on a view of the clients' stored examples rather than a gathered copy.
        chosen = sorted(int(c) for c in strategy.select(r, names, clients_per_round, seed))
        sampling_rate = len(chosen) / len(names)
        steps = [(p.sampling_rate, p.noise_multiplier) for p in result.privacy]
        if privacy is not None:
            upcoming = mechanism.next_epsilon(steps, sampling_rate, privacy)
            if upcoming > privacy.budget:
                result.stopped = f"privacy budget: round {r} would take ε to {upcoming:.3g}"
                break
        work = Work(chosen, strategy.configure(r, local), Seeds(seed, r, chosen))
        entry: dict[str, float] = {"round": r, "clients": len(chosen)}
        averaged = False
        if cluster is not None:
            updates = cluster.updates(params, work, cohort, vectorised)
        else:
            done = trained(task, params, clients, work, cohort, vectorised)
            if isinstance(done, list) and direct and plain_mean(strategy):
                params = _next(strategy, params, stacked_mean(done))
                updates, averaged = iter(()), True
            elif isinstance(done, list):
                updates = (u for part in done for u in part.updates())
            else:
                updates = done
            if vectorised and task.name in _LOOPED:
                result.vectorised = False
        if attack is not None:
            updates = iter(crafted(attack, params, list(updates), r))
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
            if not averaged:
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
        # Processor time of this process's threads: on a shared machine, the work done.
        entry["cpu_seconds"] = time.process_time() - cpu
        if shares is not None and (r % every == 0 or r == rounds or target_accuracy is not None):
            _evaluate_into(entry, task, params, shares)
        result.history.append(entry)
        if target_accuracy is not None and entry.get("accuracy", 0.0) >= target_accuracy:
            break
    if shares is not None and result.history and "evaluation_seconds" not in result.history[-1]:
        _evaluate_into(result.history[-1], task, params, shares)  # stopped early: the last model
    result.parameters = params
    return result


def _evaluate_into(
    entry: dict[str, float], task: SimulatedTask, params: Parameters, shares: TestShares
) -> None:
    began = time.perf_counter()
    entry.update(evaluation(task, params, shares))
    entry["evaluation_seconds"] = time.perf_counter() - began


def _next(strategy: Strategy, params: Parameters, combined: Parameters) -> Parameters:
    """The strategy's server step from an already combined model, in the model's dtypes."""
    updated = strategy.server_update(params, combined)
    return {k: v.astype(params[k].dtype, copy=False) for k, v in updated.items()}


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
