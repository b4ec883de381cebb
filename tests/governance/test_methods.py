"""Decision methods: hand-checked textbook counts, properties, and a cross-check with pyrankvote.

The hand-checked cases give every figure a person would check on paper (tallies, quotas,
transfer values, what was lost to exhaustion and truncation). The properties run on random
ballots from hypothesis. The cross-check compares with pyrankvote 2.0.6 (a test extra) where
its rules and ours coincide, and says in each test where and why they may not.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concord.governance.methods import (
    BlocCondition,
    DotBallot,
    RankedBallot,
    Response,
    ScoreBallot,
    approval,
    approve,
    consent,
    draw_lot,
    irv,
    score,
    stv,
)
from concord.governance.methods.errors import BallotInvalid, BlockWithoutReason, MethodInvalid
from concord.governance.methods.result import SCALE

# ---------------------------------------------------------------- helpers


def ranked(*groups: tuple[int, tuple[str, ...]], prefix: str = "m") -> list[RankedBallot]:
    """Ballots from (count, ranking) pairs, one member each."""
    out: list[RankedBallot] = []
    for count, ranking in groups:
        out += [RankedBallot(f"{prefix}{len(out) + i}", ranking) for i in range(count)]
    return out


def units(text: str) -> int:
    """A 5-decimal vote figure ("12.34500") as units of 1/100000."""
    return int(text.replace(".", ""))


def roundtrip(result: Any) -> dict[str, Any]:
    """The result through JSON and back: what the log and the page will hold."""
    data = result.to_json()
    assert json.loads(json.dumps(data)) == data
    return data


# ---------------------------------------------------------------- consent


def test_consent_passes_without_blocks_and_counts_stand_asides() -> None:
    responses = [
        Response("kenya", "consent"),
        Response("france", "stand_aside", "we would word it differently"),
        Response("brazil", "consent", weight=2),  # Brazil carries a proxy
    ]

    result = consent(responses, cap=0)

    assert result.passed and result.outcome == "adopted"
    assert result.counts == {"consent": 3, "stand_aside": 1, "block": 0}
    assert roundtrip(result)["checks"][1] == {
        "name": "max_blocks",
        "met": True,
        "figures": {"blocks": 0, "allowed": 0},
    }


def test_consent_cap_zero_any_block_stops_it_and_cap_counts_weight() -> None:
    one_block = [Response("kenya", "consent"), Response("india", "block", "breaks our law")]
    proxy_block = [Response("kenya", "consent"), Response("india", "block", "no", weight=2)]

    assert consent(one_block, cap=0).outcome == "blocked"
    assert consent(one_block, cap=1).outcome == "adopted"
    # A proxy blocks once for every vote it carries: 2 blocks > cap 1.
    blocked = consent(proxy_block, cap=1)
    assert not blocked.passed
    assert [(b.member, b.reason) for b in blocked.blocks] == [("india", "no")]


def test_consent_needs_at_least_one_consent() -> None:
    result = consent([Response("kenya", "stand_aside")], cap=0)

    assert not result.passed
    assert result.checks[0].name == "at_least_one_consent" and not result.checks[0].met


@pytest.mark.parametrize("reason", ["", "   "])
def test_block_without_a_reason_is_refused_with_a_coded_error(reason: str) -> None:
    with pytest.raises(BlockWithoutReason) as caught:
        consent([Response("india", "block", reason)])

    assert caught.value.code == "decision.block_without_reason"
    assert caught.value.status == 422
    assert "india" in caught.value.render("en")
    assert caught.value.render("fr") != caught.value.render("en")  # translated


def test_consent_bloc_condition_caps_blocks_inside_each_bloc() -> None:
    membership = {"global-south": {"kenya", "india"}, "global-north": {"france", "germany"}}
    condition = BlocCondition(("global-south", "global-north"), max_blocks=0)
    responses = [
        Response("kenya", "consent"),
        Response("india", "block", "harms small producers"),
        Response("france", "consent"),
        Response("germany", "consent"),
    ]

    # Overall cap 1 allows the one block, but the South's own cap of 0 does not.
    result = consent(responses, cap=1, condition=condition, membership=membership)

    assert [c.met for c in result.checks] == [True, True]
    south, north = result.bloc_checks
    assert (south.bloc, south.blocks, south.met) == ("global-south", 1, False)
    assert (north.bloc, north.blocks, north.met) == ("global-north", 0, True)
    assert result.outcome == "blocked"


def test_consent_bloc_condition_fails_for_a_silent_bloc_and_passes_when_it_answers() -> None:
    membership = {"global-south": {"kenya"}, "global-north": {"france"}}
    condition = BlocCondition(("global-south", "global-north"), threshold=Fraction(1, 2))

    silent = consent([Response("kenya", "consent")], condition=condition, membership=membership)
    both = consent(
        [Response("kenya", "consent"), Response("france", "consent")],
        condition=condition,
        membership=membership,
    )

    assert not silent.passed and [c.met for c in silent.bloc_checks] == [True, False]
    assert both.passed


def test_consent_refuses_bad_settings_and_unknown_blocs() -> None:
    with pytest.raises(MethodInvalid):
        consent([Response("kenya", "consent")], cap=-1)
    with pytest.raises(MethodInvalid):
        consent(
            [Response("kenya", "consent")],
            condition=BlocCondition(("global-south",)),
            membership={},
        )
    with pytest.raises(BallotInvalid):
        consent([Response("kenya", "consent"), Response("kenya", "block", "x")])


# ---------------------------------------------------------------- IRV

TENNESSEE = ("Memphis", "Nashville", "Chattanooga", "Knoxville")


def tennessee() -> list[RankedBallot]:
    """Wikipedia's IRV example: the capital of Tennessee, 100 voters by city."""
    return (
        ranked((42, ("Memphis", "Nashville", "Chattanooga", "Knoxville")), prefix="memphis")
        + ranked((26, ("Nashville", "Chattanooga", "Knoxville", "Memphis")), prefix="nashville")
        + ranked((15, ("Chattanooga", "Knoxville", "Nashville", "Memphis")), prefix="chatt")
        + ranked((17, ("Knoxville", "Chattanooga", "Nashville", "Memphis")), prefix="knox")
    )


