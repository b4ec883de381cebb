"""`concord propose`, `concord proposal`, `concord statement`, `concord vote`, `concord ballot`,
`concord proxy` and `concord charter`.

A delegate's commands run on the member's machine and talk to the hub over HTTP (`--hub`,
`--token`, or CONCORD_HUB / CONCORD_TOKEN); `concord ballot` signs with the member's private key
here, so the key never leaves this machine. `concord charter` is the secretariat's and runs on
the hub against its database, like `concord member`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from concord.client import HubClient, from_environment
from concord.console import local_sessions, out
from concord.errors import N_, Invalid
from concord.governance import ballots, charter, proxies
from concord.members import keys

proposal_app = typer.Typer(
    help="List, show and move proposals through their phases.", no_args_is_help=True
)
charter_app = typer.Typer(help="Show and edit the charter's decision rules.", no_args_is_help=True)
conversation_app = typer.Typer(
    help="Members' words: translations, moderation and the Polis-shaped export.",
    no_args_is_help=True,
)
proxy_app = typer.Typer(
    help="Give your member's vote to another member, signed here; revoke it.",
    no_args_is_help=True,
)

HUB = typer.Option(None, "--hub", help="Hub URL (default: CONCORD_HUB).")
TOKEN = typer.Option(None, "--token", help="Your API token (default: CONCORD_TOKEN).")
JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")


class BadOption(Invalid):
    code = "cli.bad_option"
    message = N_("The option is not valid: {reason}")


def register(app: typer.Typer) -> None:
    app.command("propose")(propose)
    app.add_typer(proposal_app, name="proposal")
    app.command("statement")(statement)
    app.command("vote")(vote)
    app.command("ballot")(ballot)
    app.add_typer(charter_app, name="charter")
    app.add_typer(conversation_app, name="conversation")
    app.add_typer(proxy_app, name="proxy")


def _texts(values: list[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for value in values:
        language, sep, text = value.partition("=")
        if not sep:
            raise BadOption(reason='--text takes LANG=TEXT, e.g. en="…"')
        texts[language.strip()] = text
    return texts


def propose(
    kind: str = typer.Argument(..., help="standard, project or resolution"),
    title: str = typer.Option(..., help="The title."),
    text: list[str] = typer.Option(..., help="LANG=TEXT, once per language."),
    body_file: Path = typer.Option(None, help="JSON: the job spec (project) or rules (standard)."),
    cosponsor: list[str] = typer.Option([], help="A co-sponsoring member; repeat."),
    method: str = typer.Option(
        None,
        help='A resolution\'s decision method as JSON, e.g. \'{"name": "stv", "options": '
        '["a", "b", "c"], "seats": 2}\' (default: the charter rule).',
    ),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Draft a proposal sponsored by your member. Logged."""
    body: dict[str, Any] = json.loads(body_file.read_text()) if body_file else {}
    extra = {"method": _json_option("--method", method)} if method else {}
    with from_environment(hub, token) as client:
        made = client.post(
            "/api/proposals",
            json={
                "kind": kind,
                "title": title,
                "texts": _texts(text),
                "body": body,
                "cosponsors": cosponsor,
                **extra,
            },
        )
    out.print(f"[green]drafted[/] {made['reference']}: {made['title']}")


@proposal_app.command("list")
def proposal_list(
    status: str = typer.Option("", help="Only this phase."),
    hub: str = HUB,
    as_json: bool = JSON_OPTION,
) -> None:
    """List proposals."""
    with from_environment(hub, None) as client:
        rows = client.get("/api/proposals", params={"status": status})
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("reference", "kind", "status", "sponsor", "title")
    for p in rows:
        table.add_row(p["reference"], p["kind"], p["status"], p["sponsor"], p["title"])
    out.print(table)


