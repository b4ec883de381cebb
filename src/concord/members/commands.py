"""`concord member`, `concord person`, `concord token`, `concord bloc` and `concord keys`.

Member, person, token and bloc commands are the secretariat's, run on the hub's own machine
against its database. `concord keys` runs on a member's machine and talks to the hub over
HTTP, so the private key never leaves that machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from concord.client import from_environment
from concord.console import local_sessions, out
from concord.members import blocs, directory, keys, people, tokens

member_app = typer.Typer(
    help="Admit, list, suspend, reinstate and withdraw members.", no_args_is_help=True
)
person_app = typer.Typer(
    help="Register people: secretariat, delegates, observers.", no_args_is_help=True
)
token_app = typer.Typer(help="Issue, list and revoke API tokens.", no_args_is_help=True)
bloc_app = typer.Typer(help="List blocs and create custom ones.", no_args_is_help=True)
keys_app = typer.Typer(
    help="A member's Ed25519 key: generate it here, register it at the hub.", no_args_is_help=True
)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead of a table.")


def register(app: typer.Typer) -> None:
    app.add_typer(member_app, name="member")
    app.add_typer(person_app, name="person")
    app.add_typer(token_app, name="token")
    app.add_typer(bloc_app, name="bloc")
    app.add_typer(keys_app, name="keys")


@member_app.command("add")
def member_add(
    slug: str = typer.Argument(..., help="Short handle, e.g. `kenya`."),
    name: str = typer.Option(..., help="Full name."),
    country: str = typer.Option(..., help="ISO 3166-1 code of the member's country."),
    kind: str = typer.Option("country", help="country, university, ministry, lab, company, ngo"),
    reason: str = typer.Option("", help="Why, for the record."),
) -> None:
    """Admit a member. Logged."""
    with local_sessions()() as db:
        member = directory.admit(
            db, slug=slug, name=name, kind=kind, country_code=country, reason=reason
        )
        db.commit()
        out.print(f"[green]admitted[/] {member.slug} (id {member.id})")


@member_app.command("list")
def member_list(
    q: str = typer.Option("", help="Text in the name or handle."),
    region: str = typer.Option("", help="UN M49 region or sub-region."),
    income_group: str = typer.Option("", help="low, lower-middle, upper-middle, high"),
    as_json: bool = JSON_OPTION,
) -> None:
    """List members."""
    with local_sessions()() as db:
        views = directory.list_members(db, query=q, region=region, income_group=income_group)
        if as_json:
            from concord.members.models import MemberPublic

            out.print_json(json.dumps([MemberPublic.of(v).model_dump(mode="json") for v in views]))
            return
        table = Table("id", "handle", "name", "kind", "country", "region", "income", "status")
        for v in views:
            table.add_row(
                str(v.member.id),
                v.member.slug,
                v.member.name,
                v.member.kind,
                v.country.iso2,
                v.country.region,
                v.country.income_group,
                v.member.status,
            )
        out.print(table)


@member_app.command("show")
def member_show(ref: str = typer.Argument(..., help="Handle or id.")) -> None:
    """Show a member with its country, blocs and history."""
    with local_sessions()() as db:
        v = directory.view(db, directory.get_member(db, ref))
        out.print(
            f"[bold]{v.member.name}[/] ({v.member.slug}, {v.member.kind}) — {v.member.status}"
        )
        out.print(
            f"{v.country.name}: {v.country.region} / {v.country.sub_region}, "
            f"income {v.country.income_group or '—'}"
        )
        out.print("blocs: " + ", ".join(v.blocs))
        for h in v.member.history:
            out.print(f"  {h.at.date()} {h.action} {h.reason} (log #{h.log_index})")


def _standing(ref: str, reason: str, action: str) -> None:
    with local_sessions()() as db:
        member = directory.get_member(db, ref)
        getattr(directory, action)(db, member, reason)
        db.commit()
        out.print(f"[green]{member.slug}[/] is now {member.status}")


@member_app.command("suspend")
def member_suspend(ref: str, reason: str = typer.Option("", help="Why.")) -> None:
    """Suspend a member. Logged."""
    _standing(ref, reason, "suspend")


@member_app.command("reinstate")
def member_reinstate(ref: str, reason: str = typer.Option("", help="Why.")) -> None:
    """Lift a suspension. Logged."""
    _standing(ref, reason, "reinstate")


@member_app.command("withdraw")
def member_withdraw(ref: str, reason: str = typer.Option("", help="Why.")) -> None:
    """Record a member's withdrawal. Logged."""
    _standing(ref, reason, "withdraw")