def test_irv_tennessee_capital_as_on_wikipedia() -> None:
    result = irv(TENNESSEE, tennessee())

    assert [r.tallies for r in result.rounds] == [
        {"Memphis": 42, "Nashville": 26, "Chattanooga": 15, "Knoxville": 17},
        {"Memphis": 42, "Nashville": 26, "Knoxville": 32},
        {"Memphis": 42, "Knoxville": 58},
    ]
    assert [r.eliminated for r in result.rounds] == ["Chattanooga", "Nashville", None]
    assert result.rounds[0].transfers == {"Knoxville": 15, "exhausted": 0}
    assert result.winner == "Knoxville" and result.outcome == "elected"
    assert roundtrip(result)["rounds"][2]["majority"] == 51


def test_irv_exhausted_ballots_are_counted_and_leave_the_majority_base() -> None:
    ballots = ranked((4, ("A",)), (3, ("B",)), (2, ("C", "B")), (1, ("C",)), (1, ()))

    result = irv(["A", "B", "C"], ballots)

    first, second = result.rounds
    assert (first.continuing, first.exhausted, first.majority) == (10, 0, 6)
    assert first.eliminated == "C" and first.transfers == {"B": 2, "exhausted": 1}
    # One C ballot exhausted: 9 ballots still count, so 5 is a majority and B has it.
    assert (second.continuing, second.exhausted, second.majority) == (9, 1, 5)
    assert second.tallies == {"A": 4, "B": 5} and result.winner == "B"
    assert (result.valid, result.blank) == (10, 1)


