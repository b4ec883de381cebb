"""Translations: the six UN languages, from gettext catalogues read at start.

Catalogues are plain `.po` files under `locale/<language>/<domain>.po`, one per domain so that
domains never edit each other's files; they are read with Babel and merged, so no compile step
is needed. The current language lives in a context variable set per request.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

LANGUAGES: dict[str, str] = {
    "ar": "العربية",
    "zh": "中文",
    "en": "English",
    "fr": "Français",
    "ru": "Русский",
    "es": "Español",
}
RTL = frozenset({"ar"})
LOCALE_DIR = Path(__file__).parent / "locale"

current_language: ContextVar[str] = ContextVar("current_language", default="en")


@lru_cache(maxsize=len(LANGUAGES) * 16)
def domain_catalogue(language: str, domain: str) -> dict[str, str]:
    """The translated messages of one domain's catalogue."""
    messages: dict[str, str] = {}
    path = LOCALE_DIR / language / f"{domain}.po"
    if not path.is_file():
        return messages
    with path.open("rb") as handle:
        for message in read_po(handle, locale=language):
            if isinstance(message.id, str) and message.string and not message.fuzzy:
                messages[message.id] = str(message.string)
    return messages


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(language: str) -> dict[str, str]:
    """Every translated message of `language`, from all domains' catalogues."""
    messages: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / language).glob("*.po")):
        messages.update(domain_catalogue(language, path.stem))
    return messages


def gettext(message: str, language: str | None = None, domain: str | None = None) -> str:
    """`message` in `language` (default: the current one), or unchanged when untranslated.

    The same English word may need different translations in different domains ("withdrawn"
    is a proposal in governance, feminine in French, and a member in members), so the caller's
    domain is looked up first and the merged catalogue only after it.
    """
    lang = language or current_language.get()
    if lang == "en":
        return message
    if domain is not None:
        found = domain_catalogue(lang, domain).get(message)
        if found is not None:
            return found
    return catalogue(lang).get(message, message)


def ngettext(
    singular: str, plural: str, n: int, language: str | None = None, domain: str | None = None
) -> str:
    """Plural-aware lookup; catalogues key plurals by the singular, like gettext."""
    return gettext(singular if n == 1 else plural, language, domain)


_ = gettext


def negotiate(accept_language: str | None, default: str = "en") -> str:
    """The best of our languages for an `Accept-Language` header."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        quality = 1.0
        for piece in pieces[1:]:
            name, _sep, value = piece.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, tag))
    for _quality, _position, tag in sorted(ranked):
        base = tag.split("-")[0]
        if base in LANGUAGES:
            return base
    return default
