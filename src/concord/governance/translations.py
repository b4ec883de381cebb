"""Members' words in the six UN languages: a proposal's text and every statement.

A text has one original (the language its author wrote in) and at most one current translation
into each other language. People translate (delegates, and the `translator` role); a
LibreTranslate-compatible service, when configured, fills the languages nobody has translated
yet, and its texts are always labelled as machine translations. A person's translation replaces
a machine one. Every translation is logged. A statement and its translations stay one
statement: votes and the opinion map count statements, never translations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.config import Settings
from concord.db import utcnow
from concord.errors import N_, Invalid, Unavailable
from concord.governance.tables import Proposal, Statement, Translation
from concord.ledger.log import append
from concord.members.people import require_role
from concord.members.tables import Member, Person

LANGUAGES = ("ar", "zh", "en", "fr", "ru", "es")
MAX_TEXT = 20_000
TIMEOUT_S = 20.0


class BadLanguage(Invalid):
    code = "translation.language"
    message = N_("“{language}” is not one of the six languages: ar, zh, en, fr, ru, es.")


class BadTranslation(Invalid):
    code = "translation.invalid"
    message = N_("A translation needs a text (at most 20,000 characters).")


class AlreadyOriginal(Invalid):
    code = "translation.original"
    message = N_("The original is already in “{language}”: there is nothing to translate.")


class NoMachine(Unavailable):
    code = "translation.machine_off"
    message = N_("No machine-translation service is configured (CONCORD_TRANSLATE_URL).")


class MachineFailed(Unavailable):
    code = "translation.machine_failed"
    message = N_("The machine-translation service did not translate: {reason}")


# (text, source, target) → translated text
Translator = Callable[[str, str, str], str]


@dataclass
class Shown:
    """What a reader in `language` sees of a text, and where it came from."""

    text: str
    language: str
    origin: str  # "original" | "person" | "machine"
    by: str  # the translator's name (and member), "" for originals and machines
    original_language: str


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise BadLanguage(language=language[:16])
    return language


def original_language(proposal: Proposal, statement: Statement | None) -> str:
    """A statement's recorded language; a proposal's first text (the sponsor's own)."""
    if statement is not None:
        return statement.language
    return next(iter(proposal.texts), "en")


def original_text(proposal: Proposal, statement: Statement | None) -> str:
    if statement is not None:
        return statement.text
    return str(proposal.texts.get(original_language(proposal, None), ""))


def listing(session: Session, proposal: Proposal) -> list[Translation]:
    return list(
        session.scalars(
            select(Translation)
            .where(Translation.proposal_id == proposal.id)
            .order_by(
                Translation.statement_id.is_not(None),
                Translation.statement_id,
                Translation.language,
            )
        ).all()
    )


def _existing(
    session: Session, proposal: Proposal, statement: Statement | None, language: str
) -> Translation | None:
    query = select(Translation).where(
        Translation.proposal_id == proposal.id, Translation.language == language
    )
    if statement is None:
        query = query.where(Translation.statement_id.is_(None))
    else:
        query = query.where(Translation.statement_id == statement.id)
    return session.scalars(query).first()


def _store(
    session: Session,
    proposal: Proposal,
    statement: Statement | None,
    language: str,
    text: str,
    *,
    origin: str,
    person: Person | None,
) -> Translation:
    entry = append(
        session,
        "statement.translated" if statement is not None else "proposal.translated",
        {
            "proposal": proposal.reference,
            "statement": statement.id if statement is not None else None,
            "language": language,
            "from": original_language(proposal, statement),
            "origin": origin,
            "translator": person.id if person is not None else None,
            "text": text,
        },
        member_id=person.member_id if person is not None else None,
    )
    row = _existing(session, proposal, statement, language)
    if row is None:
        row = Translation(proposal_id=proposal.id, statement_id=statement.id if statement else None)
        session.add(row)
    row.language = language
    row.text = text
    row.origin = origin
    row.person_id = person.id if person is not None else None
    row.created_at = utcnow()
    row.log_index = entry.index
    session.flush()
    return row


def contribute(
    session: Session,
    person: Person,
    proposal: Proposal,
    statement: Statement | None,
    language: str,
    text: str,
) -> Translation:
    """A delegate's or translator's translation of the proposal's text or of a statement."""
    require_role(person, "delegate", "translator")
    check_language(language)
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise BadTranslation()
    if language == original_language(proposal, statement) or (
        statement is None and language in proposal.texts
    ):
        raise AlreadyOriginal(language=language)
    return _store(session, proposal, statement, language, text, origin="person", person=person)


def libretranslate(url: str, api_key: str = "") -> Translator:
    """A translator that asks a LibreTranslate-compatible API (`POST {url}/translate`)."""

    def translate(text: str, source: str, target: str) -> str:
        fields = {"q": text, "source": source, "target": target, "format": "text"}
        if api_key:
            fields["api_key"] = api_key
        try:
            response = httpx.post(url.rstrip("/") + "/translate", json=fields, timeout=TIMEOUT_S)
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise MachineFailed(reason=str(exc)[:200] or type(exc).__name__) from exc
        translated = answer.get("translatedText") if isinstance(answer, dict) else None
        if not isinstance(translated, str) or not translated.strip():
            raise MachineFailed(reason=N_("the answer has no translatedText"))
        return translated.strip()[:MAX_TEXT]

    return translate


def configured(settings: Settings) -> Translator | None:
    """The hub's machine translator, if `translate_url` names one."""
    if not settings.translate_url:
        return None
    return libretranslate(settings.translate_url, settings.translate_api_key)


def fill(
    session: Session, person: Person, proposal: Proposal, translator: Translator | None
) -> list[Translation]:
    """Machine translations for every language of the proposal's text and visible statements
    that has neither an original nor a translation yet."""
    require_role(person, "secretariat", "delegate", "translator")
    if translator is None:
        raise NoMachine()
    have = {(t.statement_id, t.language) for t in listing(session, proposal)}
    texts: list[Statement | None] = [None]
    texts += list(
        session.scalars(
            select(Statement)
            .where(Statement.proposal_id == proposal.id, Statement.hidden_at.is_(None))
            .order_by(Statement.id)
        ).all()
    )
    made = []
    for statement in texts:
        source = original_language(proposal, statement)
        known = set(proposal.texts) if statement is None else {source}
        for language in LANGUAGES:
            key = (statement.id if statement is not None else None, language)
            if language in known or key in have:
                continue
            text = translator(original_text(proposal, statement), source, language)
            made.append(
                _store(session, proposal, statement, language, text, origin="machine", person=None)
            )
    return made


def who(session: Session, person_id: int | None) -> str:
    person = session.get(Person, person_id) if person_id is not None else None
    if person is None:
        return ""
    member = session.get(Member, person.member_id) if person.member_id else None
    return f"{person.name} ({member.slug})" if member is not None else person.name


def shown(
    session: Session, proposal: Proposal, statements: Iterable[Statement], language: str
) -> dict[int | None, Shown]:
    """For the proposal's text (key None) and each statement: what a reader in `language`
    sees — the original if it is in that language, else its translation, else the original."""
    rows = {(t.statement_id, t.language): t for t in listing(session, proposal)}
    out: dict[int | None, Shown] = {}
    for statement in [None, *statements]:
        source = original_language(proposal, statement)
        key = statement.id if statement is not None else None
        if statement is None and language in proposal.texts:
            out[key] = Shown(str(proposal.texts[language]), language, "original", "", language)
            continue
        row = rows.get((key, language)) if language != source else None
        if row is None:
            out[key] = Shown(original_text(proposal, statement), source, "original", "", source)
        else:
            by = who(session, row.person_id) if row.origin == "person" else ""
            out[key] = Shown(row.text, language, row.origin, by, source)
    return out