@person_app.command("add")
def person_add(
    email: str = typer.Argument(...),
    name: str = typer.Option(...),
    role: str = typer.Option("delegate", help="secretariat, delegate, translator or observer"),
    member: str = typer.Option(None, help="The member a delegate acts for."),
) -> None:
    """Register a person."""
    with local_sessions()() as db:
        person = people.add_person(db, name=name, email=email, role=role, member=member)
        db.commit()
        out.print(f"[green]registered[/] {person.email} as {person.role} (id {person.id})")


@person_app.command("remove")
def person_remove(person: str = typer.Argument(..., help="E-mail address or id.")) -> None:
    """Remove a person: revokes their tokens and signs their browsers out."""
    with local_sessions()() as db:
        removed = people.remove_person(db, people.get_person(db, person))
        db.commit()
        out.print(f"[green]removed[/] {removed.email}; tokens revoked, browsers signed out")


@token_app.command("create")
def token_create(
    person: str = typer.Argument(..., help="E-mail address or id of the token's owner."),
    label: str = typer.Option("", help="What the token is for."),
    days: int = typer.Option(90, help="Lifetime in days."),
) -> None:
    """Issue a token. It is printed once; only its hash is kept."""
    with local_sessions()() as db:
        owner = people.get_person(db, person)
        issued = tokens.issue(db, owner, label=label, days=days)
        db.commit()
        out.print(
            f"token {issued.token.id} for {owner.email}, expires "
            f"{issued.token.expires_at.date()} — copy it now, it is not shown again:"
        )
        print(issued.secret)


@token_app.command("list")
def token_list(person: str = typer.Argument(..., help="E-mail address or id.")) -> None:
    """List a person's tokens (never their secrets)."""
    with local_sessions()() as db:
        table = Table("id", "label", "prefix", "created", "expires", "revoked", "last used")
        for t in tokens.tokens_of(db, people.get_person(db, person)):
            table.add_row(
                str(t.id),
                t.label,
                t.prefix,
                str(t.created_at.date()),
                str(t.expires_at.date()),
                str(t.revoked_at.date()) if t.revoked_at else "",
                str(t.last_used_at.date()) if t.last_used_at else "",
            )
        out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(...)) -> None:
    """Revoke a token at once; browsers signed in with it are signed out."""
    with local_sessions()() as db:
        tokens.revoke(db, token_id)
        db.commit()
        out.print(f"[green]revoked[/] token {token_id}")


@bloc_app.command("list")
def bloc_list() -> None:
    """List the blocs the charter can name."""
    with local_sessions()() as db:
        table = Table("name", "title", "kind", "members")
        for b in blocs.list_blocs(db):
            table.add_row(b.name, b.title, b.kind, str(len(b.member_ids)))
        out.print(table)


@bloc_app.command("create")
def bloc_create(
    name: str = typer.Argument(...),
    title: str = typer.Option(...),
    members: list[str] = typer.Option(..., "--member", help="Member handle; repeat."),
) -> None:
    """Create a custom bloc."""
    with local_sessions()() as db:
        ids = [directory.get_member(db, m).id for m in members]
        blocs.create_custom_bloc(db, name, title, ids)
        db.commit()
        out.print(f"[green]created[/] bloc {name} with {len(ids)} members")


@keys_app.command("generate")
def keys_generate(
    member: str = typer.Option(..., help="Your member's handle."),
    hub: str = typer.Option(None, help="Hub URL (default: CONCORD_HUB)."),
    token: str = typer.Option(None, help="Your API token (default: CONCORD_TOKEN)."),
    key_file: Path = typer.Option(None, help="Where to keep the private key."),
    force: bool = typer.Option(False, help="Replace an existing key file (rotation)."),
) -> None:
    """Generate a key pair here and register its public half at the hub."""
    path = key_file or keys.default_key_path(member)
    if path.exists() and not force:
        raise keys.KeyInUse("A key file exists at {path}; pass --force to rotate.", path=str(path))
    private = keys.generate()
    with from_environment(hub, token) as client:
        answer = client.post(
            f"/api/members/{member}/keys", json={"public_key": keys.public_base64(private)}
        )
    keys.save_private(private, path)
    out.print(f"[green]registered[/] key {answer['fingerprint'][:16]}… for {member}")
    out.print(f"private key kept at {path} (mode 600); back it up, the hub has no copy")


@keys_app.command("show")
def keys_show(member: str = typer.Argument(...), hub: str = typer.Option(None)) -> None:
    """Show a member's registered public keys."""
    with from_environment(hub, None) as client:
        for k in client.get(f"/api/members/{member}/keys"):
            state = "retired" if k["retired_at"] else "current"
            out.print(f"{k['fingerprint']} {state} since {k['created_at'][:10]}")
