"""A node's evaluation work: the models of a campaign evaluated on this site's own test data.

Each model is pulled with `concord pull` (resumable, every chunk and file verified) into the
node's cache, one folder per repository and commit: a second campaign of the same revision
finds the files current and fetches nothing. Parameters load from safetensors or `.npz`
without pickling. The data never leave: only metrics and the example count do, signed.

A site that wants its operator to see results before they leave keeps them in its state
folder (`held/campaign-N.json`) until `concord node approve` sends them.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from concord.commons.pull import pull
from concord.errors import N_, Invalid, NotFound
from concord.federation.data import read_partition
from concord.federation.evaluation import result_payload
from concord.federation.parameters import BadParameters, Parameters, from_safetensors
from concord.federation.tasks.base import Task, TaskData, load_task

PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
REVISION = re.compile(r"^[0-9a-f]{40,64}$")
SET = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class NoEvaluationSet(NotFound):
    code = "federation.no_evaluation_set"
    message = N_("This site has no evaluation set “{name}” ({name}.npz in its data folder).")


class UnusableModel(Invalid):
    code = "federation.unusable_model"
    message = N_("Model {repo} at {revision} has no parameters this node can load: {reason}")


def model_folder(state: Path, repo: str, revision: str) -> Path:
    """Where the cache keeps one repository at one commit (names checked: never a path
    outside the cache, whatever the hub sends)."""
    owner, _sep, name = repo.partition("/")
    if not (PART.match(owner) and PART.match(name) and REVISION.match(revision)):
        raise UnusableModel(repo=repo, revision=revision, reason=N_("not a model reference"))
    return state / "models" / owner / name / revision


def load_parameters(folder: Path, repo: str, revision: str) -> Parameters:
    """The parameters in a pulled model folder: `model.safetensors`, else the only other
    safetensors or `.npz` file (never a pickle)."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    for candidates in (
        [p for p in files if p.name == "model.safetensors"],
        [p for p in files if p.suffix == ".safetensors"],
        [p for p in files if p.suffix == ".npz"],
    ):
        if not candidates:
            continue
        path = candidates[0]
        try:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as arrays:
                    return {k: arrays[k] for k in arrays.files}
            return from_safetensors(path.read_bytes())
        except (BadParameters, ValueError, OSError) as exc:
            raise UnusableModel(
                repo=repo, revision=revision, reason=N_("not a valid safetensors file")
            ) from exc
    raise UnusableModel(repo=repo, revision=revision, reason=N_("no safetensors or npz file"))


def fetch_model(
    hub: str, token: str, repo: str, revision: str, state: Path
) -> tuple[Parameters, int]:
    """The model's parameters and the bytes this pull downloaded (0 when cached)."""
    folder = model_folder(state, repo, revision)
    folder.mkdir(parents=True, exist_ok=True)
    report = pull(hub, repo, kind="model", revision=revision, to=folder, token=token or None)
    return load_parameters(folder, repo, revision), report.downloaded_bytes


def evaluation_data(task: Task, data: Path, name: str) -> TaskData:
    """The site's data with `name` as its test set (`test`: what the task reads as test)."""
    if not SET.match(name):
        raise NoEvaluationSet(name=name)
    try:
        local = task.load_data(data)
    except FileNotFoundError as exc:
        raise NoEvaluationSet(name=name) from exc
    if name == "test":
        if local.x_test is None or local.y_test is None:
            raise NoEvaluationSet(name=name)
        return local
    if not (data / f"{name}.npz").is_file():
        raise NoEvaluationSet(name=name)
    x, y = read_partition(data, name)
    return TaskData(local.x, local.y, x.astype(local.x.dtype, copy=False), y)


def evaluate(
    work: dict[str, Any], *, hub: str, token: str, member: str, data: Path, state: Path
) -> tuple[dict[str, Any], int]:
    """Evaluates every model of a campaign here; the (unsigned) payload of results and the
    bytes downloaded."""
    task = load_task(str(work["task"]))
    name = str(work.get("evaluation_set") or "test")
    local = evaluation_data(task, data, name)
    results = []
    moved = 0
    for model in work["models"]:
        repo, revision = str(model["repo"]), str(model["revision"])
        params, downloaded = fetch_model(hub, token, repo, revision, state)
        moved += downloaded
        result = task.evaluate(params, local)
        metrics = {"loss": float(result.loss), **{k: float(v) for k, v in result.metrics.items()}}
        results.append(
            {
                "repo": repo,
                "revision": revision,
                # A diverged model's loss may be NaN: the hub takes finite numbers only.
                "metrics": {k: v for k, v in metrics.items() if math.isfinite(v)},
                "num_examples": int(result.num_examples),
            }
        )
    return result_payload(int(work["campaign"]), member, results, name), moved


# --- results held for the operator's approval


def held_path(state: Path, campaign: int) -> Path:
    return state / "held" / f"campaign-{int(campaign)}.json"


def hold(state: Path, payload: dict[str, Any]) -> Path:
    """Keeps results until `concord node approve` (written whole or not at all)."""
    path = held_path(state, int(payload["campaign"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(temporary, path)
    return path


def held(state: Path, campaign: int | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """The results waiting for approval (one campaign's, or all), oldest campaign first."""
    folder = state / "held"
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("campaign-*.json"), key=lambda p: int(p.stem.split("-")[1])):
        payload = json.loads(path.read_text())
        if campaign is None or int(payload["campaign"]) == campaign:
            found.append((path, payload))
    return found


def released(state: Path, path: Path, folder: str = "released") -> None:
    """Moves results out of the waiting folder: to `released/` once sent, to `refused/` when
    their campaign can no longer take them (kept, so the operator can look back)."""
    target = state / folder / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