def test_irv_tie_for_elimination_is_broken_by_the_earlier_round() -> None:
    # Round 1: X 2, Y 3, E 1 → E out, its ballot goes to X → X 3 = Y 3. In round 1 X had
    # fewer, so X is eliminated (not the lot, which would favour X as it is listed first).
    ballots = ranked((2, ("X",)), (3, ("Y",)), (1, ("E", "X")), (4, ("W",)))

    result = irv(["X", "Y", "E", "W"], ballots)

    tie = result.rounds[1].tie
    assert tie is not None
    assert (tie.tied, tie.chosen, tie.by, tie.round) == (("X", "Y"), "X", "round", 1)
    assert result.rounds[1].eliminated == "X"


def test_irv_tie_level_in_every_round_is_drawn_by_a_reproducible_lot() -> None:
    ballots = ranked((2, ("P",)), (2, ("Q",)), (4, ("R",)))
    lot = draw_lot(["P", "Q", "R"], "CS-2026-7")

    first = irv(["P", "Q", "R"], ballots, lot=lot)
    again = irv(
        ["P", "Q", "R"], list(reversed(ballots)), lot=draw_lot(["R", "Q", "P"], "CS-2026-7")
    )

    tie = first.rounds[0].tie
    assert tie is not None and tie.by == "lot"
    # The latest of the tied candidates in the lot is eliminated.
    assert tie.chosen == max(("P", "Q"), key=lot.index)
    assert first.to_json() == again.to_json()
    assert draw_lot(["P", "Q", "R"], "another seed") in {
        ("P", "Q", "R"), ("P", "R", "Q"), ("Q", "P", "R"),
        ("Q", "R", "P"), ("R", "P", "Q"), ("R", "Q", "P"),
    }  # fmt: skip


def test_irv_bloc_condition_first_preferences_fail_final_round_passes() -> None:
    # Knoxville wins with no first preference from Nashville and Chattanooga voters, but
    # every one of their ballots is with Knoxville in the final round.
    middle = {f"nashville{i}" for i in range(26)} | {f"chatt{i}" for i in range(15)}
    membership = {"middle": middle, "east": {f"knox{i}" for i in range(17)}}
    first = BlocCondition(("middle", "east"), threshold=Fraction(1, 2), basis="first")
    final = BlocCondition(("middle", "east"), threshold=Fraction(1, 2), basis="final")

    failing = irv(TENNESSEE, tennessee(), condition=first, membership=membership)
    passing = irv(TENNESSEE, tennessee(), condition=final, membership=membership)

    assert failing.winner == passing.winner == "Knoxville"
    assert failing.outcome == "bloc_condition_failed" and not failing.conditions_met
    middle_first, east_first = failing.bloc_checks
    assert (middle_first.bloc, middle_first.support, middle_first.met) == ("middle", 0, False)
    assert (east_first.support, east_first.met) == (1, True)
    assert passing.outcome == "elected"
    assert [c.support for c in passing.bloc_checks] == [1, 1]


def test_irv_weights_count_like_separate_ballots() -> None:
    separate = ranked((3, ("A", "B")), (2, ("B",)), (2, ("C", "B")))
    proxied = [
        RankedBallot("a", ("A", "B"), weight=3),
        RankedBallot("b", ("B",), weight=2),
        RankedBallot("c", ("C", "B"), weight=2),
    ]

    one, other = irv("ABC", separate), irv("ABC", proxied)

    assert [r.tallies for r in one.rounds] == [r.tallies for r in other.rounds]
    assert one.winner == other.winner == "B"


@pytest.mark.parametrize(
    ("ballots", "reason"),
    [
        ([RankedBallot("a", ("A", "Z"))], "not standing"),
        ([RankedBallot("a", ("A", "B", "A"))], "ranks a candidate twice"),
        ([RankedBallot("a", ("A",)), RankedBallot("a", ("B",))], "more than one ballot"),
        ([RankedBallot("a", ("A",), weight=0)], "weight"),
    ],
)
def test_ranked_ballots_are_checked(ballots: list[RankedBallot], reason: str) -> None:
    with pytest.raises(BallotInvalid) as caught:
        irv(["A", "B"], ballots)

    assert caught.value.code == "decision.ballot_invalid"
    assert reason in caught.value.render("en")


