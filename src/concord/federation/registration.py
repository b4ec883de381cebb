"""A member's node registers with the hub, signed with the member's key at a time close to the
hub's, and is noted alive each time it asks for work."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.db import utcnow
from concord.errors import N_, Conflict, Invalid
from concord.federation.tables import Node
from concord.ledger.log import canonical_json
from concord.members.keys import verify
from concord.members.tables import Member


class NodeUnregistered(Conflict):
    code = "federation.node_unregistered"
    message = N_("Member “{member}” has no registered node: register it, signed, first.")


class RegistrationUnsigned(Invalid):
    code = "federation.registration_unsigned"
    message = N_(
        "A node registration must be signed with the member's key (fields signed_at and signature)."
    )


class RegistrationStale(Invalid):
    code = "federation.registration_stale"
    message = N_(
        "The registration was signed at {signed_at}, more than {minutes} minutes from the hub's "
        "clock: sign it again now."
    )


REGISTRATION_SKEW = timedelta(minutes=10)


def registration_message(member: str, tasks: list[str], signed_at: str) -> bytes:
    """What a node signs to register: proof that it holds the member's private key."""
    return canonical_json(
        {
            "purpose": "concord.node-registration",
            "member": member,
            "tasks": sorted(tasks),
            "signed_at": signed_at,
        }
    )


def register_node(
    session: Session, member: Member, tasks: list[str], *, signed_at: str, signature: str
) -> Node:
    """Registers (or refreshes) the member's node; it must sign with the member's key, at a
    time close to the hub's (an old signed registration replayed is refused)."""
    if not signed_at or not signature:
        raise RegistrationUnsigned()
    try:
        when = datetime.fromisoformat(signed_at)
    except ValueError as exc:
        raise RegistrationUnsigned() from exc
    if when.tzinfo is None or abs(utcnow() - when) > REGISTRATION_SKEW:
        raise RegistrationStale(
            signed_at=signed_at, minutes=int(REGISTRATION_SKEW.total_seconds() // 60)
        )
    key = verify(session, member, registration_message(member.slug, tasks, signed_at), signature)
    node = session.scalars(select(Node).where(Node.member_id == member.id)).first()
    now = utcnow()
    if node is None:
        node = Node(member_id=member.id, tasks=tasks, registered_at=now, last_seen=now)
        session.add(node)
    node.tasks, node.last_seen, node.key_fingerprint = tasks, now, key.fingerprint
    session.flush()
    return node


def seen(session: Session, member: Member) -> Node:
    """Notes that the member's registered node asked for work."""
    node = session.scalars(select(Node).where(Node.member_id == member.id)).first()
    if node is None:
        raise NodeUnregistered(member=member.slug)
    node.last_seen = utcnow()
    return node
