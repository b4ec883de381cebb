"""Searching the commons: one function for the pages, `concord repo list` and the Hub
protocol's `list_models` / `list_datasets` (text, author, tags from the card, sort)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from concord.commons import likes
from concord.commons import repositories as repos
from concord.commons.tables import Repository, Revision
from concord.db import utcnow
from concord.members.tables import Person

SORTS = ("downloads", "lastModified", "createdAt", "likes", "id")


@dataclass(frozen=True, slots=True)
class Found:
    repo: Repository
    revision: Revision | None
    tags: list[str]
    downloads: int
    downloads_all_time: int
    likes: int


def card_tags(repo: Repository, card: dict[str, Any]) -> list[str]:
    """The Hub's tags for a repository, from its card: its own tags, library, task, languages,
    licence and datasets."""

    def listed(value: Any) -> list[str]:
        return [value] if isinstance(value, str) else [str(v) for v in (value or [])]

    tags = listed(card.get("tags"))
    for key in ("library_name", "pipeline_tag"):
        if card.get(key):
            tags.append(str(card[key]))
    tags += listed(card.get("language"))
    tags.append(f"license:{card.get('license', repo.licence) or 'unknown'}")
    tags += [f"dataset:{d}" for d in listed(card.get("datasets"))]
    return list(dict.fromkeys(tags))


def find(
    db: Session,
    kind: str,
    *,
    text: str = "",
    author: str = "",
    tags: list[str] | None = None,
    sort: str = "",
    descending: bool = True,
    person: Person | None = None,
) -> list[Found]:
    """Repositories of `kind` matching every criterion, sorted. The commons pages and the Hub
    listing both search with this."""
    month = utcnow() - timedelta(days=30)
    found = []
    for repo, rev in repos.list_repositories(db, kind=kind, query=text, person=person):
        if author and repo.owner != author:
            continue
        card = rev.card if rev else {}
        own = card_tags(repo, card)
        if tags and not all(t in own or f"language:{t}" in own for t in tags):
            continue
        found.append(
            Found(
                repo,
                rev,
                own,
                repos.downloads_of(db, repo, since=month),
                repos.downloads_of(db, repo),
                likes.count(db, repo),
            )
        )
    keys = {
        "downloads": lambda f: f.downloads,
        "lastModified": lambda f: f.revision.created_at if f.revision else f.repo.created_at,
        "createdAt": lambda f: f.repo.created_at,
        "likes": lambda f: f.likes,
        "id": lambda f: repos.repo_id(f.repo),
    }
    if sort in keys:
        found.sort(key=keys[sort], reverse=descending)
    return found