def test_irv_without_valid_ballots_names_no_winner() -> None:
    result = irv(["A", "B"], [RankedBallot("a", ())])

    assert result.winner is None and result.outcome == "no_valid_ballots"


# ---------------------------------------------------------------- STV (Scottish rules)

FOOD = ("Oranges", "Pears", "Chocolate", "Strawberries", "Bonbons")


def food() -> list[RankedBallot]:
    """Wikipedia's STV example: 20 guests choose 3 foods."""
    return ranked(
        (4, ("Oranges",)),
        (2, ("Pears", "Oranges")),
        (8, ("Chocolate", "Strawberries")),
        (4, ("Chocolate", "Bonbons")),
        (1, ("Strawberries",)),
        (1, ("Bonbons",)),
    )


def test_stv_wikipedia_food_example_stage_by_stage() -> None:
    result = stv(FOOD, food(), 3)

    assert result.quota == 6  # ⌊20 ÷ 4⌋ + 1
    first, surplus, pears, bonbons = result.stages
    assert first.elected == ("Chocolate",)
    # Chocolate's surplus 6 of 12: transfer value 0.5 on each of its 12 papers.
    assert (surplus.source, surplus.surplus, surplus.source_votes) == (
        "Chocolate",
        "6.00000",
        "12.00000",
    )
    assert surplus.received == {"Strawberries": "4.00000", "Bonbons": "2.00000"}
    assert (pears.action, pears.source, pears.elected) == ("exclusion", "Pears", ("Oranges",))
    assert (bonbons.source, bonbons.non_transferable) == ("Bonbons", "3.00000")
    assert result.winners == ("Chocolate", "Oranges", "Strawberries")
    assert [e.by for e in result.elected] == ["quota", "quota", "last_vacancies"]


def test_stv_fractional_transfer_truncates_to_five_places_worked_by_hand() -> None:
    # 23 valid ballots, 2 seats: quota ⌊23 ÷ 3⌋ + 1 = 8. A has 13: surplus 5, and each
    # of A's papers moves at ⌊5 × 1 ÷ 13⌋ to 5 places = 0.38461 (0.384615… truncated).
    ballots = ranked(
        (9, ("A", "B")), (3, ("A", "C")), (1, ("A",)), (4, ("B",)), (5, ("C", "B")), (1, ("D",))
    )

    result = stv("ABCD", ballots, 2)

    assert result.quota == 8
    s1, s2, s3, s4 = result.stages
    assert s1.elected == ("A",)
    assert s2.received == {"B": "3.46149", "C": "1.15383"}  # 9 × 0.38461 and 3 × 0.38461
    assert s2.non_transferable == "0.38461"  # the A-only paper
    assert s2.rounding == "0.00007"  # 5 − 3.46149 − 1.15383 − 0.38461
    assert s2.votes == {"A": "8.00000", "B": "7.46149", "C": "6.15383", "D": "1.00000"}
    assert (s3.source, s3.non_transferable) == ("D", "1.00000")
    # C excluded: its 5 first preferences go to B at 1 (B reaches 12.46149 ≥ 8), and the three
    # A→C papers have no next preference left: 3 × 0.38461 is lost.
    assert (s4.source, s4.received, s4.non_transferable) == ("C", {"B": "5.00000"}, "1.15383")
    assert s4.elected == ("B",) and result.winners == ("A", "B")
    assert result.excluded == ("D", "C")
    # Every vote is accounted for: the candidates, exhausted papers and rounding sum to 23.
    final = sum(units(v) for v in s4.votes.values()) + units(s4.exhausted)
    assert final + sum(units(s.rounding) for s in result.stages) == 23 * SCALE


