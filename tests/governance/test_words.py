"""Members' words in six languages (people's and machine translations), moderation with the
author's notice, and the Polis-shaped export — through the API, the CLI and the pages."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.governance.conftest import resolution
from typer.testing import CliRunner

from concord.cli import app as cli
from concord.ledger.tables import LogEntry

runner = CliRunner()


class LibreTranslate:
    """A stand-in for LibreTranslate (which cannot run here: it needs its language models from
    the network), speaking its HTTP API on 127.0.0.1: `POST /translate` with JSON
    {q, source, target, format} answers {"translatedText": …}. It "translates" by tagging the
    text with the target language and records every request it saw."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                outer.requests.append({"path": self.path, **body})
                if self.path != "/translate":
                    self.send_response(404)
                    self.end_headers()
                    return
                answer = json.dumps({"translatedText": f"[{body['target']}] {body['q']}"})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.encode())))
                self.end_headers()
                self.wfile.write(answer.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def libretranslate() -> Iterator[LibreTranslate]:
    service = LibreTranslate()
    service.thread.start()
    yield service
    service.server.shutdown()
    service.server.server_close()


def deliberating(client: TestClient, sponsor: Any) -> str:
    ref = resolution(client, sponsor)
    assert client.post(f"/api/proposals/{ref}/deliberation", headers=sponsor.headers).is_success
    return ref


def say(client: TestClient, actor: Any, ref: str, text: str, language: str = "en") -> int:
    made = client.post(
        f"/api/proposals/{ref}/statements",
        headers=actor.headers,
        json={"text": text, "language": language},
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def words(client: TestClient, ref: str, lang: str) -> dict[int | None, dict[str, Any]]:
    answer = client.get(f"/api/proposals/{ref}/words", params={"lang": lang})
    assert answer.status_code == 200, answer.text
    return {w["statement"]: w for w in answer.json()}


def log_kinds(db: Session, kind: str) -> list[dict[str, Any]]:
    rows = db.scalars(select(LogEntry).where(LogEntry.kind == kind).order_by(LogEntry.index))
    return [json.loads(bytes(r.body))["content"] for r in rows]


def test_people_translate_statements_and_readers_see_their_language(
    client: TestClient, assembly: dict[str, Any], make: Any, db: Session
) -> None:
    # Prepare: a statement written in French, and a translator
    kenya, france = assembly["kenya"], assembly["france"]
    ref = deliberating(client, kenya)
    sid = say(client, france, ref, "Les modèles ouverts aident les petits laboratoires.", "fr")
    translator = make.person("translator")
    # Execute
    made = client.post(
        f"/api/proposals/{ref}/translations",
        headers=translator.headers,
        json={"statement": sid, "language": "en", "text": "Open models help small labs."},
    )
    by_delegate = client.post(
        f"/api/proposals/{ref}/translations",
        headers=kenya.headers,
        json={"statement": None, "language": "ar", "text": "تشجع المنظمة النماذج المفتوحة."},
    )
    observer = client.post(
        f"/api/proposals/{ref}/translations",
        headers=make.observer().headers,
        json={"statement": sid, "language": "es", "text": "Los modelos abiertos ayudan."},
    )
    same = client.post(
        f"/api/proposals/{ref}/translations",
        headers=translator.headers,
        json={"statement": sid, "language": "fr", "text": "Encore."},
    )
    unknown = client.post(
        f"/api/proposals/{ref}/translations",
        headers=translator.headers,
        json={"statement": sid, "language": "de", "text": "Offene Modelle."},
    )
    # Assert
    assert made.status_code == 201 and made.json()["origin"] == "person", made.text
    assert made.json()["translator"] == translator.person.name
    assert by_delegate.status_code == 201
    assert by_delegate.json()["translator"] == f"{kenya.person.name} (kenya)"
    assert observer.status_code == 403 and observer.json()["error"]["code"] == "auth.role_required"
    assert same.json()["error"]["code"] == "translation.original"
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "translation.language"
    english, french, arabic = (
        words(client, ref, "en"),
        words(client, ref, "fr"),
        words(client, ref, "ar"),
    )
    assert english[sid]["text"] == "Open models help small labs."
    assert english[sid]["origin"] == "person" and english[sid]["original_language"] == "fr"
    assert french[sid]["origin"] == "original" and french[sid]["text"].startswith("Les modèles")
    assert arabic[None]["text"] == "تشجع المنظمة النماذج المفتوحة."
    assert arabic[sid]["origin"] == "original"  # nobody translated it into Arabic: the original
    logged = log_kinds(db, "statement.translated")
    assert [(e["statement"], e["language"], e["origin"]) for e in logged] == [(sid, "en", "person")]
    assert log_kinds(db, "proposal.translated")[0]["language"] == "ar"
    # a statement and its translations are one statement on the map
    client.post(
        f"/api/proposals/{ref}/statements/{sid}/votes",
        headers=kenya.headers,
        json={"vote": "agree"},
    )
    opinion = client.get(f"/api/proposals/{ref}/map").json()
    assert [s["id"] for s in opinion["statements"]] == [sid]


def test_machine_translation_fills_only_the_gaps_and_says_so(
    client: TestClient,
    app: FastAPI,
    assembly: dict[str, Any],
    make: Any,
    db: Session,
    libretranslate: LibreTranslate,
) -> None:
    # Prepare: one statement in English, translated by a person into Spanish
    kenya = assembly["kenya"]
    ref = deliberating(client, kenya)
    sid = say(client, kenya, ref, "Share the weights.")
    translator = make.person("translator")
    client.post(
        f"/api/proposals/{ref}/translations",
        headers=translator.headers,
        json={"statement": sid, "language": "es", "text": "Compartir los pesos."},
    )
    off = client.post(f"/api/proposals/{ref}/translations/machine", headers=kenya.headers)
    app.state.settings.translate_url = libretranslate.url
    # Execute
    filled = client.post(f"/api/proposals/{ref}/translations/machine", headers=kenya.headers)
    again = client.post(f"/api/proposals/{ref}/translations/machine", headers=kenya.headers)
    # Assert
    assert off.status_code == 503 and off.json()["error"]["code"] == "translation.machine_off"
    assert filled.status_code == 200, filled.text
    made = {(t["statement"], t["language"]) for t in filled.json()}
    # the proposal's text exists in en and fr already; the statement in en (original) and es
    assert made == {(None, x) for x in ("ar", "zh", "ru", "es")} | {
        (sid, x) for x in ("ar", "zh", "fr", "ru")
    }
    assert all(t["origin"] == "machine" and t["translator"] == "" for t in filled.json())
    assert again.json() == []  # nothing left to fill: the service is not asked again
    asked = [r for r in libretranslate.requests if r["q"] == "Share the weights."]
    assert {r["target"] for r in asked} == {"ar", "zh", "fr", "ru"}
    assert all(r["source"] == "en" and r["format"] == "text" for r in asked)
    assert words(client, ref, "ru")[sid]["text"] == "[ru] Share the weights."
    assert words(client, ref, "ru")[sid]["origin"] == "machine"
    assert words(client, ref, "es")[sid]["origin"] == "person"
    machine = [e for e in log_kinds(db, "statement.translated") if e["origin"] == "machine"]
    assert len(machine) == 4 and all(e["translator"] is None for e in machine)


def test_a_broken_machine_translator_is_a_clear_error(
    client: TestClient, app: FastAPI, assembly: dict[str, Any], libretranslate: LibreTranslate
) -> None:
    kenya = assembly["kenya"]
    ref = deliberating(client, kenya)
    app.state.settings.translate_url = libretranslate.url + "/nowhere"
    failed = client.post(f"/api/proposals/{ref}/translations/machine", headers=kenya.headers)
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "translation.machine_failed"
    assert client.get(f"/api/proposals/{ref}/translations").json() == []


def _camps(client: TestClient, assembly: dict[str, Any], ref: str) -> list[int]:
    """Two statements everybody votes on; the second by france."""
    ids = [
        say(client, assembly["kenya"], ref, "Fund shared compute."),
        say(client, assembly["france"], ref, "Spam spam spam."),
    ]
    for actor in assembly.values():
        for sid in ids:
            client.post(
                f"/api/proposals/{ref}/statements/{sid}/votes",
                headers=actor.headers,
                json={"vote": "agree"},
            )
    return ids


def test_the_secretariat_hides_a_statement_with_a_reason(
    client: TestClient, assembly: dict[str, Any], make: Any, db: Session
) -> None:
    # Prepare
    kenya, france = assembly["kenya"], assembly["france"]
    ref = deliberating(client, kenya)
    kept, spam = _camps(client, assembly, ref)
    staff = make.secretariat()
    before = client.get(f"/api/proposals/{ref}/map").json()
    # Execute
    by_delegate = client.post(
        f"/api/proposals/{ref}/statements/{spam}/hide", headers=kenya.headers, json={"reason": "x"}
    )
    no_reason = client.post(
        f"/api/proposals/{ref}/statements/{spam}/hide", headers=staff.headers, json={"reason": " "}
    )
    hidden = client.post(
        f"/api/proposals/{ref}/statements/{spam}/hide",
        headers=staff.headers,
        json={"reason": "Advertising, not a position."},
    )
    twice = client.post(
        f"/api/proposals/{ref}/statements/{spam}/hide", headers=staff.headers, json={"reason": "y"}
    )
    late_vote = client.post(
        f"/api/proposals/{ref}/statements/{spam}/votes",
        headers=kenya.headers,
        json={"vote": "pass"},
    )
    # Assert
    assert by_delegate.status_code == 403
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["code"] == "statement.hide_reason"
    assert hidden.status_code == 200, hidden.text
    assert hidden.json()["hidden"] and hidden.json()["text"] == ""
    assert twice.status_code == 409 and late_vote.status_code == 409
    assert late_vote.json()["error"]["code"] == "statement.hidden"
    after = client.get(f"/api/proposals/{ref}/map").json()
    assert before["votes"] == 10 and after["votes"] == 5
    assert [s["id"] for s in after["statements"]] == [kept]
    listed = {s["id"]: s for s in client.get(f"/api/proposals/{ref}/statements").json()}
    assert listed[spam]["hidden_reason"] == "Advertising, not a position."
    assert listed[spam]["text"] == ""
    told = client.get("/api/notices", headers=france.headers).json()
    assert [(n["statement"], n["reason"], n["text"]) for n in told] == [
        (spam, "Advertising, not a position.", "Spam spam spam.")
    ]
    assert client.get("/api/notices", headers=kenya.headers).json() == []
    assert log_kinds(db, "statement.hidden") == [
        {"proposal": ref, "statement": spam, "reason": "Advertising, not a position."}
    ]


def test_the_conversation_exports_with_polis_columns(
    client: TestClient, assembly: dict[str, Any], make: Any
) -> None:
    # Prepare
    kenya = assembly["kenya"]
    ref = deliberating(client, kenya)
    kept, spam = _camps(client, assembly, ref)
    client.post(
        f"/api/proposals/{ref}/statements/{spam}/hide",
        headers=make.secretariat().headers,
        json={"reason": "Advertising."},
    )
    # Execute
    comments = client.get(f"/api/proposals/{ref}/export/comments.csv")
    votes = client.get(f"/api/proposals/{ref}/export/votes.csv")
    participants = client.get(f"/api/proposals/{ref}/export/participants-votes.csv")
    whole = client.get(f"/api/proposals/{ref}/export/conversation.json")
    unknown = client.get(f"/api/proposals/{ref}/export/secrets.csv")
    # Assert
    assert comments.headers["content-type"].startswith("text/csv")
    assert comments.text.splitlines()[0] == (
        "timestamp,datetime,comment-id,author-id,agrees,disagrees,moderated,comment-body"
    )
    rows = list(csv.DictReader(io.StringIO(comments.text)))
    assert [(int(r["comment-id"]), r["moderated"], r["agrees"]) for r in rows] == [
        (kept, "1", "5"),
        (spam, "-1", "5"),
    ]
    assert rows[0]["comment-body"] == "Fund shared compute." and rows[1]["comment-body"] == ""
    assert rows[0]["author-id"] == str(kenya.person.id)
    assert votes.text.splitlines()[0] == "timestamp,datetime,comment-id,voter-id,vote"
    assert len(votes.text.splitlines()) == 11
    header = participants.text.splitlines()[0].split(",")
    assert header == [
        "participant",
        "group-id",
        "n-comments",
        "n-votes",
        "n-agree",
        "n-disagree",
        str(kept),
        str(spam),
    ]
    first = next(iter(csv.DictReader(io.StringIO(participants.text))))
    assert first["n-votes"] == "2" and first[str(kept)] == "1"
    assert whole.json()["comments"] == [
        {**r, **{k: int(r[k]) for k in r if k not in ("datetime", "comment-body")}} for r in rows
    ]
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "conversation.no_export"


def test_words_moderation_and_export_from_the_cli(
    cli_env: Any,
    live_server: str,
    app: FastAPI,
    assembly: dict[str, Any],
    make: Any,
    libretranslate: LibreTranslate,
    tmp_path: Any,
) -> None:
    def as_(actor: Any, *args: str) -> str:
        result = runner.invoke(cli, [*args, "--hub", live_server, "--token", actor.token])
        assert result.exit_code == 0, result.output
        return result.output

    def read(*args: str) -> str:
        result = runner.invoke(cli, [*args, "--hub", live_server])
        assert result.exit_code == 0, result.output
        return result.output

    # Prepare
    kenya, france = assembly["kenya"], assembly["france"]
    translator, staff = make.person("translator"), make.secretariat()
    app.state.settings.translate_url = libretranslate.url
    made = as_(kenya, "propose", "resolution", "--title", "Open models", "--text", "en=Share.")
    ref = made.split()[1].rstrip(":")
    as_(kenya, "proposal", "deliberate", ref)
    as_(france, "statement", ref, "Partagez les poids.", "--language", "fr")
    sid = read("statement", ref).split()[0].lstrip("#")
    # Execute
    translated = as_(
        translator, "conversation", "translate", ref, "en", "Share the weights.", "--statement", sid
    )
    machine = as_(kenya, "conversation", "machine", ref)
    english = read("conversation", "words", ref, "--lang", "en")
    russian = read("conversation", "words", ref, "--lang", "ru")
    listed = read("conversation", "translations", ref)
    as_(staff, "conversation", "hide", ref, sid, "Off topic.")
    notices = as_(france, "conversation", "notices")
    after = read("conversation", "words", ref, "--lang", "en")
    read("conversation", "export", ref, "--out", str(tmp_path / "out"))
    refused = runner.invoke(
        cli, ["conversation", "hide", ref, sid, "x", "--hub", live_server, "--token", kenya.token]
    )
    # Assert
    assert "translated" in translated and "into en" in translated
    assert "9 machine translations" in machine  # text: 5 languages; statement: ar zh ru es
    assert f"#{sid} [en, translation by {translator.person.name} from fr] Share the weights." in (
        english
    )
    assert f"#{sid} [ru, machine translation from fr] [ru] Partagez les poids." in russian
    assert "machine translation" in listed and translator.person.name in listed
    assert f"{ref} #{sid} hidden by the secretariat: Off topic." in notices
    assert f"#{sid} [hidden by the secretariat: Off topic.]" in after
    comments = (tmp_path / "out" / "comments.csv").read_text().splitlines()
    assert comments[0].startswith("timestamp,datetime,comment-id,author-id")
    assert comments[1].endswith(",-1,")  # hidden: moderated -1 and no body
    assert json.loads((tmp_path / "out" / "conversation.json").read_text())["proposal"] == ref
    assert (tmp_path / "out" / "participants-votes.csv").exists()
    assert refused.exit_code != 0 and "auth.role_required" in refused.output


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


def _signed_in(app: FastAPI, actor: Any) -> TestClient:
    browser = TestClient(app)
    token = _csrf(browser.get("/sign-in").text)
    browser.post("/sign-in", data={"csrf": token, "token": actor.token, "next": "/"})
    return browser


def test_words_and_moderation_on_the_pages(
    client: TestClient,
    app: FastAPI,
    assembly: dict[str, Any],
    make: Any,
    db: Session,
    libretranslate: LibreTranslate,
) -> None:
    # Prepare
    kenya, france = assembly["kenya"], assembly["france"]
    ref = deliberating(client, kenya)
    app.state.settings.translate_url = libretranslate.url
    as_france, as_translator = _signed_in(app, france), _signed_in(app, make.person("translator"))
    as_staff = _signed_in(app, make.secretariat())
    token = _csrf(as_france.get(f"/proposals/{ref}?lang=fr").text)
    # Execute: France writes in French from the French page, a translator translates it,
    # the machine fills the rest, the secretariat hides it
    said = as_france.post(
        f"/proposals/{ref}/statements",
        data={"csrf": token, "text": "Partagez les poids.", "language": "fr"},
        follow_redirects=False,
    )
    sid = int(client.get(f"/api/proposals/{ref}/statements").json()[0]["id"])
    page = as_translator.get(f"/proposals/{ref}?lang=en").text
    translated = as_translator.post(
        f"/proposals/{ref}/translations",
        data={"csrf": _csrf(page), "target": str(sid), "language": "en", "text": "Share weights."},
        follow_redirects=False,
    )
    filled = as_translator.post(
        f"/proposals/{ref}/translations/machine", data={"csrf": _csrf(page)}, follow_redirects=False
    )
    english = client.get(f"/proposals/{ref}?lang=en").text
    chinese = client.get(f"/proposals/{ref}?lang=zh").text
    staff_page = as_staff.get(f"/proposals/{ref}").text
    hidden = as_staff.post(
        f"/proposals/{ref}/statements/{sid}/hide",
        data={"csrf": _csrf(staff_page), "reason": "Off topic."},
        follow_redirects=False,
    )
    reader = client.get(f"/proposals/{ref}?lang=en").text
    author = as_france.get(f"/proposals/{ref}?lang=en").text
    # Assert
    assert said.status_code == 303 and translated.status_code == 303, translated.text
    assert filled.status_code == 303
    assert 'lang="en"' in english and "Share weights." in english
    assert "translation by Translator" in english and 'href="?lang=fr"' in english
    assert "[zh] Partagez les poids." in chinese and "机器翻译" in chinese
    assert 'action="/proposals/' + ref + f'/statements/{sid}/hide"' in staff_page
    assert "Reason for hiding statement" in staff_page
    assert 'name="reason"' not in english  # readers cannot moderate
    assert hidden.status_code == 303
    assert "Hidden by the secretariat: Off topic." in reader and "Share weights." not in reader
    assert f"The secretariat hid your statement #{sid}: Off topic." in author
    assert "The secretariat hid your statement" not in reader
    assert f"/api/proposals/{ref}/export/comments.csv" in reader
    assert len(log_kinds(db, "statement.hidden")) == 1
