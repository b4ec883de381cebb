"""Enrolment, the waiting list, attendance, and completion records the hub signs.

A seat freed by a cancellation goes, in the same transaction, to the first on the waiting list
(members of the programme's priority bloc first). A completion record is canonical JSON signed
with the hub's Ed25519 key, so an employer can verify it offline with the hub's public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.orm import Session

from concord.capacity.programmes import TAKING_PART, get_programme, seats_taken, waiting
from concord.capacity.tables import Completion, Enrolment, Programme
from concord.db import utcnow
from concord.errors import N_, Conflict, Forbidden, Invalid, NotFound
from concord.ledger.log import append, canonical_json
from concord.members.blocs import bloc_member_ids
from concord.members.countries import country
from concord.members.people import EMAIL
from concord.members.tables import Member

RECORD_TYPE = "concord.completion/1"


class ProgrammeStarted(Conflict):
    code = "enrolment.started"
    message = N_("Programme {programme} has already started; enrolment is closed.")


class NotEligible(Forbidden):
    code = "enrolment.not_eligible"
    message = N_("This programme is reserved for members of the bloc “{bloc}”.")


class BadEnrolment(Invalid):
    code = "enrolment.invalid"
    message = N_("The enrolment is not valid: {reason}")


class UnknownEnrolment(NotFound):
    code = "enrolment.unknown"
    message = N_("There is no enrolment {enrolment}.")


class WrongState(Conflict):
    code = "enrolment.wrong_state"
    message = N_("Enrolment {enrolment} is {status}; this cannot be done now.")


class NotHost(Forbidden):
    code = "programme.not_host"
    message = N_("Only delegates of the hosting member can do this.")


def enrol(
    session: Session,
    programme: Programme,
    member: Member,
    *,
    participant: str,
    email: str,
    at: datetime | None = None,
) -> Enrolment:
    """Enrols a participant for `member`: a seat if one is free, else the waiting list.

    `at` is the moment of enrolment (now, unless the demo replays a past year)."""
    if not participant.strip() or len(participant) > 200:
        raise BadEnrolment(reason=N_("the participant's name must have 1 to 200 characters"))
    if not EMAIL.match(email.strip().lower()):
        raise BadEnrolment(reason=N_("the e-mail address is not valid"))
    now = at or utcnow()
    if programme.sessions and programme.sessions[0].starts_at <= now:
        raise ProgrammeStarted(programme=programme.id)
    rule, _sep, bloc = programme.eligibility.partition(":")
    in_bloc = bool(bloc) and member.id in bloc_member_ids(session, bloc)
    if rule == "only" and not in_bloc:
        raise NotEligible(bloc=bloc)
    status = "enrolled" if seats_taken(session, programme) < programme.seats else "waiting"
    enrolment = Enrolment(
        programme_id=programme.id,
        member_id=member.id,
        participant=participant.strip(),
        email=email.strip().lower(),
        status=status,
        priority=int(in_bloc),
        attended=0,
        created_at=now,
        updated_at=now,
    )
    session.add(enrolment)
    session.flush()
    append(
        session,
        "programme.enrolled",
        {"programme": programme.id, "enrolment": enrolment.id, "status": status},
        member_id=member.id,
    )
    return enrolment


def get_enrolment(session: Session, enrolment_id: int) -> Enrolment:
    row = session.get(Enrolment, enrolment_id)
    if row is None:
        raise UnknownEnrolment(enrolment=enrolment_id)
    return row


def cancel(session: Session, enrolment: Enrolment) -> Enrolment | None:
    """Cancels an enrolment; returns whoever moved up from the waiting list into the seat."""
    if enrolment.status not in ("enrolled", "waiting"):
        raise WrongState(enrolment=enrolment.id, status=enrolment.status)
    had_seat = enrolment.status == "enrolled"
    enrolment.status = "cancelled"
    enrolment.updated_at = utcnow()
    append(
        session,
        "programme.cancelled",
        {"programme": enrolment.programme_id, "enrolment": enrolment.id},
        member_id=enrolment.member_id,
    )
    session.flush()
    if not had_seat:
        return None
    programme = get_programme(session, enrolment.programme_id)
    queue = waiting(session, programme)
    if not queue or seats_taken(session, programme) >= programme.seats:
        return None
    promoted = queue[0]
    promoted.status = "enrolled"
    promoted.updated_at = utcnow()
    append(
        session,
        "programme.promoted",
        {"programme": programme.id, "enrolment": promoted.id},
        member_id=promoted.member_id,
    )
    session.flush()
    return promoted


def record_attendance(session: Session, enrolment: Enrolment, sessions_attended: int) -> None:
    """The host records how many sessions a participant attended."""
    programme = get_programme(session, enrolment.programme_id)
    if enrolment.status not in ("enrolled", "attended"):
        raise WrongState(enrolment=enrolment.id, status=enrolment.status)
    if not 0 <= sessions_attended <= len(programme.sessions):
        raise BadEnrolment(reason=N_("attendance must be between 0 and the number of sessions"))
    enrolment.attended = sessions_attended
    enrolment.status = "attended"
    enrolment.updated_at = utcnow()


def complete(
    session: Session, enrolment: Enrolment, key: Ed25519PrivateKey, hub_url: str
) -> Completion:
    """Issues the signed completion record for an attended enrolment. Logged."""
    if enrolment.status != "attended" or enrolment.attended == 0:
        raise WrongState(enrolment=enrolment.id, status=enrolment.status)
    programme = get_programme(session, enrolment.programme_id)
    member = session.get(Member, enrolment.member_id)
    host = session.get(Member, programme.host_member_id)
    assert member is not None and host is not None
    now = utcnow()
    record = {
        "type": RECORD_TYPE,
        "hub": hub_url,
        "id": enrolment.id,
        "participant": enrolment.participant,
        "member": {
            "handle": member.slug,
            "name": member.name,
            "country": country(member.country_code).iso3,
        },
        "programme": {
            "id": programme.id,
            "title": programme.title,
            "area": programme.area,
            "kind": programme.kind,
            "host": host.name,
            "sessions": len(programme.sessions),
        },
        "sessions_attended": enrolment.attended,
        "completed": now.date().isoformat(),
    }
    body = canonical_json(record)
    signature = base64.b64encode(key.sign(body)).decode()
    completion = Completion(
        enrolment_id=enrolment.id, record=body, signature=signature, issued_at=now
    )
    session.add(completion)
    enrolment.status = "completed"
    enrolment.updated_at = now
    session.flush()
    append(
        session,
        "programme.completed",
        {
            "programme": programme.id,
            "enrolment": enrolment.id,
            "record_sha256": hashlib.sha256(body).hexdigest(),
        },
        member_id=member.id,
    )
    return completion


def certificate(completion: Completion) -> dict[str, Any]:
    """The record and its signature as one JSON document a participant can keep."""
    return {"record": json.loads(completion.record), "signature": completion.signature}


def verify_certificate(document: dict[str, Any], public_key_b64: str) -> bool:
    """True if the document's signature is the hub's over its record (works offline)."""
    try:
        body = canonical_json(document["record"])
        signature = base64.b64decode(document["signature"], validate=True)
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
        key.verify(signature, body)
    except (KeyError, TypeError, ValueError, binascii.Error, InvalidSignature):
        return False
    return bool(document["record"].get("type") == RECORD_TYPE)


__all__ = ["TAKING_PART", "cancel", "complete", "enrol", "verify_certificate"]