def test_stv_equal_votes_at_exclusion_look_back_then_lot() -> None:
    # Stage 1: X 2, Y 3, E 1. E is excluded (its paper goes to X) → X 3 = Y 3; stage 1 tells
    # them apart, so X goes. Quota for 1 seat of 16: 9; W (10) is elected at once.
    ballots = ranked((2, ("X",)), (3, ("Y",)), (1, ("E", "X")), (10, ("W",)))

    result = stv(["X", "Y", "E", "W"], ballots, 1)

    assert result.winners == ("W",)
    level = ranked((2, ("P",)), (2, ("Q",)), (9, ("R",)), (1, ("S", "R")))
    by_lot = stv("PQRS", level, 2, lot=("Q", "P", "R", "S"))
    exclusion = next(s for s in by_lot.stages if s.tie is not None)
    assert exclusion.tie is not None
    assert (exclusion.tie.by, exclusion.tie.chosen) == ("lot", "P")  # latest in the lot goes


def test_stv_elects_the_remaining_when_seats_equal_continuing_candidates() -> None:
    ballots = ranked((3, ("A", "B")), (1, ("B",)))

    result = stv(["A", "B", "C"], ballots, 3)

    # Quota ⌊4 ÷ 4⌋ + 1 = 2: A is elected on first preferences; then B and C are the only
    # continuing candidates for the two seats left, so they fill them with no transfer.
    assert [(e.candidate, e.by) for e in result.elected] == [
        ("A", "quota"),
        ("B", "last_vacancies"),
        ("C", "last_vacancies"),
    ]
    assert len(result.stages) == 1  # rule 52: A's surplus is never transferred


def test_stv_bloc_condition_names_the_winner_and_bloc_that_failed() -> None:
    chocolate = {f"m{i}" for i in range(6, 18)}  # food(): m0–m5 Oranges and Pears first
    membership = {"south": chocolate, "north": {f"m{i}" for i in range(20)} - chocolate}
    condition = BlocCondition(("south", "north"), threshold=Fraction(1, 10), basis="final")

    result = stv(FOOD, food(), 3, condition=condition, membership=membership)

    assert result.outcome == "bloc_condition_failed"
    failed = [(c.subject, c.bloc) for c in result.bloc_checks if not c.met]
    # Chocolate was elected on southern papers only, Oranges on northern ones only;
    # Strawberries held papers from both (its own and eight of Chocolate's).
    assert failed == [("Chocolate", "north"), ("Oranges", "south")]
    loose = BlocCondition(("south", "north"), threshold=Fraction(0))
    assert stv(FOOD, food(), 3, condition=loose, membership=membership).conditions_met


def test_stv_refuses_bad_seats() -> None:
    with pytest.raises(MethodInvalid):
        stv(FOOD, food(), 0)


# ---------------------------------------------------------------- score and approval


def test_score_ranks_by_total_with_means_and_distribution() -> None:
    ballots = [
        ScoreBallot("kenya", {"clinics": 5, "schools": 3}),
        ScoreBallot("india", {"clinics": 4, "schools": 5, "roads": 1}),
        ScoreBallot("france", {"clinics": 1}, weight=2),
    ]

    result = score(["roads", "schools", "clinics"], ballots)

    clinics, schools, roads = result.ranking
    assert (clinics.option, clinics.total, clinics.mean) == ("clinics", 11, Fraction(11, 4))
    assert (schools.total, schools.mean, schools.mean_of_raters) == (8, 2, Fraction(4))
    assert roads.distribution == (3, 1, 0, 0, 0, 0)  # unscored counts as 0
    assert result.top == "clinics"
    assert roundtrip(result)["ranking"][0]["mean"] == "11/4"


def test_score_equal_totals_prefer_more_top_scores_then_the_lot() -> None:
    ballots = [ScoreBallot("a", {"x": 5, "y": 3, "z": 4}), ScoreBallot("b", {"y": 2, "z": 1})]

    result = score(["y", "x", "z"], ballots)

    # x, y and z all total 5: x has a 5; z has a 4 over y's 3.
    assert [r.option for r in result.ranking] == ["x", "z", "y"]


