"""The opinion map: red-dwarf's Polis pipeline vs ours on the same synthetic conversation.

The conversation has four planted opinion groups in a 2 × 2 design (for or against on two
issues) plus common ground: 10,000 participants × 500 statements, each participant voting on
100 statements (1,000,000 votes). Both pipelines get the same votes; each runs in its own
subprocess (so `ru_maxrss` is that pipeline's peak memory), warms up, repeats, and reports the
median. Agreement is the adjusted Rand index of each one's groups against the planted groups
(over clustered participants). Ours also runs at 100,000 participants (Polis' default limit).

    python benchmarks/opinion.py            # the full measurement
    python benchmarks/opinion.py --quick    # under a minute

red-dwarf lives in its own venv, benchmarks/.venv-peer-opinion, made on first use with
`pip install red-dwarf`; it is not a dependency of Concord.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".venv-peer-opinion"
STATEMENTS = 500
VOTES_EACH = 100


def synthesize(n: int, m: int, per: int, seed: int = 7) -> dict[str, np.ndarray]:
    """Votes with four planted groups: group = (stance on issue A, stance on issue B)."""
    rng = np.random.default_rng(seed)
    planted = rng.integers(0, 4, n)
    a = np.where(planted % 2 == 0, 1.0, -1.0)
    b = np.where(planted < 2, 1.0, -1.0)
    topic = rng.integers(0, 3, m)  # 0: about issue A, 1: about issue B, 2: common ground
    sign = rng.choice([-1.0, 1.0], m)
    rows = np.repeat(np.arange(n, dtype=np.int32), per)
    cols = np.empty(n * per, dtype=np.int32)
    for start in range(0, n, 5000):  # each participant sees `per` distinct statements
        stop = min(n, start + 5000)
        cols[start * per : stop * per] = np.argpartition(
            rng.random((stop - start, m)), per, axis=1
        )[:, :per].ravel()
    lean = np.where(topic[cols] == 0, a[rows], np.where(topic[cols] == 1, b[rows], 1.0))
    p_agree = np.where(topic[cols] == 2, 0.75, 0.5 + 0.3 * lean * sign[cols])
    u = rng.random(len(rows))
    votes = np.where(u < p_agree * 0.85, 1, np.where(u < 0.85, -1, 0)).astype(np.int8)
    return {"rows": rows, "cols": cols, "votes": votes, "planted": planted, "n": np.array(n)}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def own_peak_mb() -> float:
    """This process's own high-water mark (VmHWM). ru_maxrss also counts the parent's size at
    the fork; the two agree here because the parent is smaller than the workers."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker_ours(data: dict[str, np.ndarray], repeat: int) -> tuple[list[float], np.ndarray]:
    sys.path.insert(0, str(HERE.parent / "src"))
    from concord.governance import opinion

    n = int(data["n"])
    times, labels = [], np.empty(0)
    for i in range(repeat + 1):
        start, cpu = time.perf_counter(), time.process_time()
        result = opinion.compute(data["rows"], data["cols"], data["votes"], (n, STATEMENTS))
        if i:  # the first run warms up
            times.append(time.perf_counter() - start)
            CPU.append(time.process_time() - cpu)
        labels = result.groups
    return times, labels


def worker_reddwarf(data: dict[str, np.ndarray], repeat: int) -> tuple[list[float], np.ndarray]:
    from reddwarf.implementations.polis import run_pipeline

    n = int(data["n"])
    votes = [
        {"participant_id": int(r), "statement_id": int(c), "vote": int(v), "modified": i}
        for i, (r, c, v) in enumerate(zip(data["rows"], data["cols"], data["votes"]))
    ]
    times, labels = [], np.empty(0)
    for i in range(repeat + 1):
        start, cpu = time.perf_counter(), time.process_time()
        result = run_pipeline(votes=votes, random_state=0)
        if i:
            times.append(time.perf_counter() - start)
            CPU.append(time.process_time() - cpu)
        clusters = result.participants_df["cluster_id"].reindex(range(n))
        labels = clusters.fillna(-1).astype(int).to_numpy()
    return times, labels


CPU: list[float] = []  # process time of each measured run (all threads), beside wall time


