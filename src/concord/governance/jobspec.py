"""The job spec a `project` proposal carries: what the federation will run once it is adopted.

Governance validates it when the proposal is made (so members vote on something runnable) and
hands it to federation in the `governance.project_adopted` event; federation parses it with
this same model. Federation may import governance; governance never imports federation.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from concord.errors import N_, Invalid


class SecureAggregationNeedsMean(Invalid):
    code = "proposal.secagg_strategy"
    message = N_(
        "Secure aggregation gives the hub only the sum of the updates; strategy “{strategy}” "
        "needs each update. Choose one of: {allowed}."
    )


# Strategies that need only the (weighted) sum of the updates: the ones secure aggregation
# can serve. Median, trimmed mean, Krum and the other robust rules look at each update.
SUM_STRATEGIES = ("fedavg", "fedavgm", "fedprox", "fedadagrad", "fedadam", "fedyogi")


class CompressionNeedsPlainUpdates(Invalid):
    code = "proposal.compression_secagg"
    message = N_(
        "Update compression and secure aggregation cannot be combined: secure aggregation "
        "already quantises each update into a finite field and masks it, and a masked vector "
        "looks random, so it can be neither quantised again nor sparsified. Choose one."
    )


class SparseNeedsMean(Invalid):
    code = "proposal.topk_strategy"
    message = N_(
        "Top-k compression sends each node's few largest changes, a different few for every "
        "node; strategy “{strategy}” compares the nodes' values coordinate by coordinate and "
        "would see mostly zeros. Use 8-bit quantisation (q8) with it, or one of: {allowed}."
    )


class Participants(BaseModel):
    """Who may train: listed members and/or every active member of listed blocs."""

    model_config = ConfigDict(extra="forbid")

    members: list[str] = Field(default_factory=list, description="Member handles")
    blocs: list[str] = Field(default_factory=list, description="Bloc names, e.g. global-south")

    @model_validator(mode="after")
    def _not_empty(self) -> Participants:
        if not self.members and not self.blocs:
            raise ValueError("name at least one member or bloc")
        return self


# The robust rules' parameters and their allowed ranges (inclusive), so that a project's spec
# says exactly what the hub will run: an unknown name or a value out of range is refused when
# the proposal is made, not at the first round.
ROBUST_PARAMS: dict[str, dict[str, tuple[float, float]]] = {
    "median": {},
    "trimmed-mean": {"beta": (0.0, 0.49)},
    "krum": {"byzantine": (0, 1000)},
    "multi-krum": {"byzantine": (0, 1000), "keep": (1, 1000)},
    "geometric-median": {"smoothing": (1e-12, 1.0), "iterations": (1, 1000)},
    "centred-clipping": {"tau": (1e-9, 1e6), "iterations": (1, 100), "momentum": (0.0, 1.0)},
    "norm-bound": {"bound": (1e-9, 1e6), "factor": (0.01, 100.0)},
}


class StrategySpec(BaseModel):
    """The aggregation strategy and its hyper-parameters; `bucketing: s` first averages the
    updates in random buckets of s (Karimireddy et al. 2022) and gives the rule their means."""

    model_config = ConfigDict(extra="forbid")

    name: Literal[
        "fedavg",
        "fedavgm",
        "fedprox",
        "fedadagrad",
        "fedadam",
        "fedyogi",
        "median",
        "trimmed-mean",
        "krum",
        "multi-krum",
        "geometric-median",
        "centred-clipping",
        "norm-bound",
    ] = "fedavg"
    params: dict[str, float | int] = Field(default_factory=dict)
    bucketing: int | None = Field(default=None, ge=2, le=1000, description="Bucket size s")

    @property
    def robust(self) -> bool:
        return self.name in ROBUST_PARAMS

    @model_validator(mode="after")
    def _robust_params(self) -> StrategySpec:
        allowed = ROBUST_PARAMS.get(self.name)
        if allowed is None:
            if self.bucketing:
                raise ValueError(
                    f"bucketing needs a robust rule ({', '.join(ROBUST_PARAMS)}), not {self.name}"
                )
            return self
        for key, value in self.params.items():
            if key not in allowed:
                known = ", ".join(allowed) or "none"
                raise ValueError(f"{self.name} has no parameter {key!r} (it takes: {known})")
            low, high = allowed[key]
            if not low <= value <= high:
                raise ValueError(
                    f"{self.name}'s {key} must lie in [{low:g}, {high:g}], not {value}"
                )
        if self.name == "norm-bound" and {"bound", "factor"} <= set(self.params):
            raise ValueError("norm-bound takes either a fixed bound or a factor, not both")
        return self


class RecordLevelPrivacy(BaseModel):
    """DP-SGD inside each node's local training: per-example gradients clipped to
    `clip_norm`, Gaussian noise z·C on each batch's sum. Protects each record of a member's
    data (record-level ε), not the member's whole contribution."""

    model_config = ConfigDict(extra="forbid")

    clip_norm: float = Field(default=1.0, gt=0)
    noise_multiplier: float = Field(default=1.0, gt=0, le=1000)
    delta: float = Field(default=1e-5, gt=0, lt=1)