def test_score_bloc_condition_mean_in_each_bloc() -> None:
    membership = {"south": {"kenya", "india"}, "north": {"france"}}
    condition = BlocCondition(("south", "north"), threshold=Fraction(3))
    ballots = [
        ScoreBallot("kenya", {"clinics": 5, "schools": 4}),
        ScoreBallot("india", {"clinics": 5, "schools": 3}),
        ScoreBallot("france", {"clinics": 1, "schools": 3}),
    ]

    result = score(["clinics", "schools"], ballots, condition=condition, membership=membership)

    clinics, schools = result.ranking
    assert clinics.option == "clinics" and not clinics.conditions_met
    assert [(c.bloc, c.support) for c in clinics.bloc_checks] == [("south", 5), ("north", 1)]
    assert schools.conditions_met and result.top == "schools"


@pytest.mark.parametrize("bad", [{"clinics": 6}, {"clinics": -1}, {"clinics": True}, {"x": 1}])
def test_score_refuses_out_of_range_scores(bad: dict[str, Any]) -> None:
    with pytest.raises(BallotInvalid):
        score(["clinics"], [ScoreBallot("kenya", bad)])


def test_approval_ranks_by_approvals_then_breadth() -> None:
    ballots = [
        approve("kenya", ["compute", "data"]),
        approve("india", ["data"]),
        approve("france", ["experts", "compute"], weight=2),
    ]

    result = approval(["data", "compute", "experts"], ballots)

    assert [(r.option, r.total, r.share) for r in result.ranking] == [
        ("compute", 3, Fraction(3, 4)),
        ("data", 2, Fraction(1, 2)),
        ("experts", 2, Fraction(1, 2)),
    ]
    assert result.method == "approval"


def test_dot_vote_budget_and_breadth_tie_break() -> None:
    ballots = [
        DotBallot("kenya", {"compute": 3}),
        DotBallot("india", {"data": 2, "experts": 1}),
        DotBallot("brazil", {"data": 1}),
    ]

    result = approval(["compute", "data", "experts"], ballots, dots=3)

    # compute and data both have 3 dots; data has them from two members.
    assert [r.option for r in result.ranking] == ["data", "compute", "experts"]
    with pytest.raises(BallotInvalid):
        approval(["a"], [DotBallot("kenya", {"a": 4})], dots=3)
    with pytest.raises(BallotInvalid):
        approval(["a"], [DotBallot("kenya", {"a": 2})])  # approval marks once
    with pytest.raises(BallotInvalid):
        approval(["a"], [DotBallot("kenya", {"a": 2})], dots=3, max_per_option=1)


def test_approval_bloc_condition_share_in_each_bloc() -> None:
    membership = {"south": {"kenya", "india"}, "north": {"france"}}
    condition = BlocCondition(("south", "north"), threshold=Fraction(1, 2))
    ballots = [
        approve("kenya", ["compute"]),
        approve("india", ["compute", "data"]),
        approve("france", ["data"]),
    ]

    result = approval(["compute", "data"], ballots, condition=condition, membership=membership)

    compute, data = result.ranking
    assert compute.option == "compute" and not compute.conditions_met  # no northern support
    assert data.conditions_met and result.top == "data"


# ---------------------------------------------------------------- properties

CANDIDATES = ("A", "B", "C", "D", "E", "F")


@st.composite
def profiles(draw: Any, max_ballots: int = 40) -> tuple[tuple[str, ...], list[RankedBallot]]:
    """Some candidates and ballots ranking a prefix of a permutation of them, weights 1–3."""
    names = CANDIDATES[: draw(st.integers(2, len(CANDIDATES)))]
    rankings = draw(
        st.lists(
            st.permutations(names).flatmap(
                lambda p: st.integers(0, len(p)).map(lambda k: tuple(p[:k]))
            ),
            max_size=max_ballots,
        )
    )
    weights = draw(st.lists(st.integers(1, 3), min_size=len(rankings), max_size=len(rankings)))
    return names, [RankedBallot(f"m{i}", r, w) for i, (r, w) in enumerate(zip(rankings, weights))]


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(profiles())
def test_irv_a_majority_of_first_preferences_wins_at_once(
    profile: tuple[tuple[str, ...], list[RankedBallot]],
) -> None:
    names, ballots = profile
    first: dict[str, int] = {}
    for b in ballots:
        if b.ranking:
            first[b.ranking[0]] = first.get(b.ranking[0], 0) + b.weight
    valid = sum(first.values())

    result = irv(names, ballots)

    for candidate, votes in first.items():
        if 2 * votes > valid:
            assert result.winner == candidate and len(result.rounds) == 1


