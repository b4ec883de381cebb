"""Keeping the translation catalogues complete (a developer's tool, and a test's).

`python -m concord.catalogue update [DOMAIN]` extracts every marked string (`_()`, `N_()`,
`gettext`, `_()` in templates) from each domain and writes the domain's `.po` file for each
language, keeping existing translations. `python -m concord.catalogue` lists what is not yet
translated; `tests/test_i18n.py` fails while that list is not empty.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from concord.i18n import LANGUAGES, LOCALE_DIR

SRC = Path(__file__).parent
# `_fail` builds audit failures from catalogue messages (concord.ledger.audit).
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "_fail": None}
METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**/templates/**.svg", "jinja2"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
CORE = "core"


def domain_of(relative: str) -> str:
    """The catalogue a source file's strings go to: its domain folder, or `core`."""
    first = relative.split("/")[0]
    return first if (SRC / first).is_dir() and first not in ("locale", "migrations") else CORE


def extract() -> dict[str, dict[str, list[str]]]:
    """Every marked message, by catalogue, with where it appears."""
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for filename, lineno, message, _comments, _context in extract_from_dir(
        SRC,
        METHODS,
        keywords=KEYWORDS,
        options_map=OPTIONS,
    ):
        if "/migrations/" in f"/{filename}" or filename.startswith("catalogue"):
            continue
        ids = message if isinstance(message, tuple) else (message,)
        for msgid in ids:
            if msgid:
                found[domain_of(filename)][msgid].append(f"{filename}:{lineno}")
    return {d: dict(m) for d, m in found.items()}


def _read(path: Path, language: str) -> Catalog:
    if not path.exists():
        return Catalog(locale=language)
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def update(only: str | None = None) -> None:
    """Writes every domain's catalogue (or just `only`'s) for every language, keeping
    translations."""
    messages = extract()
    if only is not None:
        messages = {d: m for d, m in messages.items() if d == only}
    for language in LANGUAGES:
        if language == "en":
            continue
        for domain, ids in messages.items():
            path = LOCALE_DIR / language / f"{domain}.po"
            old = _read(path, language)
            new = Catalog(locale=language, project="Concord", domain=domain)
            for msgid, places in sorted(ids.items()):
                previous = old.get(msgid)
                new.add(
                    msgid,
                    previous.string if previous is not None else "",
                    locations=[(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in places],
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                write_po(handle, new, width=100, omit_header=False, sort_output=True)


def missing() -> list[tuple[str, str, str]]:
    """(language, domain, message) for every marked message without a translation."""
    gaps = []
    messages = extract()
    for language in LANGUAGES:
        if language == "en":
            continue
        for domain, ids in messages.items():
            catalog = _read(LOCALE_DIR / language / f"{domain}.po", language)
            for msgid in ids:
                entry = catalog.get(msgid)
                if entry is None or not entry.string or entry.fuzzy:
                    gaps.append((language, domain, msgid))
    return gaps


if __name__ == "__main__":
    if sys.argv[1:2] == ["update"]:
        update(sys.argv[2] if len(sys.argv) > 2 else None)
    gaps = missing()
    for language, domain, msgid in gaps:
        print(f"{language}\t{domain}\t{msgid}")
    print(f"{len(gaps)} untranslated", file=sys.stderr)
