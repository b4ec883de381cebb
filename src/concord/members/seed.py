"""Demo step: about thirty members from every UN region, both blocs and every income group,
with a delegate, an API token and a key each."""

from __future__ import annotations

import json
import os

from sqlalchemy import select

from concord.errors import N_
from concord.members import keys, people, tokens
from concord.members.directory import admit
from concord.members.tables import Member, MemberKey, Person
from concord.seeding import World

STEP = N_("Members, delegates and keys")

# (handle, name, kind, country)
MEMBERS: list[tuple[str, str, str, str]] = [
    ("kenya", "Republic of Kenya", "country", "KE"),
    ("nigeria", "Federal Republic of Nigeria", "country", "NG"),
    ("ethiopia", "Federal Democratic Republic of Ethiopia", "country", "ET"),
    ("malawi", "Republic of Malawi", "country", "MW"),
    ("rwanda", "Republic of Rwanda", "country", "RW"),
    ("senegal", "Republic of Senegal", "country", "SN"),
    ("egypt", "Arab Republic of Egypt", "country", "EG"),
    ("south-africa", "Republic of South Africa", "country", "ZA"),
    ("morocco", "Kingdom of Morocco", "country", "MA"),
    ("brazil", "Federative Republic of Brazil", "country", "BR"),
    ("mexico", "United Mexican States", "country", "MX"),
    ("chile", "Republic of Chile", "country", "CL"),
    ("colombia", "Republic of Colombia", "country", "CO"),
    ("jamaica", "Jamaica", "country", "JM"),
    ("canada", "Canada", "country", "CA"),
    ("china", "People's Republic of China", "country", "CN"),
    ("india", "Republic of India", "country", "IN"),
    ("indonesia", "Republic of Indonesia", "country", "ID"),
    ("lao-pdr", "Lao People's Democratic Republic", "country", "LA"),
    ("viet-nam", "Socialist Republic of Viet Nam", "country", "VN"),
    ("bangladesh", "People's Republic of Bangladesh", "country", "BD"),
    ("nepal", "Federal Democratic Republic of Nepal", "country", "NP"),
    ("singapore", "Republic of Singapore", "country", "SG"),
    ("japan", "Japan", "country", "JP"),
    ("korea", "Republic of Korea", "country", "KR"),
    ("france", "French Republic", "country", "FR"),
    ("germany", "Federal Republic of Germany", "country", "DE"),
    ("norway", "Kingdom of Norway", "country", "NO"),
    ("poland", "Republic of Poland", "country", "PL"),
    ("fiji", "Republic of Fiji", "country", "FJ"),
    ("australia", "Commonwealth of Australia", "country", "AU"),
    ("uon", "University of Nairobi", "university", "KE"),
    ("iisc", "Indian Institute of Science", "university", "IN"),
    ("fiocruz", "Fundação Oswaldo Cruz", "lab", "BR"),
    ("inria", "Inria", "lab", "FR"),
]
SECRETARIAT = "secretariat@concord.example"


def seed(world: World) -> None:
    secrets: dict[str, str] = {}
    token_file = world.settings.data_dir / "demo-tokens.json"
    if token_file.exists():
        secrets = json.loads(token_file.read_text())
    with world.sessions() as db:
        for slug, name, kind, code in MEMBERS:
            member = db.scalars(select(Member).where(Member.slug == slug)).first()
            if member is None:
                member = admit(
                    db,
                    slug=slug,
                    name=name,
                    kind=kind,
                    country_code=code,
                    reason="Founding member (demo)",
                )
            email = f"delegate@{slug}.example"
            person = db.scalars(select(Person).where(Person.email == email)).first()
            if person is None:
                person = people.add_person(
                    db, name=f"Delegate of {name}", email=email, role="delegate", member=slug
                )
            if slug not in secrets:
                secrets[slug] = tokens.issue(db, person, label="demo", days=365).secret
            key_path = world.keys_dir / f"{slug}.pem"
            has_key = db.scalars(select(MemberKey).where(MemberKey.member_id == member.id)).first()
            if not key_path.exists() or has_key is None:
                private = keys.generate()
                keys.register(db, member, keys.public_base64(private))
                keys.save_private(private, key_path)
        staff = db.scalars(select(Person).where(Person.email == SECRETARIAT)).first()
        if staff is None:
            staff = people.add_person(db, name="Secretariat", email=SECRETARIAT, role="secretariat")
        if "secretariat" not in secrets:
            secrets["secretariat"] = tokens.issue(db, staff, label="demo", days=365).secret
        observer_email = "observer@public.example"
        observer = db.scalars(select(Person).where(Person.email == observer_email)).first()
        if observer is None:
            observer = people.add_person(
                db, name="Public observer", email=observer_email, role="observer"
            )
        if "observer" not in secrets:
            secrets["observer"] = tokens.issue(db, observer, label="demo", days=365).secret
        db.commit()
    world.settings.data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(secrets, handle, indent=1)
    world.facts["tokens"] = secrets
    world.facts["members"] = [m[0] for m in MEMBERS]
    world.notes.append(
        f"{len(MEMBERS)} members with delegates and keys. Sign in with a token from "
        f"{token_file} (e.g. the one for “kenya” or “secretariat”)."
    )
