"""Rendering pages: one Jinja2 environment over the shell's and every domain's templates.

Domains keep their templates in `concord/<domain>/templates/<domain>/`; their `pages.py`
modules call `render` here. Strings go through the catalogue with `{% trans %}` / `_()`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.concurrency import run_in_threadpool

from concord.domains import DOMAINS
from concord.errors import ConcordError
from concord.http import page_session
from concord.i18n import LANGUAGES, RTL, current_language, gettext, ngettext
from concord.web.numbers import FILTERS

ROOT = Path(__file__).parent.parent


@lru_cache(maxsize=1)
def environment() -> Environment:
    folders = [str(ROOT / "web" / "templates")]
    folders += [str(ROOT / d / "templates") for d in DOMAINS if (ROOT / d / "templates").is_dir()]
    env = Environment(
        loader=FileSystemLoader(folders),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_template_gettext, ngettext=_template_ngettext, newstyle=True
    )
    env.globals["LANGUAGES"] = LANGUAGES
    env.filters.update(FILTERS)  # numbers in the reader's language: `{{ total|number }}`
    return env


def template_domain(name: str | None) -> str:
    """A domain's templates live under `<domain>/`; the shell's own are the `web` domain's."""
    head, sep, _rest = (name or "").partition("/")
    return head if sep and head in DOMAINS else "web"


@pass_context
def _template_gettext(context: Context, message: str) -> str:
    return gettext(message, domain=template_domain(context.name))


@pass_context
def _template_ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return ngettext(singular, plural, n, domain=template_domain(context.name))


def nav_items() -> list[tuple[str, str]]:
    """The main navigation: (path, label) for each domain that has pages."""
    from concord.domains import domain_modules

    items: list[tuple[str, str]] = []
    for module in domain_modules("pages"):
        items += getattr(module, "NAV", [])
    return items


def base_context(request: Request) -> dict[str, Any]:
    from concord.members.auth import csrf_token, page_person

    lang = current_language.get()
    with page_session(request) as db:
        who = _who(page_person(request, db))
    return {
        "request": request,
        "lang": lang,
        "dir": "rtl" if lang in RTL else "ltr",
        "me": who,
        "csrf": csrf_token(request),
        "nav": nav_items(),
        "path": request.url.path,
    }


def _who(person: Any) -> dict[str, Any] | None:
    if person is None:
        return None
    member = person.member.slug if person.member else None
    return {"name": person.name, "role": person.role, "member": member}


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """A full page (or, for htmx requests asking for a fragment, the template alone)."""
    values = base_context(request)
    values.update(context or {})
    html = environment().get_template(template).render(values)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, exc: ConcordError) -> HTMLResponse:
    """The page for a coded error, in the reader's language.

    It runs after the handler's session has closed, so it reads who is signed in through a
    short session of its own; call it in a worker thread (`error_page_async`), never on the
    event loop, where waiting for the database would stall every other request.
    """
    return render(
        request, "error.html", {"code": exc.code, "message": exc.render()}, status=exc.status
    )


async def error_page_async(request: Request, exc: ConcordError) -> HTMLResponse:
    """`error_page` for the app's (async) exception handlers, rendered in a worker thread."""
    return await run_in_threadpool(error_page, request, exc)
