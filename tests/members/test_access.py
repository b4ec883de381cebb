"""Tokens, roles and keys through the library."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.members import directory, keys, people, tokens
from concord.members.tables import ApiToken


def _person(db: Session, role: str = "observer", member: str | None = None):
    return people.add_person(
        db, name="Ana", email=f"ana.{role}@x.example", role=role, member=member
    )


def test_token_is_shown_once_and_stored_hashed(db: Session) -> None:
    person = _person(db)
    issued = tokens.issue(db, person, days=5)
    row = db.get(ApiToken, issued.token.id)
    assert issued.secret.startswith("cnd_")
    assert len(issued.secret) > 40
    assert issued.secret.encode() not in row.digest and row.digest != issued.secret.encode()
    assert tokens.authenticate(db, issued.secret).id == person.id


def test_bad_expired_and_revoked_tokens(db: Session) -> None:
    person = _person(db)
    issued = tokens.issue(db, person)
    with pytest.raises(tokens.BadToken):
        tokens.authenticate(db, issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B"))
    with pytest.raises(tokens.BadToken):
        tokens.authenticate(db, "not-a-token")
    issued.token.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(tokens.ExpiredToken):
        tokens.authenticate(db, issued.secret)
    other = tokens.issue(db, person)
    tokens.revoke(db, other.token.id)
    with pytest.raises(tokens.RevokedToken):
        tokens.authenticate(db, other.secret)
    with pytest.raises(tokens.BadLifetime):
        tokens.issue(db, person, days=0)


def test_delegates_act_only_for_their_member(db: Session) -> None:
    directory.admit(db, slug="ghana", name="Ghana", kind="country", country_code="GH")
    directory.admit(db, slug="peru", name="Peru", kind="country", country_code="PE")
    delegate = _person(db, "delegate", "ghana")
    assert people.acting_member(db, delegate).slug == "ghana"
    with pytest.raises(people.NotYourMember):
        people.acting_member(db, delegate, "peru")
    observer = _person(db, "observer")
    with pytest.raises(people.RoleRequired):
        people.acting_member(db, observer)
    with pytest.raises(people.BadPerson):
        people.add_person(db, name="X", email="x@x.example", role="delegate")
    with pytest.raises(people.DuplicatePerson):
        _person(db, "delegate", "ghana")


def test_keys_register_rotate_and_verify(db: Session) -> None:
    member = directory.admit(db, slug="peru", name="Peru", kind="country", country_code="PE")
    first = keys.generate()
    keys.register(db, member, keys.public_base64(first))
    message = b"ballot"
    keys.verify(db, member, message, keys.sign(first, message))
    second = keys.generate()
    keys.register(db, member, keys.public_base64(second))
    with pytest.raises(keys.BadSignature):
        keys.verify(db, member, message, keys.sign(first, message))
    keys.verify(db, member, message, keys.sign(second, message))
    with pytest.raises(keys.KeyInUse):
        keys.register(db, member, keys.public_base64(second))


@pytest.mark.parametrize("text", ["", "abc", "AAAA", "-----BEGIN PUBLIC KEY-----\nxx\n-----END"])
def test_malformed_keys_are_refused(db: Session, text: str) -> None:
    with pytest.raises(keys.MalformedKey):
        keys.parse_public_key(text)