def worker(which: str, path: str, repeat: int, out: str) -> None:
    if which == "imports":  # the floor: only what our pipeline imports, no data, no work
        sys.path.insert(0, str(HERE.parent / "src"))
        from concord.governance import opinion  # noqa: F401

        np.save(out, np.empty(0))
        print(json.dumps({"times": [0.0], "cpu": [0.0], "peak_mb": own_peak_mb()}))
        return
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    run = worker_ours if which == "ours" else worker_reddwarf
    times, labels = run(data, repeat)
    np.save(out, labels)
    print(json.dumps({"times": times, "cpu": CPU, "peak_mb": peak_mb(), "own_mb": own_peak_mb()}))


def measure(python: str, which: str, path: str, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "labels.npy")
        done = subprocess.run(
            [
                python,
                __file__,
                "--worker",
                which,
                "--data",
                path,
                "--repeat",
                str(repeat),
                "--out",
                out,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        figures["labels"] = np.load(out)
    figures["median_s"] = statistics.median(figures["times"])
    figures["median_cpu_s"] = statistics.median(figures["cpu"])
    return figures


def ari(planted: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    clustered = labels >= 0
    return float(adjusted_rand_score(planted[clustered], labels[clustered]))


def peer_python() -> str:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        (PEER_VENV / ".gitignore").write_text("*\n")
        subprocess.run([str(python), "-m", "pip", "install", "-q", "red-dwarf"], check=True)
    return str(python)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run, under a minute")
    parser.add_argument("--worker", choices=["ours", "reddwarf", "imports"])
    parser.add_argument("--data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.repeat, args.out)
        return

    participants = 2_000 if args.quick else 10_000
    large = 20_000 if args.quick else 100_000
    repeat_ours, repeat_peer = (3, 1) if args.quick else (5, 3)
    peer = peer_python()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "votes.npz")
        data = synthesize(participants, STATEMENTS, VOTES_EACH)
        np.savez(path, **data)
        floor = measure(sys.executable, "imports", path, 0)
        ours = measure(sys.executable, "ours", path, repeat_ours)
        theirs = measure(peer, "reddwarf", path, repeat_peer)
        big_path = os.path.join(tmp, "votes-large.npz")
        big = synthesize(large, STATEMENTS, VOTES_EACH, seed=8)
        np.savez(big_path, **big)
        del big["rows"], big["cols"], big["votes"]
        ours_large = measure(sys.executable, "ours", big_path, max(1, repeat_ours - 2))
    planted = data["planted"]
    figures = {
        "participants": participants,
        "statements": STATEMENTS,
        "votes": len(data["votes"]),
        "planted_groups": 4,
        "ours_s": round(ours["median_s"], 4),
        "reddwarf_s": round(theirs["median_s"], 4),
        "speedup": round(theirs["median_s"] / ours["median_s"], 1),
        # process time (all threads) is less disturbed by other work on a shared machine
        "ours_cpu_s": round(ours["median_cpu_s"], 4),
        "reddwarf_cpu_s": round(theirs["median_cpu_s"], 4),
        "speedup_cpu": round(theirs["median_cpu_s"] / ours["median_cpu_s"], 1),
        "ours_ari": round(ari(planted, ours["labels"]), 4),
        "reddwarf_ari": round(ari(planted, theirs["labels"]), 4),
        "ours_vs_reddwarf_ari": round(
            float(
                __import__("sklearn.metrics").metrics.adjusted_rand_score(
                    ours["labels"], theirs["labels"]
                )
            ),
            4,
        ),
        "ours_peak_mb": round(ours["peak_mb"], 1),
        "ours_own_peak_mb": round(ours["own_mb"], 1),
        "ours_imports_mb": round(floor["peak_mb"], 1),
        "reddwarf_peak_mb": round(theirs["peak_mb"], 1),
        "memory_ratio": round(theirs["peak_mb"] / ours["peak_mb"], 2),
        "large_participants": large,
        "ours_large_s": round(ours_large["median_s"], 4),
        "ours_large_cpu_s": round(ours_large["median_cpu_s"], 4),
        "ours_large_ari": round(ari(big["planted"], ours_large["labels"]), 4),
        "ours_large_peak_mb": round(ours_large["peak_mb"], 1),
        # ru_maxrss of a child counts the parent's size at the fork: here the parent has just
        # synthesized 10M votes, so the worker's own high-water mark is given beside it
        "ours_large_own_peak_mb": round(ours_large["own_mb"], 1),
        "load_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