@PROPERTY
@given(profiles(), st.integers(1, 7))
def test_stv_elects_exactly_min_seats_candidates_and_loses_no_vote(
    profile: tuple[tuple[str, ...], list[RankedBallot]], seats: int
) -> None:
    names, ballots = profile

    result = stv(names, ballots, seats)

    assert len(result.winners) == len(set(result.winners)) == min(seats, len(names))
    counted = 0
    for stage in result.stages:
        counted += units(stage.rounding)
        total = sum(units(v) for v in stage.votes.values()) + units(stage.exhausted) + counted
        assert total == result.valid * SCALE


@PROPERTY
@given(profiles(), st.integers(1, 4), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_ballot_order(
    profile: tuple[tuple[str, ...], list[RankedBallot]], seats: int, rng: random.Random
) -> None:
    names, ballots = profile
    shuffled = list(ballots)
    rng.shuffle(shuffled)
    scores = [ScoreBallot(b.member, {c: i % 6 for i, c in enumerate(b.ranking)}) for b in ballots]
    marks = [approve(b.member, b.ranking[:2], b.weight) for b in ballots]
    order = list(range(len(ballots)))
    rng.shuffle(order)

    assert irv(names, ballots).to_json() == irv(names, shuffled).to_json()
    assert stv(names, ballots, seats).to_json() == stv(names, shuffled, seats).to_json()
    assert score(names, scores).to_json() == score(names, [scores[i] for i in order]).to_json()
    assert approval(names, marks).to_json() == approval(names, [marks[i] for i in order]).to_json()
    stances = ("consent", "stand_aside", "block")
    answers = [Response(b.member, stances[len(b.ranking) % 3], "r", b.weight) for b in ballots]
    assert (
        consent(answers, cap=2).to_json() == consent([answers[i] for i in order], cap=2).to_json()
    )


@PROPERTY
@given(profiles(max_ballots=60), st.integers(1, 4))
def test_plain_and_array_counts_agree_on_every_figure(
    profile: tuple[tuple[str, ...], list[RankedBallot]], seats: int
) -> None:
    names, ballots = profile

    assert irv(names, ballots, fast=True).to_json() == irv(names, ballots, fast=False).to_json()
    fast = stv(names, ballots, seats, fast=True)
    plain = stv(names, ballots, seats, fast=False)
    assert fast.to_json() == plain.to_json()


def test_plain_and_array_counts_agree_on_a_large_election() -> None:
    rng = random.Random(3)
    names = [f"c{i}" for i in range(12)]
    ballots = [
        RankedBallot(f"m{i}", tuple(rng.sample(names, rng.randint(1, 12)))) for i in range(3000)
    ]

    membership = {"odd": {f"m{i}" for i in range(1, 3000, 2)}, "low": {"m0", "m2", "m4"}}
    condition = BlocCondition(("odd", "low"), threshold=Fraction(1, 20), basis="final")
    bloc: dict[str, Any] = {"condition": condition, "membership": membership}

    fast = stv(names, ballots, 4, fast=True, **bloc)
    assert fast == stv(names, ballots, 4, fast=False, **bloc)
    assert len(fast.bloc_checks) == 8 and {c.met for c in fast.bloc_checks} == {True, False}
    assert irv(names, ballots, fast=True, **bloc) == irv(names, ballots, fast=False, **bloc)


# ---------------------------------------------------------------- cross-check with pyrankvote

pyrankvote = pytest.importorskip("pyrankvote")


def random_profile(rng: random.Random, voters: int, candidates: int) -> tuple[list[str], list[Any]]:
    """Ballots with popular and unpopular candidates, each ranking a random number of them."""
    names = [f"c{i}" for i in range(candidates)]
    appeal = [rng.random() ** 2 + 0.01 for _ in names]
    ballots = []
    for i in range(voters):
        pool, weights, ranking = list(names), list(appeal), []
        for _ in range(rng.randint(1, candidates)):
            k = rng.choices(range(len(pool)), weights=weights)[0]
            ranking.append(pool.pop(k))
            weights.pop(k)
        ballots.append(RankedBallot(f"m{i}", tuple(ranking)))
    return names, ballots


def peer_winners(names: list[str], ballots: list[RankedBallot], seats: int | None) -> set[str]:
    people = {n: pyrankvote.Candidate(n) for n in names}
    theirs = [pyrankvote.Ballot([people[c] for c in b.ranking]) for b in ballots]
    if seats is None:
        result = pyrankvote.instant_runoff_voting(list(people.values()), theirs)
    else:
        result = pyrankvote.single_transferable_vote(list(people.values()), theirs, seats)
    return {c.name for c in result.get_winners()}


def test_irv_agrees_with_pyrankvote_where_no_tie_decides() -> None:
    # pyrankvote elects at ≥ half of the continuing ballots (we need more than half), breaks
    # ties by later preferences and at random, and eliminates several trailing candidates at
    # once. Bulk elimination gives the same winner; the other two only matter when our count
    # had a tie or a candidate with exactly half — those profiles are skipped (and counted).
    rng = random.Random(2026)
    compared = 0
    for _ in range(80):
        names, ballots = random_profile(rng, rng.randint(5, 200), rng.randint(2, 7))
        ours = irv(names, ballots)
        decided_by_tie = any(
            r.tie is not None or 2 * max(r.tallies.values()) == r.continuing for r in ours.rounds
        )
        if decided_by_tie:
            continue
        compared += 1
        assert {ours.winner} == peer_winners(names, ballots, None)
    assert compared >= 60


def close_call(result: Any) -> bool:
    """Whether our STV count turned on something pyrankvote counts differently: a tie; a
    continuing candidate within one vote below our quota (pyrankvote's quota is valid ÷
    (seats + 1), up to one vote lower than Droop's); or an exclusion decided by less than 5 % of
    the quota (pyrankvote moves an excluded candidate's votes spread evenly over its ballots,
    not at each paper's own value, so its totals drift from ours: we saw an exclusion at a
    2.6 % margin go the other way)."""
    q = result.quota * SCALE
    for now, then in zip(result.stages, [*result.stages[1:], None]):
        if now.tie is not None:
            return True
        votes = {c: units(v) for c, v in now.votes.items()}
        if any(q - SCALE <= v < q for v in votes.values()):
            return True
        if then is not None and then.action == "exclusion":
            rest = [v for c, v in votes.items() if c != then.source and 0 < v < q]
            if rest and min(rest) - votes[then.source] < q // 20:
                return True
    return False


def test_stv_elects_the_same_set_as_pyrankvote_unless_the_count_was_close() -> None:
    # pyrankvote's STV is not the Scottish rules: Hagenbach-Bischoff quota (valid ÷ (seats+1),
    # elected at ≥), an excluded candidate's total spread evenly over its ballots, bulk
    # exclusion, and it raises "Illegal state" when seats ≥ candidates (so seats < candidates
    # here). On seeded random elections the elected sets must agree whenever our count was not
    # a close call; where it was, they may differ. Over 800 random elections (seeds 101, 202)
    # 9 differed, all close calls; 389 of the 800 were close calls by this measure.
    rng = random.Random(7)
    compared = agreed = 0
    for _ in range(60):
        names, ballots = random_profile(rng, rng.randint(20, 300), rng.randint(3, 8))
        seats = rng.randint(1, len(names) - 1)
        ours = stv(names, ballots, seats)
        same = set(ours.winners) == peer_winners(names, ballots, seats)
        compared += 1
        agreed += same
        assert same or close_call(ours), (names, seats)
    assert agreed >= compared * 9 // 10
