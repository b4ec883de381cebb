"""HTTP API of capacity building: programmes, enrolment, completions, commitments, exchange."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import select

from concord.capacity import commitments, enrolment, exchange, matching, priorities, programmes
from concord.capacity.calendar import programme_calendar
from concord.capacity.models import (
    Attendance,
    Certificate,
    CommitmentCreate,
    CommitmentPublic,
    EnrolmentCreate,
    EnrolmentPublic,
    ItemCreate,
    ItemPublic,
    MatchAnswer,
    MatchPublic,
    ProgrammeCreate,
    ProgrammePublic,
    RankingPublic,
)
from concord.capacity.tables import Completion, Enrolment, Match, Programme
from concord.http import Db
from concord.hubkey import load_or_create, public_key_base64
from concord.members.auth import CurrentPerson
from concord.members.people import acting_member, require_role
from concord.members.tables import Person
from concord.validation import Id

router = APIRouter(prefix="/api", tags=["capacity"])


def _public(db: Db, p: Programme, standing: priorities.Standing | None = None) -> ProgrammePublic:
    return ProgrammePublic.of(
        p, programmes.seats_taken(db, p), len(programmes.waiting(db, p)), standing
    )


@router.get("/programmes")
def list_programmes(db: Db, area: str = "", language: str = "") -> list[ProgrammePublic]:
    """Workshops, seminars and courses: first by the priorities the assembly adopted (see
    `/api/priorities`), then newest first."""
    rows = programmes.list_programmes(db, area=area, language=language)
    return [_public(db, p, s) for p, s in priorities.standings(priorities.current(db), rows)]


@router.get("/programmes/{programme_id}")
def get_programme(programme_id: Id, db: Db) -> ProgrammePublic:
    """One programme with its sessions, seats and priority."""
    return _one(db, programmes.get_programme(db, programme_id))


def _one(db: Db, p: Programme) -> ProgrammePublic:
    ((_, standing),) = priorities.standings(priorities.current(db), [p])
    return _public(db, p, standing)


@router.get("/priorities")
def current_priorities(db: Db) -> RankingPublic | None:
    """The ranking of priorities that orders the programme list: the latest adopted decision
    whose ranked options name Action Plan areas or programmes; null before there is one."""
    ranking = priorities.current(db)
    return RankingPublic.of(ranking) if ranking else None


@router.post("/programmes", status_code=status.HTTP_201_CREATED)
def announce(body: ProgrammeCreate, db: Db, person: CurrentPerson) -> ProgrammePublic:
    """Announces a programme hosted by your member. Logged."""
    host = acting_member(db, person, body.host)
    programme = programmes.announce(
        db,
        host,
        title=body.title,
        kind=body.kind,
        area=body.area,
        languages=body.languages,
        mode=body.mode,
        seats=body.seats,
        place=body.place,
        eligibility=body.eligibility,
        description=body.description,
        sessions=[
            programmes.SessionSpec(s.title, s.starts, s.ends, s.timezone) for s in body.sessions
        ],
    )
    db.commit()
    return _one(db, programme)


@router.get("/programmes/{programme_id}/calendar.ics")
def calendar(programme_id: Id, db: Db, request: Request) -> Response:
    """The programme's sessions as iCalendar."""
    programme = programmes.get_programme(db, programme_id)
    body = programme_calendar(programme, request.app.state.settings.public_url)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="programme-{programme_id}.ics"'},
    )


@router.post("/programmes/{programme_id}/enrolments", status_code=status.HTTP_201_CREATED)
def enrol(
    programme_id: Id, body: EnrolmentCreate, db: Db, person: CurrentPerson
) -> EnrolmentPublic:
    """Enrols a person of your member: a seat if one is free, else the waiting list."""
    member = acting_member(db, person, body.member)
    programme = programmes.get_programme(db, programme_id)
    row = enrolment.enrol(db, programme, member, participant=body.participant, email=body.email)
    db.commit()
    return EnrolmentPublic.of(row)


@router.get("/programmes/{programme_id}/enrolments")
def enrolments(programme_id: Id, db: Db, person: CurrentPerson) -> list[EnrolmentPublic]:
    """The programme's enrolments: for its host's delegates and the secretariat."""
    programme = programmes.get_programme(db, programme_id)
    _require_host_or_secretariat(db, person, programme)
    rows = db.scalars(
        select(Enrolment).where(Enrolment.programme_id == programme.id).order_by(Enrolment.id)
    ).all()
    return [EnrolmentPublic.of(e) for e in rows]


def _require_host_or_secretariat(db: Db, person: Person, programme: Programme) -> None:
    if person.role == "secretariat":
        return
    host = acting_member(db, person)
    if host.id != programme.host_member_id:
        raise enrolment.NotHost()


@router.delete("/enrolments/{enrolment_id}")
def cancel(enrolment_id: Id, db: Db, person: CurrentPerson) -> EnrolmentPublic:
    """Cancels an enrolment of your member; the waiting list moves up."""
    row = enrolment.get_enrolment(db, enrolment_id)
    acting_member(db, person, row.member_id)
    enrolment.cancel(db, row)
    db.commit()
    return EnrolmentPublic.of(row)


