"""Pages: browse and search the commons; a repository with its card, files, provenance and
conformance."""

from __future__ import annotations

import html
import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from concord.commons import repositories as repos
from concord.commons.labels import PROVENANCE_LABELS
from concord.commons.search import find
from concord.errors import N_
from concord.http import Db
from concord.members.auth import PagePerson
from concord.members.tables import Person
from concord.web.panels import panels
from concord.web.render import render

router = APIRouter(include_in_schema=False)
NAV = [("/commons", N_("Commons"))]


def card_html(text: str) -> Markup:
    """A small, safe Markdown subset: headings, paragraphs, lists, code; HTML is escaped."""
    if text.startswith("---"):
        parts = text.split("\n---", 1)
        text = parts[1] if len(parts) == 2 else text
    out: list[str] = []
    in_list = False
    for raw in text.strip().splitlines():
        line = html.escape(raw)
        line = re.sub(r"`([^`]+)`", r"<code>\1</code>", line)
        if raw.startswith(("- ", "* ")):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{line[2:]}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if raw.startswith("#"):
            level = min(4, len(raw) - len(raw.lstrip("#")) + 1)
            out.append(f"<h{level}>{line.lstrip('#').strip()}</h{level}>")
        elif raw.strip():
            out.append(f"<p>{line}</p>")
    if in_list:
        out.append("</ul>")
    return Markup("\n".join(out))  # noqa: S704 - every piece above was escaped


@router.get("/commons", response_class=HTMLResponse)
def browse(
    request: Request,
    db: Db,
    person: PagePerson,
    q: str = "",
    kind: str = "",
    licence: str = "",
    language: str = "",
    task: str = "",
) -> HTMLResponse:
    tags = [t for t in (language, task) if t] + ([f"license:{licence}"] if licence else [])
    rows = [(f.repo, f.revision) for f in find(db, kind, text=q, tags=tags, person=person)]
    return render(
        request,
        "commons/browse.html",
        {
            "rows": rows,
            "q": q,
            "kind": kind,
            "licence": licence,
            "language": language,
            "task": task,
            "repo_id": repos.repo_id,
        },
    )


def _page(
    request: Request, db: Db, kind: str, owner: str, name: str, person: Person | None
) -> HTMLResponse:
    repo = repos.seen(db, kind, owner, name, person)
    rev = repos.head(db, repo)
    files = repos.files(db, rev) if rev else []
    readme = next((f for f in files if f.path == "README.md"), None)
    card = ""
    if readme is not None:
        from concord.commons.chunks import open_store

        store = open_store(request.app.state.settings)
        card = b"".join(store.stream(db, readme.blob)).decode("utf-8", "replace")
    return render(
        request,
        "commons/repository.html",
        {
            "repo": repo,
            "rev": rev,
            "files": files,
            "card": card_html(card) if card else "",
            "id": repos.repo_id(repo),
            "downloads": repos.downloads_of(db, repo),
            "labels": PROVENANCE_LABELS,
            # Sections the domains above add (federation: how the model works for whom).
            "panels": panels(f"commons.{kind}", request, db, {"repo": repo, "rev": rev}),
        },
    )


@router.get("/commons/models/{owner}/{name}", response_class=HTMLResponse)
def model_page(request: Request, db: Db, person: PagePerson, owner: str, name: str) -> HTMLResponse:
    return _page(request, db, "model", owner, name, person)


@router.get("/commons/datasets/{owner}/{name}", response_class=HTMLResponse)
def dataset_page(
    request: Request, db: Db, person: PagePerson, owner: str, name: str
) -> HTMLResponse:
    return _page(request, db, "dataset", owner, name, person)