@proposal_app.command("show")
def proposal_show(ref: str, hub: str = HUB) -> None:
    """Show a proposal, its statements and, once decided, its arithmetic."""
    with from_environment(hub, None) as client:
        p = client.get(f"/api/proposals/{ref}")
        out.print(
            f"[bold]{p['reference']}[/] {p['title']} — {p['status']} (sponsor {p['sponsor']})"
        )
        for language, text in p["texts"].items():
            out.print(f"[{language}] {text}")
        for s in client.get(f"/api/proposals/{ref}/statements"):
            out.print(f"  #{s['id']} {s['text']}")
        if p["status"] in ("adopted", "rejected"):
            d = client.get(f"/api/proposals/{ref}/decision")
            out.print(_arithmetic(d["arithmetic"]))


def _json_option(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise BadOption(reason=f"{name} takes JSON") from None


def _arithmetic(a: dict[str, Any]) -> str:
    if "method" in a:
        lines = [f"{a['outcome']} by {a['method']['name']} of {a['eligible']} eligible"]
        lines += [
            f"  {r['rank']}. {r['option']}" + (f" ({r['total']})" if "total" in r else "")
            for r in a["ranked"]
        ]
        return "\n".join(lines)
    lines = [
        f"{a['outcome']} under {a['rule']['name']}: "
        + ", ".join(f"{k} {v}" for k, v in a["counts"].items())
        + f" of {a['eligible']} eligible"
    ]
    for c in a["checks"]:
        figures = {k: v for k, v in c.items() if k not in ("check", "met")}
        lines.append(f"  {'✓' if c['met'] else '✗'} {c['check']} {figures}")
    return "\n".join(lines)


def _act(ref: str, path: str, hub: str | None, token: str | None, body: Any = None) -> Any:
    with from_environment(hub, token) as client:
        return client.post(f"/api/proposals/{ref}/{path}", json=body if body is not None else {})


@proposal_app.command("deliberate")
def proposal_deliberate(ref: str, hub: str = HUB, token: str = TOKEN) -> None:
    """Open deliberation on a draft (sponsors)."""
    out.print(f"{ref}: {_act(ref, 'deliberation', hub, token)['status']}")


@proposal_app.command("open-ballot")
def proposal_open_ballot(
    ref: str,
    closes_at: str = typer.Option(None, help="ISO time the ballot closes."),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """End deliberation and open the ballot (sponsors)."""
    out.print(f"{ref}: {_act(ref, 'ballot', hub, token, {'closes_at': closes_at})['status']}")


@proposal_app.command("consultation")
def proposal_consultation(
    ref: str,
    public: bool = typer.Option(True, "--open/--close"),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Open or close the public consultation (sponsors)."""
    p = _act(ref, "consultation", hub, token, {"public": public})
    out.print(f"{ref}: public consultation {'open' if p['public_consultation'] else 'closed'}")


@proposal_app.command("withdraw")
def proposal_withdraw(
    ref: str, reason: str = typer.Option(""), hub: str = HUB, token: str = TOKEN
) -> None:
    """Withdraw a proposal (sponsors)."""
    out.print(f"{ref}: {_act(ref, 'withdraw', hub, token, {'reason': reason})['status']}")


@proposal_app.command("amend")
def proposal_amend(
    ref: str,
    text: str = typer.Option(...),
    language: str = typer.Option("en"),
    reason: str = typer.Option(""),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Propose an amendment: a new text in one language."""
    a = _act(ref, "amendments", hub, token, {"language": language, "text": text, "reason": reason})
    out.print(f"amendment {a['id']} to {ref}: {a['status']}")


@proposal_app.command("decide-amendment")
def proposal_decide_amendment(
    ref: str,
    amendment: int,
    accept: bool = typer.Option(True, "--accept/--decline"),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Accept or decline an amendment (sponsors)."""
    path = f"amendments/{amendment}/{'accept' if accept else 'decline'}"
    out.print(f"amendment {amendment}: {_act(ref, path, hub, token)['status']}")


@proposal_app.command("amendment-ballot")
def proposal_amendment_ballot(ref: str, amendment: int, hub: str = HUB, token: str = TOKEN) -> None:
    """Put an amendment to a ballot of its own (sponsors)."""
    answer = _act(ref, f"amendments/{amendment}/ballot", hub, token)
    out.print(f"amendment {amendment}: {answer['status']}")


@proposal_app.command("close")
def proposal_close(
    ref: str,
    amendment: int = typer.Option(None, help="Close this amendment's ballot instead."),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Close the ballot and record the decision (sponsors, secretariat)."""
    path = f"amendments/{amendment}/close" if amendment else "close"
    out.print(_arithmetic(_act(ref, path, hub, token)["arithmetic"]))


@proposal_app.command("close-due")
def proposal_close_due() -> None:
    """Close every ballot whose closing time has passed (on the hub; run it from cron)."""
    with local_sessions()() as db:
        decisions = ballots.close_due(db)
        db.commit()
        for d in decisions:
            out.print(f"{d.arithmetic['rule']['name']}: {d.outcome} (log #{d.log_index})")


def statement(
    ref: str = typer.Argument(..., help="The proposal."),
    text: str = typer.Argument(None, help="The statement; omit to list them."),
    language: str = typer.Option("en", "--language", help="Its language: ar zh en fr ru es."),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Add a statement to a deliberation, or list its statements."""
    with from_environment(hub, token) as client:
        if text is None:
            for s in client.get(f"/api/proposals/{ref}/statements"):
                out.print(f"#{s['id']} ({s['member'] or 'observer'}) {s['text']}")
            return
        s = client.post(
            f"/api/proposals/{ref}/statements", json={"text": text, "language": language}
        )
    out.print(f"[green]statement[/] #{s['id']} on {ref}")


def vote(
    ref: str = typer.Argument(..., help="The proposal."),
    statement_id: int = typer.Argument(..., help="The statement's number."),
    choice: str = typer.Argument(..., help="agree, disagree or pass"),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Vote on a statement; the latest vote counts."""
    with from_environment(hub, token) as client:
        client.post(f"/api/proposals/{ref}/statements/{statement_id}/votes", json={"vote": choice})
    out.print(f"{choice} on #{statement_id}")


def _member(client: HubClient, member: str | None) -> str:
    if member:
        return member
    me = client.get("/api/me")
    if not me.get("member"):
        raise BadOption(reason="only a member's delegate casts a ballot")
    return str(me["member"])


def ballot(
    ref: str = typer.Argument(..., help="The proposal."),
    choice: str = typer.Argument(..., help="yes, no, abstain or objection"),
    reason: str = typer.Option("", help="Why (required for an objection)."),
    member: str = typer.Option(None, help="Your member (default: your token's)."),
    key_file: Path = typer.Option(None, help="The member's private key (default: keys dir)."),
    amendment: int = typer.Option(None, help="Vote on this amendment of the proposal."),
    vote: str = typer.Option(
        None,
        help='Under a decision method (CHOICE is then its name): JSON, e.g. \'["b", "a"]\' '
        "(irv, stv, approval), '{\"a\": 5}' (score, dots) or '\"block\"' (consent).",
    ),
    print_only: bool = typer.Option(
        False, "--print", help="Print the signed ballot; send nothing."
    ),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Sign a ballot with your member's private key, here, and cast it. Logged."""
    with from_environment(hub, token) as client:
        slug = _member(client, member)
        private = keys.load_private(key_file or keys.default_key_path(slug))
        reference = ref.upper() + (f"/A{amendment}" if amendment else "")
        shaped = _json_option("--vote", vote) if vote is not None else None
        payload = ballots.make_payload(reference, slug, choice, reason, vote=shaped)
        signed = {"payload": payload, "signature": keys.sign(private, ballots.message(payload))}
        if print_only:
            out.print_json(json.dumps(signed))
            return
        path = f"amendments/{amendment}/ballots" if amendment else "ballots"
        client.post(f"/api/proposals/{ref}/{path}", json={"ballots": [signed]})
    out.print(f"[green]cast[/] {choice} on {reference} for {slug} (signed here)")


@proxy_app.command("grant")
def proxy_grant(
    holder: str = typer.Argument(..., help="The member that will vote for yours."),
    proposal: str = typer.Option("", help="For this proposal only."),
    start: str = typer.Option("", "--from", help="Or for ballots closing from (ISO UTC)…"),
    until: str = typer.Option("", help="…until (ISO UTC)."),
    member: str = typer.Option(None, help="Your member (default: your token's)."),
    key_file: Path = typer.Option(None, help="The member's private key (default: keys dir)."),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Sign a proxy with your member's private key, here, and record it. Logged."""
    with from_environment(hub, token) as client:
        slug = _member(client, member)
        private = keys.load_private(key_file or keys.default_key_path(slug))
        payload = proxies.make_payload(slug, holder, proposal.upper())
        payload["from"], payload["until"] = start, until
        signed = {"payload": payload, "signature": keys.sign(private, proxies.message(payload))}
        made = client.post("/api/proxies", json=signed)
    out.print(f"[green]proxy {made['id']}[/]: {holder} votes for {slug} (signed here)")


@proxy_app.command("revoke")
def proxy_revoke(proxy_id: int, hub: str = HUB, token: str = TOKEN) -> None:
    """Revoke your member's proxy (until its ballot closes). Logged."""
    with from_environment(hub, token) as client:
        client.post(f"/api/proxies/{proxy_id}/revoke", json={})
    out.print(f"proxy {proxy_id} revoked")


@charter_app.command("show")
def charter_show(version: int = typer.Option(None, help="An earlier version.")) -> None:
    """Print the charter in force (TOML)."""
    with local_sessions()() as db:
        if version is None:
            current = charter.current(db)
            typer.echo(f"# version {current.version}")
            typer.echo(current.text)
            return
        for row in charter.versions(db):
            if row.version == version:
                typer.echo(row.text)
                return
        raise BadOption(reason=f"there is no version {version}")


@charter_app.command("set")
def charter_set(
    path: Path = typer.Argument(..., help="The new charter, TOML."),
    note: str = typer.Option("", help="What changed and why."),
) -> None:
    """Store a new version of the charter. Logged."""
    with local_sessions()() as db:
        row = charter.update(db, path.read_text(), None, note)
        db.commit()
        out.print(f"[green]charter version {row.version}[/] (log #{row.log_index})")


@charter_app.command("versions")
def charter_versions() -> None:
    """List the charter's versions."""
    with local_sessions()() as db:
        for row in charter.versions(db):
            out.print(
                f"{row.version}  {row.created_at:%Y-%m-%d %H:%M}  log #{row.log_index}  {row.note}"
            )


@charter_app.command("presets")
def charter_presets() -> None:
    """Print the default charter with every preset rule."""
    typer.echo(charter.DEFAULT_CHARTER)


def _provenance(w: dict[str, Any]) -> str:
    if w["origin"] == "original":
        return "original"
    if w["origin"] == "machine":
        return f"machine translation from {w['original_language']}"
    return f"translation by {w['translator']} from {w['original_language']}"


@conversation_app.command("words")
def conversation_words(
    ref: str = typer.Argument(..., help="The proposal."),
    lang: str = typer.Option("en", "--lang", help="The language to read in."),
    hub: str = HUB,
) -> None:
    """The proposal's text and its statements as a reader in LANG sees them, with provenance."""
    with from_environment(hub, None) as client:
        shown = client.get(f"/api/proposals/{ref}/words", params={"lang": lang})
    for w in shown:
        name = "text" if w["statement"] is None else f"#{w['statement']}"
        if w["hidden"]:
            out.print(f"{name} [hidden by the secretariat: {w['hidden_reason']}]", markup=False)
        else:
            out.print(f"{name} [{w['language']}, {_provenance(w)}] {w['text']}", markup=False)


@conversation_app.command("translations")
def conversation_translations(ref: str, hub: str = HUB, json_out: bool = JSON_OPTION) -> None:
    """Every translation of a proposal's text and statements, and who made it."""
    with from_environment(hub, None) as client:
        rows = client.get(f"/api/proposals/{ref}/translations")
    if json_out:
        out.print_json(json.dumps(rows))
        return
    for t in rows:
        name = "text" if t["statement"] is None else f"#{t['statement']}"
        who = t["translator"] or "machine translation"
        out.print(f"{name} {t['language']} ({who}) {t['text']}", markup=False)


@conversation_app.command("translate")
def conversation_translate(
    ref: str = typer.Argument(..., help="The proposal."),
    language: str = typer.Argument(..., help="ar zh en fr ru es"),
    text: str = typer.Argument(..., help="The translation."),
    statement_id: int = typer.Option(
        None, "--statement", help="The statement; omit for the proposal's text."
    ),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Translate a proposal's text or a statement (delegates, translators). Logged."""
    with from_environment(hub, token) as client:
        t = client.post(
            f"/api/proposals/{ref}/translations",
            json={"statement": statement_id, "language": language, "text": text},
        )
    name = "the text" if t["statement"] is None else f"#{t['statement']}"
    out.print(f"[green]translated[/] {name} of {ref} into {t['language']} (log #{t['log_index']})")


@conversation_app.command("machine")
def conversation_machine(ref: str, hub: str = HUB, token: str = TOKEN) -> None:
    """Fill every untranslated language with the hub's machine translation (labelled so)."""
    with from_environment(hub, token) as client:
        made = client.post(f"/api/proposals/{ref}/translations/machine")
    out.print(f"{len(made)} machine translations on {ref}")


@conversation_app.command("hide")
def conversation_hide(
    ref: str = typer.Argument(..., help="The proposal."),
    statement_id: int = typer.Argument(..., help="The statement's number."),
    reason: str = typer.Argument(..., help="Why; its author and every reader see it."),
    hub: str = HUB,
    token: str = TOKEN,
) -> None:
    """Hide a statement with a reason (secretariat). Logged; its author is told."""
    with from_environment(hub, token) as client:
        client.post(f"/api/proposals/{ref}/statements/{statement_id}/hide", json={"reason": reason})
    out.print(f"hid #{statement_id} on {ref}")


@conversation_app.command("notices")
def conversation_notices(hub: str = HUB, token: str = TOKEN) -> None:
    """Your statements that the secretariat hid, and why."""
    with from_environment(hub, token) as client:
        notices = client.get("/api/notices")
    if not notices:
        out.print("no notices")
    for n in notices:
        out.print(
            f"{n['proposal']} #{n['statement']} hidden by the secretariat: {n['reason']}",
            markup=False,
        )


@conversation_app.command("export")
def conversation_export(
    ref: str = typer.Argument(..., help="The proposal."),
    folder: Path = typer.Option(Path("."), "--out", help="Folder for the files."),
    hub: str = HUB,
) -> None:
    """Write comments.csv, votes.csv, participants-votes.csv (Polis' columns) and
    conversation.json into a folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with from_environment(hub, None) as client:
        for name in ("comments.csv", "votes.csv", "participants-votes.csv"):
            data = client.get(f"/api/proposals/{ref}/export/{name}")
            (folder / name).write_bytes(data if isinstance(data, bytes) else str(data).encode())
        whole = client.get(f"/api/proposals/{ref}/export/conversation.json")
        (folder / "conversation.json").write_text(json.dumps(whole, ensure_ascii=False, indent=1))
    out.print(f"exported {ref} to {folder}")
