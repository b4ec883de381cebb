"""HTTP API of the members domain: members, countries, blocs, people, tokens and keys."""

from __future__ import annotations

from fastapi import APIRouter, status

from concord.http import Db
from concord.members import blocs, directory, keys, people, tokens
from concord.members.auth import CurrentPerson
from concord.members.countries import all_countries, country
from concord.members.models import (
    BlocCreate,
    BlocPublic,
    CountryPublic,
    KeyCreate,
    KeyPublic,
    MemberCreate,
    MemberPublic,
    PersonCreate,
    PersonPublic,
    StandingChange,
    StatusChangePublic,
    TokenCreate,
    TokenIssued,
    TokenPublic,
)
from concord.members.tables import MemberKey
from concord.validation import Id

router = APIRouter(prefix="/api", tags=["members"])


@router.get("/members")
def list_members(
    db: Db,
    q: str = "",
    region: str = "",
    income_group: str = "",
    status: str = "",
    kind: str = "",
) -> list[MemberPublic]:
    """The member directory, filtered by name, UN region, income group, standing or kind."""
    views = directory.list_members(
        db, query=q, region=region, income_group=income_group, status=status, kind=kind
    )
    return [MemberPublic.of(v) for v in views]


@router.get("/members/{ref}")
def get_member(ref: str, db: Db) -> MemberPublic:
    """One member by id or handle, with its country and blocs."""
    return MemberPublic.of(directory.view(db, directory.get_member(db, ref)))


@router.get("/members/{ref}/history")
def member_history(ref: str, db: Db) -> list[StatusChangePublic]:
    """Admission, suspensions, reinstatements and withdrawal, with dates and log indices."""
    member = directory.get_member(db, ref)
    return [StatusChangePublic.of(row) for row in member.history]


@router.post("/members", status_code=status.HTTP_201_CREATED)
def admit_member(body: MemberCreate, db: Db, person: CurrentPerson) -> MemberPublic:
    """Admits a member (secretariat). Logged."""
    people.require_role(person, "secretariat")
    member = directory.admit(
        db,
        slug=body.slug,
        name=body.name,
        kind=body.kind,
        country_code=body.country,
        reason=body.reason,
    )
    db.commit()
    return MemberPublic.of(directory.view(db, member))


def _change(
    ref: str, body: StandingChange, db: Db, person: CurrentPerson, action: str
) -> MemberPublic:
    people.require_role(person, "secretariat")
    member = directory.get_member(db, ref)
    getattr(directory, action)(db, member, body.reason)
    db.commit()
    return MemberPublic.of(directory.view(db, member))


@router.post("/members/{ref}/suspend")
def suspend_member(ref: str, body: StandingChange, db: Db, person: CurrentPerson) -> MemberPublic:
    """Suspends a member (secretariat). Logged."""
    return _change(ref, body, db, person, "suspend")


@router.post("/members/{ref}/reinstate")
def reinstate_member(ref: str, body: StandingChange, db: Db, person: CurrentPerson) -> MemberPublic:
    """Lifts a suspension (secretariat). Logged."""
    return _change(ref, body, db, person, "reinstate")


@router.post("/members/{ref}/withdraw")
def withdraw_member(ref: str, body: StandingChange, db: Db, person: CurrentPerson) -> MemberPublic:
    """Records a withdrawal (secretariat). Logged."""
    return _change(ref, body, db, person, "withdraw")


@router.get("/members/{ref}/keys")
def member_keys(ref: str, db: Db) -> list[KeyPublic]:
    """The member's public keys, current and retired."""
    from sqlalchemy import select

    member = directory.get_member(db, ref)
    rows = db.scalars(
        select(MemberKey).where(MemberKey.member_id == member.id).order_by(MemberKey.id)
    ).all()
    return [KeyPublic.of(k) for k in rows]


@router.post("/members/{ref}/keys", status_code=status.HTTP_201_CREATED)
def register_key(ref: str, body: KeyCreate, db: Db, person: CurrentPerson) -> KeyPublic:
    """Registers the member's public key (its own delegate only), retiring the old one."""
    member = people.acting_member(db, person, ref)
    key = keys.register(db, member, body.public_key)
    db.commit()
    return KeyPublic.of(key)


