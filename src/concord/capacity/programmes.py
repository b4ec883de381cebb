"""Programmes: workshops, seminars and courses of the AI Capacity-Building Action Plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.capacity.tables import Enrolment, Programme, ProgrammeSession
from concord.db import utcnow
from concord.errors import N_, Invalid, NotFound
from concord.i18n import LANGUAGES
from concord.ledger.log import append
from concord.members.blocs import require_bloc
from concord.members.tables import Member

# The five areas of the AI Capacity-Building Action Plan for Good and for All (2024).
AREAS = {
    "infrastructure": N_("Infrastructure"),
    "industrial-empowerment": N_("Industrial empowerment"),
    "talent-training": N_("Talent training"),
    "data-management": N_("Data management"),
    "security-governance": N_("Security governance"),
}
KINDS = {"workshop": N_("workshop"), "seminar": N_("seminar"), "course": N_("course")}
MODES = {"in-person": N_("in person"), "online": N_("online"), "hybrid": N_("in person and online")}
TAKING_PART = ("enrolled", "attended", "completed")


class BadProgramme(Invalid):
    code = "programme.invalid"
    message = N_("The programme is not valid: {reason}")


class UnknownTimezone(Invalid):
    code = "programme.unknown_timezone"
    message = N_("“{timezone}” is not a time zone of the IANA database (e.g. Africa/Nairobi).")


class UnknownProgramme(NotFound):
    code = "programme.unknown"
    message = N_("There is no programme {programme}.")


@dataclass(frozen=True, slots=True)
class SessionSpec:
    title: str
    starts: datetime  # naive local time in `timezone`, or aware
    ends: datetime
    timezone: str


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or `UnknownTimezone`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise UnknownTimezone(timezone=name) from exc


def _utc(moment: datetime, timezone: str) -> datetime:
    local = moment if moment.tzinfo else moment.replace(tzinfo=zone(timezone))
    return local.astimezone(ZoneInfo("UTC"))


def announce(
    session: Session,
    host: Member,
    *,
    title: str,
    kind: str,
    area: str,
    languages: list[str],
    mode: str,
    seats: int,
    sessions: list[SessionSpec],
    place: str = "",
    eligibility: str = "",
    description: str = "",
) -> Programme:
    """Announces a programme with its sessions. Logged."""
    if not title.strip() or len(title) > 200:
        raise BadProgramme(reason=N_("the title must have 1 to 200 characters"))
    if kind not in KINDS:
        raise BadProgramme(reason=N_("the kind must be workshop, seminar or course"))
    if area not in AREAS:
        raise BadProgramme(reason=N_("the area must be one of the five areas of the Action Plan"))
    if mode not in MODES:
        raise BadProgramme(reason=N_("the mode must be in-person, online or hybrid"))
    if mode != "online" and not place.strip():
        raise BadProgramme(reason=N_("a programme held in person needs a place"))
    if not 1 <= seats <= 100_000:
        raise BadProgramme(reason=N_("seats must be between 1 and 100,000"))
    if not languages or any(lang not in LANGUAGES for lang in languages):
        raise BadProgramme(reason=N_("languages must be among ar, zh, en, fr, ru, es"))
    if not sessions:
        raise BadProgramme(reason=N_("a programme needs at least one session"))
    if eligibility:
        rule, _sep, bloc = eligibility.partition(":")
        if rule not in ("priority", "only"):
            raise BadProgramme(reason=N_("eligibility is priority:BLOC or only:BLOC"))
        require_bloc(session, bloc)
    rows = []
    for spec in sessions:
        starts, ends = _utc(spec.starts, spec.timezone), _utc(spec.ends, spec.timezone)
        if ends <= starts:
            raise BadProgramme(reason=N_("a session must end after it starts"))
        rows.append(
            ProgrammeSession(
                title=spec.title[:200] or title,
                starts_at=starts,
                ends_at=ends,
                timezone=spec.timezone,
            )
        )
    programme = Programme(
        title=title.strip(),
        kind=kind,
        area=area,
        host_member_id=host.id,
        languages=languages,
        mode=mode,
        place=place.strip(),
        seats=seats,
        eligibility=eligibility,
        description=description.strip(),
        created_at=utcnow(),
        sessions=rows,
    )
    session.add(programme)
    session.flush()
    append(
        session,
        "programme.announced",
        {
            "programme": programme.id,
            "title": programme.title,
            "area": area,
            "kind": kind,
            "seats": seats,
            "eligibility": eligibility,
            "sessions": [r.starts_at.isoformat() for r in rows],
        },
        member_id=host.id,
    )
    return programme


def get_programme(session: Session, programme_id: int) -> Programme:
    programme = session.get(Programme, programme_id)
    if programme is None:
        raise UnknownProgramme(programme=programme_id)
    return programme


def list_programmes(session: Session, *, area: str = "", language: str = "") -> list[Programme]:
    query = select(Programme).order_by(Programme.id.desc())
    if area:
        query = query.where(Programme.area == area)
    programmes = list(session.scalars(query).all())
    if language:
        programmes = [p for p in programmes if language in p.languages]
    return programmes


def seats_taken(session: Session, programme: Programme) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Enrolment)
            .where(Enrolment.programme_id == programme.id, Enrolment.status.in_(TAKING_PART))
        )
        or 0
    )


def waiting(session: Session, programme: Programme) -> list[Enrolment]:
    """The waiting list in the order it moves up: priority first, then first come."""
    return list(
        session.scalars(
            select(Enrolment)
            .where(Enrolment.programme_id == programme.id, Enrolment.status == "waiting")
            .order_by(Enrolment.priority.desc(), Enrolment.id)
        ).all()
    )
