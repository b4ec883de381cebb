"""Translations: every marked string is translated into the five other UN languages."""

from __future__ import annotations

from concord.catalogue import missing
from concord.i18n import LANGUAGES, gettext, negotiate


def test_six_un_languages() -> None:
    assert set(LANGUAGES) == {"ar", "zh", "en", "fr", "ru", "es"}


def test_every_marked_string_is_translated() -> None:
    gaps = missing()
    shown = "\n".join(f"{lang} {domain}: {msgid!r}" for lang, domain, msgid in gaps[:20])
    assert not gaps, (
        f"{len(gaps)} untranslated strings; run `python -m concord.catalogue update` and "
        f"fill in the .po files:\n{shown}"
    )


def test_lookup_translates_and_falls_back() -> None:
    assert gettext("Members", "fr") != "Members"
    assert gettext("Members", "en") == "Members"
    assert gettext("a string nobody marked", "ar") == "a string nobody marked"


def test_negotiation_follows_the_browser() -> None:
    assert negotiate("fr-CH, fr;q=0.9, en;q=0.8") == "fr"
    assert negotiate("de-DE,de;q=0.9,ar;q=0.5") == "ar"
    assert negotiate("zh-Hans-CN") == "zh"
    assert negotiate("de, it;q=0.5") == "en"
    assert negotiate(None, "es") == "es"


def test_a_word_translates_as_its_domain_says() -> None:
    """ "withdrawn" is a proposal (feminine) in governance and a member in members."""
    from concord.i18n import current_language
    from concord.web.render import environment

    env = environment()
    token = current_language.set("fr")
    try:
        rendered = {}
        for domain in ("governance", "members"):
            template = env.from_string("{{ _('withdrawn') }}")
            template.name = f"{domain}/page.html"
            rendered[domain] = template.render()
    finally:
        current_language.reset(token)
    assert rendered == {"governance": "retirée", "members": "retiré"}