@router.post("/enrolments/{enrolment_id}/attendance")
def attendance(
    enrolment_id: Id, body: Attendance, db: Db, person: CurrentPerson
) -> EnrolmentPublic:
    """Records attendance (the host's delegates)."""
    row = enrolment.get_enrolment(db, enrolment_id)
    programme = programmes.get_programme(db, row.programme_id)
    if acting_member(db, person).id != programme.host_member_id:
        raise enrolment.NotHost()
    enrolment.record_attendance(db, row, body.sessions_attended)
    db.commit()
    return EnrolmentPublic.of(row)


@router.post("/enrolments/{enrolment_id}/completion", status_code=status.HTTP_201_CREATED)
def complete(enrolment_id: Id, db: Db, person: CurrentPerson, request: Request) -> Certificate:
    """Issues the hub-signed completion record (the host's delegates). Logged."""
    row = enrolment.get_enrolment(db, enrolment_id)
    programme = programmes.get_programme(db, row.programme_id)
    if acting_member(db, person).id != programme.host_member_id:
        raise enrolment.NotHost()
    settings = request.app.state.settings
    completion = enrolment.complete(db, row, load_or_create(settings), settings.public_url)
    db.commit()
    return Certificate(**enrolment.certificate(completion))


@router.get("/completions/{enrolment_id}")
def get_certificate(enrolment_id: Id, db: Db) -> Certificate:
    """A completion record and its signature, as its holder would show it."""
    row = db.scalars(select(Completion).where(Completion.enrolment_id == enrolment_id)).first()
    if row is None:
        raise enrolment.UnknownEnrolment(enrolment=enrolment_id)
    return Certificate(**enrolment.certificate(row))


@router.post("/completions/verify")
def verify(body: Certificate, request: Request) -> dict[str, object]:
    """Checks a completion record against this hub's key (the same check works offline)."""
    public = public_key_base64(load_or_create(request.app.state.settings))
    return {"valid": enrolment.verify_certificate(body.model_dump(), public), "key": public}


@router.get("/commitments")
def list_commitments(db: Db) -> list[CommitmentPublic]:
    """Commitments with progress computed from the records."""
    return [
        CommitmentPublic(
            id=p.commitment.id,
            member=p.commitment.member_id,
            title=p.commitment.title,
            metric=p.commitment.metric,
            target=p.commitment.target,
            value=p.value,
            share=p.share,
            elapsed=p.elapsed,
            status=p.status,
            start=p.commitment.start,
            due=p.commitment.due,
        )
        for p in commitments.all_progress(db)
    ]


@router.post("/commitments", status_code=status.HTTP_201_CREATED)
def make_commitment(body: CommitmentCreate, db: Db, person: CurrentPerson) -> dict[str, int]:
    """A commitment by your member, or by the organisation (secretariat). Logged."""
    if body.member is None:
        require_role(person, "secretariat")
        member = None
    else:
        member = acting_member(db, person, body.member)
    row = commitments.make(
        db,
        member=member,
        title=body.title,
        metric=body.metric,
        target=body.target,
        start=body.start,
        due=body.due,
    )
    db.commit()
    return {"id": row.id}


@router.get("/exchange")
def list_items(db: Db, side: str = "", kind: str = "", status: str = "") -> list[ItemPublic]:
    """Needs and offers."""
    return [ItemPublic.of(i) for i in exchange.list_items(db, side=side, kind=kind, status=status)]


@router.post("/exchange", status_code=status.HTTP_201_CREATED)
def post_item(body: ItemCreate, db: Db, person: CurrentPerson) -> ItemPublic:
    """Posts a need or an offer of your member. Logged."""
    member = acting_member(db, person, body.member)
    item = exchange.post(
        db,
        member,
        side=body.side,
        kind=body.kind,
        title=body.title,
        quantity=body.quantity,
        languages=body.languages,
        timezone=body.timezone,
        details=body.details,
    )
    db.commit()
    return ItemPublic.of(item)


@router.post("/matching/run")
def run_matching(db: Db, person: CurrentPerson) -> list[MatchPublic]:
    """Proposes the maximum-benefit matching of open needs and offers (secretariat)."""
    require_role(person, "secretariat")
    proposed = matching.run(db)
    db.commit()
    return [MatchPublic.of(m) for m in proposed]


@router.get("/matches")
def list_matches(db: Db, status: str = "") -> list[MatchPublic]:
    """Proposed, accepted and declined matches with the reasons for each."""
    query = select(Match).order_by(Match.id.desc())
    if status:
        query = query.where(Match.status == status)
    return [MatchPublic.of(m) for m in db.scalars(query).all()]


@router.post("/matches/{match_id}/answer")
def answer(match_id: Id, body: MatchAnswer, db: Db, person: CurrentPerson) -> MatchPublic:
    """Accepts or declines a match for your member; accepted matches are logged."""
    member = acting_member(db, person, body.member)
    match = db.get(Match, match_id)
    if match is None:
        raise exchange.UnknownItem(item=match_id)
    matching.answer(db, match, member, body.accept)
    db.commit()
    return MatchPublic.of(match)
