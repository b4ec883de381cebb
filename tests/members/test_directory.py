"""The member directory, countries and blocs, through the library."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from concord.ledger.tables import LogEntry
from concord.members import blocs, directory
from concord.members.countries import UnknownCountry, all_countries, country
from concord.members.tables import Member


def test_country_table_is_complete() -> None:
    countries = all_countries()
    un = [c for c in countries.values() if c.un_member]
    assert len(un) == 193
    assert {c.region for c in un} == {"Africa", "Americas", "Asia", "Europe", "Oceania"}
    assert country("KEN").iso2 == "KE"
    ke = country("ke")
    assert (ke.region, ke.sub_region, ke.intermediate_region) == (
        "Africa",
        "Sub-Saharan Africa",
        "Eastern Africa",
    )
    assert ke.global_south and country("CN").global_south and not country("DE").global_south
    assert country("ET").ldc and country("NP").lldc and country("FJ").sids
    assert {c.income_group for c in un} >= {"low", "lower-middle", "upper-middle", "high"}
    assert 40 <= sum(c.ldc for c in un) <= 46


def test_unknown_country_is_refused(db: Session) -> None:
    with pytest.raises(UnknownCountry) as caught:
        directory.admit(db, slug="atlantis", name="Atlantis", kind="country", country_code="XA")
    assert caught.value.code == "member.unknown_country"
    assert db.scalar(select(func.count()).select_from(Member)) == 0


def test_admission_is_dated_and_logged(db: Session) -> None:
    member = directory.admit(db, slug="kenya", name="Kenya", kind="country", country_code="KE")
    db.commit()
    assert member.admitted_at is not None
    entry = db.scalars(select(LogEntry).where(LogEntry.kind == "member.admitted")).one()
    assert b'"slug":"kenya"' in entry.body
    assert member.history[0].log_index == entry.index


def test_duplicates_are_refused(db: Session) -> None:
    directory.admit(db, slug="kenya", name="Kenya", kind="country", country_code="KE")
    with pytest.raises(directory.DuplicateMember):
        directory.admit(db, slug="kenya", name="Kenya again", kind="lab", country_code="KE")
    with pytest.raises(directory.DuplicateDelegation):
        directory.admit(db, slug="kenya-2", name="Kenya", kind="country", country_code="KEN")
    # an institution of the same country is welcome
    directory.admit(
        db, slug="uon", name="University of Nairobi", kind="university", country_code="KE"
    )


@pytest.mark.parametrize(
    ("slug", "kind", "name"),
    [("Bad Slug", "country", "X"), ("ok-slug", "embassy", "X"), ("ok-slug", "lab", "")],
)
def test_bad_member_fields(db: Session, slug: str, kind: str, name: str) -> None:
    with pytest.raises(directory.BadMember):
        directory.admit(db, slug=slug, name=name, kind=kind, country_code="FR")


def test_standing_changes_are_recorded_and_checked(db: Session) -> None:
    member = directory.admit(db, slug="chile", name="Chile", kind="country", country_code="CL")
    directory.suspend(db, member, "arrears")
    with pytest.raises(directory.BadStanding):
        directory.suspend(db, member)
    with pytest.raises(directory.MemberNotActive):
        directory.require_active(member)
    directory.reinstate(db, member)
    directory.withdraw(db, member, "left")
    db.commit()
    assert [h.action for h in member.history] == [
        "admitted",
        "suspended",
        "reinstated",
        "withdrawn",
    ]
    assert member.withdrawn_at is not None
    kinds = db.scalars(select(LogEntry.kind).order_by(LogEntry.index)).all()
    assert kinds == ["member.admitted", "member.suspended", "member.reinstated", "member.withdrawn"]


def test_blocs_follow_countries(db: Session) -> None:
    for slug, code in [("kenya", "KE"), ("china", "CN"), ("germany", "DE"), ("fiji", "FJ")]:
        directory.admit(db, slug=slug, name=slug, kind="country", country_code=code)
    db.flush()
    ids = {m.slug: m.id for m in db.scalars(select(Member))}
    assert blocs.bloc_member_ids(db, "global-south") == {ids["kenya"], ids["china"], ids["fiji"]}
    assert blocs.bloc_member_ids(db, "global-north") == {ids["germany"]}
    assert blocs.bloc_member_ids(db, "region:africa") == {ids["kenya"]}
    assert blocs.bloc_member_ids(db, "sids") == {ids["fiji"]}
    assert ids["germany"] in blocs.bloc_member_ids(db, "income:high")
    names = {b.name for b in blocs.list_blocs(db)}
    assert {"global-south", "global-north", "region:europe", "sub-region:melanesia"} <= names


def test_custom_blocs(db: Session) -> None:
    a = directory.admit(db, slug="brazil", name="Brazil", kind="country", country_code="BR")
    b = directory.admit(db, slug="india", name="India", kind="country", country_code="IN")
    blocs.create_custom_bloc(db, "ibsa", "IBSA Dialogue Forum", [a.id, b.id])
    assert blocs.bloc_member_ids(db, "ibsa") == {a.id, b.id}
    with pytest.raises(blocs.BlocExists):
        blocs.create_custom_bloc(db, "ibsa", "again", [])
    with pytest.raises(blocs.BadBlocName):
        blocs.create_custom_bloc(db, "region:x", "no", [])
    with pytest.raises(blocs.UnknownBloc):
        blocs.require_bloc(db, "nowhere")
    directory.suspend(db, a)
    assert blocs.bloc_member_ids(db, "ibsa") == {b.id}


def test_members_by_id_and_handle_come_in_one_query_in_the_order_named(db: Session) -> None:
    # Prepare
    kenya = directory.admit(db, slug="kenya", name="Kenya", kind="country", country_code="KE")
    brazil = directory.admit(db, slug="brazil", name="Brazil", kind="country", country_code="BR")
    db.flush()
    statements: list[str] = []
    engine = db.get_bind()
    listen = lambda *args: statements.append(args[2])  # noqa: E731 (before_cursor_execute)
    event.listen(engine, "before_cursor_execute", listen)
    # Execute
    try:
        found = directory.get_members(db, ["BRAZIL", str(kenya.id), "brazil"])
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    # Assert
    assert [m.id for m in found] == [brazil.id, kenya.id, brazil.id]
    assert len(statements) == 1
    with pytest.raises(directory.UnknownMember) as refused:
        directory.get_members(db, ["kenya", "atlantis"])
    assert "atlantis" in str(refused.value)
