"""People who act on the hub and their roles.

- secretariat: administers the hub (admits members, issues tokens, edits the charter);
- delegate: acts and votes for one member;
- translator: translates members' words (proposals, statements) into the six languages;
- observer: reads, and takes part in public consultations.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Conflict, Forbidden, Invalid, NotFound
from concord.members.directory import get_member, require_active
from concord.members.tables import Member, Person
from concord.members.tokens import revoke_all

ROLES = ("secretariat", "delegate", "translator", "observer")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")


class UnknownPerson(NotFound):
    code = "person.unknown"
    message = N_("There is no person “{person}”.")


class DuplicatePerson(Conflict):
    code = "person.duplicate"
    message = N_("Someone with the e-mail address {email} is registered already.")


class BadPerson(Invalid):
    code = "person.invalid"
    message = N_("The person is not valid: {reason}")


class NotYourMember(Forbidden):
    code = "auth.not_your_member"
    message = N_("You act for “{yours}”, not for “{member}”.")


class RoleRequired(Forbidden):
    code = "auth.role_required"
    message = N_("This needs the role: {roles}.")


def add_person(
    session: Session, *, name: str, email: str, role: str, member: str | int | None = None
) -> Person:
    """Registers a person; delegates must belong to a member."""
    email = email.strip().lower()
    if role not in ROLES:
        raise BadPerson(reason=N_("the role must be secretariat, delegate, translator or observer"))
    if not EMAIL.match(email):
        raise BadPerson(reason=N_("the e-mail address is not valid"))
    if not name.strip() or len(name) > 200:
        raise BadPerson(reason=N_("the name must have 1 to 200 characters"))
    if role == "delegate" and member is None:
        raise BadPerson(reason=N_("a delegate acts for a member: name one"))
    if session.scalars(select(Person).where(Person.email == email)).first():
        raise DuplicatePerson(email=email)
    member_row = get_member(session, member) if member is not None else None
    person = Person(
        name=name.strip(),
        email=email,
        role=role,
        member_id=member_row.id if member_row else None,
        created_at=utcnow(),
    )
    session.add(person)
    session.flush()
    return person


def get_person(session: Session, ref: str | int) -> Person:
    """A person by id or e-mail address."""
    person: Person | None
    if isinstance(ref, int) or ref.isdigit():
        person = session.get(Person, int(ref))
    else:
        person = session.scalars(select(Person).where(Person.email == ref.lower())).first()
    if person is None:
        raise UnknownPerson(person=str(ref))
    return person


def remove_person(session: Session, person: Person) -> Person:
    """Removes a person from the hub: the row stays (their past acts name them), but every
    token is revoked and every browser session ends, in the caller's transaction."""
    person.active = False
    revoke_all(session, person)
    return person


def require_role(person: Person, *roles: str) -> None:
    """Raises unless `person` has one of `roles`."""
    if person.role not in roles:
        raise RoleRequired(roles=", ".join(roles))


def acting_member(session: Session, person: Person, member: str | int | None = None) -> Member:
    """The member `person` acts for; refuses another member's name and inactive members.

    Only a delegate acts for a member. The secretariat administers but never votes or
    publishes in a member's name.
    """
    require_role(person, "delegate")
    own = session.get(Member, person.member_id) if person.member_id else None
    if own is None:
        raise RoleRequired(roles="delegate")
    if member is not None:
        wanted = get_member(session, member)
        if wanted.id != own.id:
            raise NotYourMember(yours=own.slug, member=wanted.slug)
    require_active(own)
    return own