class LocalTraining(BaseModel):
    """What each node does per round."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=1, ge=1, le=100)
    batch_size: int = Field(default=10, ge=0, le=100_000, description="0 means full batch")
    learning_rate: float = Field(default=0.1, gt=0, le=10)
    proximal_mu: float = Field(default=0.0, ge=0, le=100, description="FedProx's μ")
    dp_sgd: RecordLevelPrivacy | None = None


class DifferentialPrivacy(BaseModel):
    """Client-level DP (DP-FedAvg): clip each update, add Gaussian noise, account ε with
    dp-accounting. `epsilon` is a BUDGET: the hub stops the job before a round that would
    exceed it. What the run achieved is measured and stated separately (federation/privacy)."""

    model_config = ConfigDict(extra="forbid")

    epsilon: float = Field(gt=0, le=100, description="Budget: ε the run may not exceed")
    delta: float | None = Field(default=None, gt=0, lt=1, description="Default 1/N^1.1")
    clip_norm: float = Field(default=1.0, gt=0, description="C (initial C when adaptive)")
    noise_multiplier: float | None = Field(default=None, gt=0, le=1000, description="z; 1.0")
    noise: Literal["central", "distributed"] = "central"
    adaptive: bool = False
    target_quantile: float = Field(default=0.5, gt=0, lt=1, description="γ (adaptive)")
    clip_learning_rate: float = Field(default=0.2, gt=0, le=10, description="η_C (adaptive)")
    clipped_count_stddev: float | None = Field(default=None, gt=0, description="m/20 if unset")
    accountant: Literal["rdp", "pld"] = "rdp"

    @model_validator(mode="after")
    def _adaptive_is_central(self) -> DifferentialPrivacy:
        if self.adaptive and self.noise != "central":
            raise ValueError("adaptive clipping needs central noise (the hub sees the norms)")
        return self

    @property
    def z(self) -> float:
        return self.noise_multiplier if self.noise_multiplier is not None else 1.0


class SecureAggregation(BaseModel):
    """SecAgg+ (federation/privacy/secagg.py): the hub learns only the sum of the updates."""

    model_config = ConfigDict(extra="forbid")

    num_shares: int = Field(
        default=0, ge=0, le=10_000, description="Neighbours each node shares keys with; 0: all"
    )
    threshold: int = Field(
        default=0, ge=0, le=10_000, description="t: shares needed to unmask; 0: a majority"
    )
    clip_range: float = Field(
        default=1.0, gt=0, le=1e6, description="Each coordinate of a delta is clipped to ±r"
    )


class Compression(BaseModel):
    """How nodes compress their updates for thin links (federation/compression.py): `q8`,
    8-bit linear quantisation of the delta per tensor (a quarter of the bytes); `topk`, only
    the `fraction` of each tensor's entries of largest change (8 bytes each). Both keep what
    a message leaves out at the node and add it to the next round's (error feedback)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["q8", "topk"]
    fraction: float | None = Field(
        default=None, gt=0, le=0.5, description="topk: share of each tensor's entries sent; 0.01"
    )

    @model_validator(mode="after")
    def _fraction_for_topk(self) -> Compression:
        if self.kind == "q8" and self.fraction is not None:
            raise ValueError("fraction applies to topk only; q8 sends every entry in one byte")
        return self

    @property
    def share(self) -> float:
        """topk's fraction, 1 % unless the spec says otherwise."""
        return self.fraction if self.fraction is not None else 0.01


class Privacy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    personal_data: bool = False
    differential_privacy: DifferentialPrivacy | None = None
    secure_aggregation: bool | SecureAggregation = False

    @property
    def secagg(self) -> SecureAggregation | None:
        """The secure aggregation settings, None when it is off (`true` takes the defaults)."""
        if isinstance(self.secure_aggregation, SecureAggregation):
            return self.secure_aggregation
        return SecureAggregation() if self.secure_aggregation else None


class JobSpec(BaseModel):
    """A federated training job, as members vote on it."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="Task entry point name in `concord.tasks`, e.g. mnist-2nn")
    participants: Participants
    rounds: int = Field(ge=1, le=10_000)
    min_participants: int = Field(default=2, ge=1, le=10_000)
    clients_per_round: int | None = Field(default=None, ge=1, le=10_000)
    round_deadline_s: int = Field(default=600, ge=5, le=7 * 86400)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    local: LocalTraining = Field(default_factory=LocalTraining)
    privacy: Privacy = Field(default_factory=Privacy)
    evaluate_every: int = Field(default=1, ge=0, le=10_000)
    compression: Compression | None = Field(default=None, description="Update compression")
    publish_as: str | None = Field(default=None, description="Commons repository, owner/name")
    licence: str = Field(default="Apache-2.0", description="SPDX licence of the result")

    @model_validator(mode="after")
    def _secagg_needs_a_sum(self) -> JobSpec:
        # Raised as itself (not a ValueError): pydantic lets it through with its code.
        bucketing = getattr(self.strategy, "bucketing", None)
        if self.privacy.secagg is not None and (
            self.strategy.name not in SUM_STRATEGIES or bucketing
        ):
            raise SecureAggregationNeedsMean(
                strategy=self.strategy.name, allowed=", ".join(SUM_STRATEGIES)
            )
        if self.compression is not None and self.privacy.secagg is not None:
            raise CompressionNeedsPlainUpdates()
        sparse = self.compression is not None and self.compression.kind == "topk"
        if sparse and (self.strategy.name not in SUM_STRATEGIES or bucketing):
            raise SparseNeedsMean(strategy=self.strategy.name, allowed=", ".join(SUM_STRATEGIES))
        dp = self.privacy.differential_privacy
        if self.privacy.secagg is not None and dp is not None and dp.noise != "distributed":
            raise ValueError(
                "secure aggregation needs distributed noise: the hub cannot clip or noise "
                "updates it never sees"
            )
        return self

    def context(self) -> dict[str, Any]:
        """The CEL context standards see for this job (`job.*`); `job.strategy.robust` says
        whether the aggregation resists crafted updates."""
        job = self.model_dump(mode="json")
        job["strategy"]["robust"] = self.strategy.robust
        return {"job": job}