@router.get("/countries")
def list_countries() -> list[CountryPublic]:
    """Every country with its UN M49 region, income group and G77 membership."""
    return [_country(c.iso2) for c in all_countries().values()]


@router.get("/countries/{code}")
def get_country(code: str) -> CountryPublic:
    """One country by ISO 3166-1 alpha-2 or alpha-3 code."""
    return _country(code)


def _country(code: str) -> CountryPublic:
    c = country(code)
    return CountryPublic(
        iso2=c.iso2,
        iso3=c.iso3,
        m49=c.m49,
        name=c.name,
        region=c.region,
        sub_region=c.sub_region,
        intermediate_region=c.intermediate_region,
        income_group=c.income_group,
        ldc=c.ldc,
        lldc=c.lldc,
        sids=c.sids,
        g77=c.g77,
        global_south=c.global_south,
    )


@router.get("/blocs")
def list_blocs(db: Db) -> list[BlocPublic]:
    """Every bloc the charter can name, with its active members."""
    return [
        BlocPublic(name=b.name, title=b.title, kind=b.kind, members=sorted(b.member_ids))
        for b in blocs.list_blocs(db)
    ]


@router.post("/blocs", status_code=status.HTTP_201_CREATED)
def create_bloc(body: BlocCreate, db: Db, person: CurrentPerson) -> BlocPublic:
    """Creates a custom bloc (secretariat)."""
    people.require_role(person, "secretariat")
    ids = [directory.get_member(db, ref).id for ref in body.members]
    bloc = blocs.create_custom_bloc(db, body.name, body.title, ids, body.description)
    db.commit()
    members = sorted(blocs.bloc_member_ids(db, bloc.name, active_only=False))
    return BlocPublic(name=bloc.name, title=bloc.title, kind="custom", members=members)


@router.get("/me")
def whoami(person: CurrentPerson) -> PersonPublic:
    """The person the token belongs to."""
    return PersonPublic.of(person)


@router.post("/people", status_code=status.HTTP_201_CREATED)
def add_person(body: PersonCreate, db: Db, person: CurrentPerson) -> PersonPublic:
    """Registers a person (secretariat)."""
    people.require_role(person, "secretariat")
    added = people.add_person(
        db, name=body.name, email=body.email, role=body.role, member=body.member
    )
    db.commit()
    return PersonPublic.of(added)


@router.delete("/people/{ref}")
def remove_person(ref: str, db: Db, person: CurrentPerson) -> PersonPublic:
    """Removes a person (secretariat): their tokens are revoked and their browsers signed out."""
    people.require_role(person, "secretariat")
    removed = people.remove_person(db, people.get_person(db, ref))
    db.commit()
    return PersonPublic.of(removed)


@router.get("/tokens")
def list_tokens(db: Db, person: CurrentPerson) -> list[TokenPublic]:
    """Your tokens (never their secrets)."""
    return [TokenPublic.of(t) for t in tokens.tokens_of(db, person)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, db: Db, person: CurrentPerson) -> TokenIssued:
    """Issues a token for yourself, or for anyone (secretariat). The secret is shown once."""
    owner = person
    if body.person is not None:
        people.require_role(person, "secretariat")
        owner = people.get_person(db, body.person)
    issued = tokens.issue(db, owner, label=body.label, days=body.days)
    db.commit()
    return TokenIssued(**TokenPublic.of(issued.token).model_dump(), secret=issued.secret)


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: Id, db: Db, person: CurrentPerson) -> TokenPublic:
    """Revokes one of your tokens, or anyone's (secretariat)."""
    from concord.members.tables import ApiToken

    row = db.get(ApiToken, token_id)
    if row is None or (row.person_id != person.id and person.role != "secretariat"):
        raise tokens.UnknownToken(token=str(token_id))
    revoked = tokens.revoke(db, token_id)
    db.commit()
    return TokenPublic.of(revoked)
