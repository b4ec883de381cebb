"""Counting ranked ballots: pyrankvote vs ours (IRV and STV) on the same ballots, in one run.

STV: 10,000 ballots each ranking all 30 candidates, for 7 seats. IRV: 100,000 ballots ranking
1–10 of 10 candidates (so some exhaust). Preferences follow a Plackett–Luce model (candidates of
different appeal, seeded), so the counts have real surpluses, transfers and exclusions. Both
counters get the same ballots, built before the clock starts; each count is warmed up once,
repeated, and the median reported. `results_equal` says whether the two elected the same
winner (IRV) or the same set (STV). They may differ on STV in a close count, and honestly so:
ours follows the Scottish STV rules (Droop quota, weighted inclusive Gregory to 5 decimals),
pyrankvote its own (Hagenbach-Bischoff quota, a candidate's votes spread evenly over its
ballots, floats) — see docs/governance.md, "Decision methods".

    python benchmarks/tally.py            # the full measurement
    python benchmarks/tally.py --quick    # under a minute

pyrankvote==2.0.6 is in the `test` extra.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from concord.governance.methods import RankedBallot, irv, stv


def synthesize(voters: int, candidates: int, full: bool, seed: int) -> tuple[list[str], list[Any]]:
    """Plackett–Luce rankings: appeal ~ Gamma(1); each voter ranks all, or the first 1…n."""
    rng = np.random.default_rng(seed)
    appeal = rng.gamma(1.0, size=candidates)
    # Gumbel-max trick: sorting log-appeal + Gumbel noise draws a Plackett–Luce ranking.
    keys = np.log(appeal)[None, :] + rng.gumbel(size=(voters, candidates))  # (voters, n)
    order = np.argsort(-keys, axis=1)  # (voters, n), most preferred first
    lengths = np.full(voters, candidates) if full else rng.integers(1, candidates + 1, voters)
    names = [f"cand{i:02d}" for i in range(candidates)]
    ballots = [
        RankedBallot(f"m{i}", tuple(names[j] for j in order[i, : lengths[i]]))
        for i in range(voters)
    ]
    return names, ballots


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """Median seconds of `repeat` runs after one warm-up, the runs, and the last result."""
    result = run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def pyrankvote_count(names: list[str], ballots: list[RankedBallot], seats: int | None) -> Any:
    """pyrankvote's own objects, built once; returns a function that counts them."""
    import pyrankvote

    people = {n: pyrankvote.Candidate(n) for n in names}
    theirs = [pyrankvote.Ballot([people[c] for c in b.ranking]) for b in ballots]
    candidates = list(people.values())

    def run() -> set[str]:
        if seats is None:
            result = pyrankvote.instant_runoff_voting(candidates, theirs)
        else:
            result = pyrankvote.single_transferable_vote(candidates, theirs, seats)
        return {c.name for c in result.get_winners()}

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run, under a minute")
    args = parser.parse_args()

    stv_voters, irv_voters = (2_000, 20_000) if args.quick else (10_000, 100_000)
    stv_candidates, seats, irv_candidates = 30, 7, 10
    repeat_ours, repeat_peer = (3, 1) if args.quick else (5, 3)

    names, ballots = synthesize(stv_voters, stv_candidates, full=True, seed=1)
    ours_stv, ours_stv_runs, stv_result = timed(lambda: stv(names, ballots, seats), repeat_ours)
    plain_stv, _, plain_result = timed(lambda: stv(names, ballots, seats, fast=False), repeat_ours)
    peer_stv, peer_stv_runs, peer_elected = timed(
        pyrankvote_count(names, ballots, seats), repeat_peer
    )

    irv_names, irv_ballots = synthesize(irv_voters, irv_candidates, full=False, seed=2)
    ours_irv, ours_irv_runs, irv_result = timed(lambda: irv(irv_names, irv_ballots), repeat_ours)
    plain_irv, _, plain_irv_result = timed(
        lambda: irv(irv_names, irv_ballots, fast=False), repeat_ours
    )
    peer_irv, peer_irv_runs, peer_winner = timed(
        pyrankvote_count(irv_names, irv_ballots, None), repeat_peer
    )

    figures = {
        "stv_ballots": stv_voters,
        "stv_candidates": stv_candidates,
        "stv_seats": seats,
        "stv_quota": stv_result.quota,
        "stv_stages": len(stv_result.stages),
        "ours_stv_s": round(ours_stv, 4),
        "ours_plain_stv_s": round(plain_stv, 4),
        "pyrankvote_stv_s": round(peer_stv, 4),
        "stv_speedup": round(peer_stv / ours_stv, 1),
        "stv_results_equal": set(stv_result.winners) == peer_elected,
        "stv_plain_equals_array": plain_result == stv_result,
        "irv_ballots": irv_voters,
        "irv_candidates": irv_candidates,
        "irv_rounds": len(irv_result.rounds),
        "irv_exhausted_ballots": irv_result.rounds[-1].exhausted,
        "ours_irv_s": round(ours_irv, 4),
        "ours_plain_irv_s": round(plain_irv, 4),
        "pyrankvote_irv_s": round(peer_irv, 4),
        "irv_speedup": round(peer_irv / ours_irv, 1),
        "irv_results_equal": {irv_result.winner} == peer_winner,
        "irv_plain_equals_array": plain_irv_result == irv_result,
        "ours_stv_runs_s": [round(t, 4) for t in ours_stv_runs],
        "pyrankvote_stv_runs_s": [round(t, 4) for t in peer_stv_runs],
        "ours_irv_runs_s": [round(t, 4) for t in ours_irv_runs],
        "pyrankvote_irv_runs_s": [round(t, 4) for t in peer_irv_runs],
    }
    if not figures["stv_results_equal"]:
        figures["stv_elected_ours"] = sorted(stv_result.winners)
        figures["stv_elected_pyrankvote"] = sorted(peer_elected)
    for key, value in figures.items():
        print(f"{key:>26}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
