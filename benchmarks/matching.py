"""Matching needs with offers: 5,000 × 5,000 with realistic sparsity, against an exact LP
optimum on a 500 × 500 subproblem and against the greedy pass people would otherwise run.

    python benchmarks/matching.py            # 5,000 needs × 5,000 offers
    python benchmarks/matching.py --quick    # 1,000 × 1,000

Realistic sparsity: five kinds (a need only meets an offer of its kind), 193 members with
their real countries' priorities, one to three of the six UN languages each, time zones
across the world, quantities spread over two orders of magnitude. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from concord.capacity.matching import Party, benefit_matrix, priority_of, solve
from concord.members.countries import all_countries

KINDS = ["compute", "dataset", "expert", "seats", "funding"]
LANGS = ["ar", "zh", "en", "fr", "ru", "es"]


def world(n: int, seed: int) -> tuple[list[Party], list[Party]]:
    rng = np.random.default_rng(seed)
    countries = [c for c in all_countries().values() if c.un_member]
    priorities = [priority_of(c.iso2) for c in countries]

    def parties(count: int, start: int) -> list[Party]:
        out = []
        for k in range(count):
            m = int(rng.integers(len(countries)))
            langs = frozenset(rng.choice(LANGS, size=int(rng.integers(1, 4)), replace=False))
            out.append(
                Party(
                    start + k,
                    m,
                    KINDS[int(rng.integers(5))],
                    float(rng.lognormal(4, 1)),
                    langs,
                    float(rng.integers(-10, 13)),
                    priorities[m],
                )
            )
        return out

    return parties(n, 0), parties(n, 10 * n)


def greedy(needs: list[Party], offers: list[Party]) -> float:
    """Each need in turn takes its best remaining offer."""
    total, taken = 0.0, set()
    for kind in KINDS:
        n = [p for p in needs if p.kind == kind]
        o = [p for p in offers if p.kind == kind]
        if not n or not o:
            continue
        b = benefit_matrix(n, o)
        for i in range(len(n)):
            row = b[i].copy()
            row[list(taken & set(range(len(o))))] = -1
            j = int(row.argmax())
            if row[j] > 0:
                total += row[j]
                taken.add(j)
        taken = set()
    return total


def exact_lp(needs: list[Party], offers: list[Party]) -> float:
    """The assignment LP solved by HiGHS (integral at the optimum: a bipartite polytope)."""
    total = 0.0
    for kind in KINDS:
        n = [p for p in needs if p.kind == kind]
        o = [p for p in offers if p.kind == kind]
        if not n or not o:
            continue
        b = benefit_matrix(n, o).ravel()  # variables x_ij, row-major
        rows, cols = len(n), len(o)
        i = np.repeat(np.arange(rows), cols)
        j = np.tile(np.arange(cols), rows)
        var = np.arange(rows * cols)
        a = coo_matrix(
            (np.ones(2 * rows * cols), (np.concatenate([i, rows + j]), np.concatenate([var, var]))),
            shape=(rows + cols, rows * cols),
        )
        result = linprog(-b, A_ub=a, b_ub=np.ones(rows + cols), bounds=(0, 1), method="highs")
        total += -result.fun
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 1000 if args.quick else 5000
    needs, offers = world(n, seed=1)
    solve(needs[:200], offers[:200])  # warm up
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        pairs = solve(needs, offers)
        times.append(time.perf_counter() - t0)
    ours_total = sum(b for _i, _j, b in pairs)
    t0 = time.perf_counter()
    greedy_total = greedy(needs, offers)
    greedy_s = time.perf_counter() - t0
    small_needs, small_offers = world(500, seed=2)
    ours_small = sum(b for _i, _j, b in solve(small_needs, small_offers))
    t0 = time.perf_counter()
    optimum = exact_lp(small_needs, small_offers)
    lp_s = time.perf_counter() - t0
    result = {
        "needs": n,
        "offers": n,
        "matches": len(pairs),
        "ours_s": round(statistics.median(times), 3),
        "ours_total_benefit": round(ours_total, 3),
        "greedy_s": round(greedy_s, 3),
        "greedy_total_benefit": round(greedy_total, 3),
        "benefit_over_greedy_ratio": round(ours_total / greedy_total, 4),
        "subproblem": "500x500",
        "subproblem_ours_benefit": round(ours_small, 4),
        "subproblem_lp_optimum": round(optimum, 4),
        "lp_s": round(lp_s, 3),
        "optimality_gap_ratio": round(1 - ours_small / optimum, 6),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
