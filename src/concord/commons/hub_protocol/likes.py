"""Likes at the Hub's addresses: like and unlike a repository, a user's likes, its likers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from concord.commons import likes
from concord.commons import repositories as repos
from concord.commons.hub_protocol.common import hub_time, kind_in, on
from concord.http import Db
from concord.members.auth import CurrentPerson, OptionalPerson

router = APIRouter(include_in_schema=False)


@on(router, "post", "/{owner}/{name}/like")
def like(owner: str, name: str, request: Request, db: Db, person: CurrentPerson) -> Response:
    repo = repos.seen(db, kind_in(request), owner, name, person)
    likes.like(db, repo, person)
    db.commit()
    return Response(status_code=200)


@on(router, "delete", "/{owner}/{name}/like")
def unlike(owner: str, name: str, request: Request, db: Db, person: CurrentPerson) -> Response:
    repo = repos.seen(db, kind_in(request), owner, name, person)
    likes.unlike(db, repo, person)
    db.commit()
    return Response(status_code=200)


@on(router, "get", "/{owner}/{name}/likers")
def likers(
    owner: str, name: str, request: Request, db: Db, person: OptionalPerson
) -> list[dict[str, Any]]:
    repo = repos.seen(db, kind_in(request), owner, name, person)
    return [
        {"user": likes.handle(who, member), "fullname": who.name, "avatarUrl": ""}
        for who, member in likes.likers(db, repo)
    ]


@router.get("/api/users/{user}/likes")
def liked(user: str, db: Db, person: OptionalPerson) -> list[dict[str, Any]]:
    return [
        {
            "createdAt": hub_time(found.created_at),
            "repo": {"name": repos.repo_id(repo), "type": repo.kind},
        }
        for found, repo in likes.liked_by(db, user, person)
    ]
