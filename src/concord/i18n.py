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


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(language: str) -> dict[str, str]:
    """Every translated message of `language`, from all domains' catalogues."""
    messages: dict[str, str] = {}
    folder = LOCALE_DIR / language
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=language):
                if isinstance(message.id, str) and message.string and not message.fuzzy:
                    messages[message.id] = str(message.string)
    return messages


def gettext(message: str, language: str | None = None) -> str:
    """`message` in `language` (default: the current one), or unchanged when untranslated."""
    lang = language or current_language.get()
    if lang == "en":
        return message
    return catalogue(lang).get(message, message)


def ngettext(singular: str, plural: str, n: int, language: str | None = None) -> str:
    """Plural-aware lookup; catalogues key plurals by the singular, like gettext."""
    return gettext(singular if n == 1 else plural, language)


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
