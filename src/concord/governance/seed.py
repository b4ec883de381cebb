"""Demo step: three proposals deliberated by the demo members.

- a standard, adopted: open licences, declared data provenance, DP ε ≤ 8 with personal data;
- a project, adopted: logistic regression on handwritten digits across both blocs;
- a resolution, rejected: a compute levy the Global North's members do not carry;
- an election: the three-member bureau, by single transferable vote (Scottish rules), Fiji
  voting by proxy through Australia (counted in Fiji's own bloc, the Global South);
- the capacity-building priorities (the five areas of the Action Plan), ranked by a score
  vote; capacity receives the ranking (the `governance.options_ranked` event) and orders the
  programme list by it.

Ballots and proxies are signed with each member's demo key, exactly as a delegate's machine
would.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.errors import N_
from concord.governance import ballots, deliberation, proposals, proxies
from concord.governance.tables import Proposal
from concord.members import keys
from concord.members.blocs import bloc_member_ids
from concord.members.tables import Member, Person
from concord.seeding import World

STEP = N_("Proposals, deliberation and decisions")

STANDARD_RULES: dict[str, Any] = {
    "blocking": True,
    "rules": [
        {
            "id": "open-licence",
            "subject": "model",
            "expression": 'has(card.license) && card.license in ["apache-2.0", "mit", '
            '"bsd-3-clause", "cc-by-4.0", "openrail", "openrail++", "bigscience-openrail-m"]',
            "explanation": "The licence is OSI-approved or an open RAIL licence.",
        },
        {
            "id": "data-provenance",
            "subject": "model",
            "expression": "has(card.datasets) && size(card.datasets) > 0",
            "explanation": "Training data provenance is declared.",
        },
        {
            "id": "dp-personal-data",
            "subject": "job",
            # At creation the spec's budget is checked; at publication `job.privacy.achieved`
            # is present too, and what the run achieved must meet the same bound.
            "expression": "!job.privacy.personal_data || (job.privacy.differential_privacy "
            "!= null && job.privacy.differential_privacy.epsilon <= 8.0 && "
            "(!has(job.privacy.achieved) || (job.privacy.achieved != null && "
            "job.privacy.achieved.epsilon <= 8.0)))",
            "explanation": "Differential privacy with ε ≤ 8 for projects with personal data.",
        },
        {
            "id": "open-result",
            "subject": "job",
            "expression": 'job.licence in ["Apache-2.0", "MIT", "BSD-3-Clause", "CC-BY-4.0"]',
            "explanation": "The trained model is released under an open licence.",
        },
    ],
}

PROJECT_SPEC: dict[str, Any] = {
    # Logistic regression on the 8×8 digits (650 parameters): the noise client-level DP puts
    # on the mean of five members' updates is z·C/5 in every coordinate, so its norm grows as
    # √(parameters) while the signal stays at most C; on the 2NN (199,210 parameters) it
    # would be 17 times larger against the same signal.
    "task": "logreg-digits",
    "participants": {"members": ["kenya", "brazil", "india", "france", "germany"]},
    # Simulated on the demo's Dirichlet(1) split with these settings (six seeds): 86–90 % on
    # the 360 held-out digits, against 95 % without DP; at ε = 8 it would be 29–56 %
    # (`python benchmarks/privacy.py --demo`).
    "rounds": 12,
    "min_participants": 3,
    "strategy": {"name": "fedavg"},
    "local": {"epochs": 5, "batch_size": 10, "learning_rate": 0.1},
    "privacy": {
        # Digits are not personal data, so the standard's ε ≤ 8 does not bind; the card states
        # the ε the accountant computed from the noise the nodes actually added.
        "personal_data": False,
        "differential_privacy": {
            "epsilon": 32,  # the budget: twelve rounds at z = 0.68, q = 1 come to ε ≈ 31.5
            "delta": 0.001,  # the default 1/N^1.1 would be 0.17 with five members
            "clip_norm": 1.0,
            "noise_multiplier": 0.68,
            # Each node clips its own update and adds its share of the noise, then masks it:
            # the hub only ever holds the noised sum (secure aggregation needs this mode).
            "noise": "distributed",
        },
        # SecAgg+ among the five; a delta's coordinates (clipped to C = 1, plus noise of
        # σ = 0.3 a node) are quantised within ±2.
        "secure_aggregation": {"clip_range": 2.0},
    },
    "publish_as": "india/handwritten-digits",
    "licence": "Apache-2.0",
}

# (title, kind, sponsor, co-sponsors, texts, body, statements as (text, stance))
# stance: "all" everyone tends to agree; "south" the South agrees, the North disagrees; "north"
# the reverse; "split" members disagree across blocs.
PROPOSALS: list[dict[str, Any]] = [
    {
        "title": "Standard for open and accountable shared models",
        "kind": "standard",
        "sponsor": "kenya",
        "cosponsors": ["france", "brazil"],
        "texts": {
            "en": "Models published in the commons carry an open licence and declare the data "
            "they were trained on; joint projects that use personal data apply differential "
            "privacy with ε no greater than 8.",
            "fr": "Les modèles publiés dans le patrimoine commun portent une licence ouverte et "
            "déclarent leurs données d'entraînement ; les projets communs qui utilisent des "
            "données personnelles appliquent une confidentialité différentielle avec ε ≤ 8.",
            "es": "Los modelos publicados en el acervo común llevan una licencia abierta y "
            "declaran sus datos de entrenamiento; los proyectos conjuntos con datos personales "
            "aplican privacidad diferencial con ε no mayor que 8.",
        },
        "body": STANDARD_RULES,
        "statements": [
            ("Open licences let small labs build on shared models.", "all"),
            ("Declaring training data is the minimum for trust.", "all"),
            ("ε = 8 is too weak a guarantee for health data.", "north"),
            ("Strict privacy budgets make models useless for small countries.", "south"),
            ("Model cards should be available in all six UN languages.", "all"),
        ],
        "outcome": "adopted",
    },
    {
        "title": "Handwritten digit recognition across five continents",
        "kind": "project",
        "sponsor": "india",
        "cosponsors": ["germany"],
        "texts": {
            "en": "A federated logistic regression on handwritten digits, trained by members "
            "from both blocs on data that never leaves them, as the organisation's first joint "
            "training exercise.",
            "zh": "联邦逻辑回归手写数字识别项目：来自两个集团的成员在不离开本地的数据上共同训练，"
            "作为本组织的第一次联合训练演练。",
        },
        "body": PROJECT_SPEC,
        "statements": [
            ("A small first project builds confidence in the infrastructure.", "all"),
            ("Eight rounds are enough to show the method works.", "all"),
            ("We should start with a real public-health task instead.", "south"),
            ("Each node must report its energy use.", "north"),
        ],
        "outcome": "adopted",
    },
    {
        "title": "Levy on large AI developers to fund compute in the Global South",
        "kind": "resolution",
        "sponsor": "ethiopia",
        "cosponsors": ["nepal"],
        "texts": {
            "en": "The organisation calls for a levy of 1% of the revenue of developers of large "
            "AI models, paid into a fund that provides compute to members in the Global South.",
            "ar": "تدعو المنظمة إلى فرض رسم قدره 1٪ من إيرادات مطوري نماذج الذكاء الاصطناعي "
            "الكبيرة، يُدفع إلى صندوق يوفر قدرات الحوسبة للأعضاء في الجنوب العالمي.",
        },
        "body": {},
        "statements": [
            ("Compute is the main barrier to AI capacity in our region.", "all"),
            ("A levy on revenue is the fairest way to fund shared compute.", "south"),
            ("A levy would push development out of member countries.", "north"),
            ("Voluntary pledges have never reached the promised amounts.", "south"),
            ("Shared compute should be governed by all members equally.", "all"),
        ],
        "consultation": True,
        "outcome": "rejected",
    },
]


BUREAU = ["Amina Odhiambo", "Bao Lin", "Camille Laurent", "Diego Ramírez", "Emma Nakamura"]
# The five areas of the Action Plan, by the names capacity gives them: the adopted ranking
# orders the programme list (capacity links an option to the area it names).
PRIORITIES = [
    "Infrastructure",
    "Data management",
    "Security governance",
    "Talent training",
    "Industrial empowerment",
]
DECISIONS: list[dict[str, Any]] = [
    {
        "title": "Election of the bureau 2027",
        "texts": {
            "en": "The assembly elects a bureau of three to prepare its sessions.",
            "fr": "L'assemblée élit un bureau de trois membres pour préparer ses sessions.",
        },
        "sponsor": "kenya",
        "method": {"name": "stv", "options": BUREAU, "seats": 3},
        "proxy": ("fiji", "australia"),
    },
    {
        "title": "Capacity-building priorities 2027",
        "texts": {
            "en": "The assembly ranks the five areas of the Action Plan as the priorities of "
            "next year's capacity-building programme; the programme list follows its order.",
            "fr": "L'assemblée classe les cinq domaines du Plan d'action comme priorités du "
            "programme de renforcement des capacités ; la liste des programmes suit cet ordre.",
        },
        "sponsor": "senegal",
        "method": {"name": "score", "options": PRIORITIES},
    },
]


def _ranking(south: bool, turn: int) -> list[str]:
    """A deterministic ranking: each bloc spreads its first preferences over its favourites."""
    favourites = [0, 3, 0, 2, 1] if south else [2, 0, 3, 2]
    first = favourites[turn % len(favourites)]
    rest = [i for i in (0, 2, 1, 3, 4) if i != first]
    return [BUREAU[first], *(BUREAU[i] for i in rest[: 2 + turn % 2])]


def _scores(south: bool, turn: int) -> dict[str, int]:
    base = [5, 3, 4, 2, 4] if south else [3, 4, 5, 4, 2]
    return {
        o: max(0, b - (1 if (turn + j) % 3 == 0 else 0))
        for j, (o, b) in enumerate(zip(PRIORITIES, base, strict=True))
    }


def _person(db: Session, slug: str) -> Person | None:
    return db.scalars(select(Person).where(Person.email == f"delegate@{slug}.example")).first()


def _lean(stance: str, south: bool, turn: int) -> str:
    """A deterministic but not uniform vote, so the map shows groups and some noise."""
    if turn % 7 == 3:
        return "pass"
    if stance == "all":
        return "disagree" if turn % 11 == 5 else "agree"
    agrees = south if stance == "south" else not south
    if turn % 9 == 4:
        agrees = not agrees
    return "agree" if agrees else "disagree"


def _ballot_choice(spec: dict[str, Any], slug: str, south: bool, turn: int) -> tuple[str, str]:
    if spec["outcome"] == "rejected":
        if south:
            return "yes", ""
        return ("yes", "") if turn % 5 == 0 else ("no", "")
    if slug == "norway" and spec["kind"] == "standard":
        return "objection", "ε = 8 is too weak for health data; we ask for ε ≤ 3."
    if turn % 8 == 7:
        return "abstain", ""
    return "yes", ""


def seed(world: World) -> None:
    slugs: list[str] = world.facts.get("members", [])
    with world.sessions() as db:
        members = {m.slug: m for m in db.scalars(select(Member)).all() if m.slug in slugs}
        south_ids = bloc_member_ids(db, "global-south")
        for spec in PROPOSALS:
            if db.scalars(select(Proposal).where(Proposal.title == spec["title"])).first():
                continue
            sponsor = _person(db, spec["sponsor"])
            if sponsor is None or any(c not in members for c in spec["cosponsors"]):
                continue
            p = proposals.create(
                db,
                sponsor,
                kind=spec["kind"],
                title=spec["title"],
                texts=spec["texts"],
                body=spec["body"],
                cosponsors=spec["cosponsors"],
            )
            proposals.open_deliberation(db, sponsor, p)
            if spec.get("consultation"):
                proposals.set_consultation(db, sponsor, p, True)
            speakers = [spec["sponsor"], *spec["cosponsors"], *slugs]
            items = []
            for i, (text, _stance) in enumerate(spec["statements"]):
                speaker = _person(db, speakers[i % len(speakers)])
                assert speaker is not None
                items.append(deliberation.add_statement(db, speaker, p, text))
            for turn, slug in enumerate(slugs):
                person = _person(db, slug)
                if person is None or slug not in members:
                    continue
                south = members[slug].id in south_ids
                for j, (statement, (_text, stance)) in enumerate(
                    zip(items, spec["statements"], strict=True)
                ):
                    deliberation.vote(db, person, p, statement.id, _lean(stance, south, turn + j))
            if spec.get("consultation"):
                observer = db.scalars(
                    select(Person).where(Person.email == "observer@public.example")
                ).first()
                if observer is not None:
                    for j, statement in enumerate(items):
                        deliberation.vote(
                            db, observer, p, statement.id, "agree" if j % 2 else "pass"
                        )
            deliberation.opinion_map(db, p)
            proposals.open_ballot(db, sponsor, p)
            for turn, slug in enumerate(slugs):
                person = _person(db, slug)
                key_path = world.keys_dir / f"{slug}.pem"
                if person is None or slug not in members or not key_path.exists():
                    continue
                choice, reason = _ballot_choice(spec, slug, members[slug].id in south_ids, turn)
                payload = ballots.make_payload(p.reference, slug, choice, reason)
                signature = keys.sign(keys.load_private(key_path), ballots.message(payload))
                ballots.cast(db, person, p, [{"payload": payload, "signature": signature}])
            decision = ballots.close(db, sponsor, p)
            world.notes.append(f"{p.reference} “{p.title}”: {decision.outcome}")
        db.commit()
        for spec in DECISIONS:
            _decide_by_method(world, db, spec, members, south_ids)
        db.commit()


def _decide_by_method(
    world: World,
    db: Session,
    spec: dict[str, Any],
    members: dict[str, Member],
    south: Collection[int],
) -> None:
    """A resolution decided by a decision method, with signed method ballots (and a proxy)."""
    decided = world.facts.setdefault("decided_by_method", {})
    done = db.scalars(select(Proposal).where(Proposal.title == spec["title"])).first()
    if done is not None:
        decided[spec["method"]["name"]] = done.reference
        return
    sponsor = _person(db, spec["sponsor"])
    if sponsor is None:
        return
    p = proposals.create(
        db,
        sponsor,
        kind="resolution",
        title=spec["title"],
        texts=spec["texts"],
        method=spec["method"],
    )
    proposals.open_deliberation(db, sponsor, p)
    proposals.open_ballot(db, sponsor, p)
    name = spec["method"]["name"]
    giver = ""
    if spec.get("proxy"):
        giver, holder = spec["proxy"]
        person, key_path = _person(db, giver), world.keys_dir / f"{giver}.pem"
        if person is not None and key_path.exists() and holder in members:
            payload = proxies.make_payload(giver, holder, p.reference)
            signature = keys.sign(keys.load_private(key_path), proxies.message(payload))
            proxies.grant(db, person, {"payload": payload, "signature": signature})
    for turn, slug in enumerate(world.facts.get("members", [])):
        person, key_path = _person(db, slug), world.keys_dir / f"{slug}.pem"
        if person is None or slug not in members or slug == giver or not key_path.exists():
            continue
        in_south = members[slug].id in south
        vote: Any = _ranking(in_south, turn) if name == "stv" else _scores(in_south, turn)
        payload = ballots.make_payload(p.reference, slug, name, "", vote=vote)
        signature = keys.sign(keys.load_private(key_path), ballots.message(payload))
        ballots.cast(db, person, p, [{"payload": payload, "signature": signature}])
    decision = ballots.close(db, sponsor, p)
    decided[name] = p.reference
    ranked = ", ".join(o["option"] for o in decision.arithmetic["ranked"])
    world.notes.append(f"{p.reference} “{p.title}”: {ranked}")
