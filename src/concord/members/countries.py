"""Countries with their UN M49 region, World Bank income group and G77 membership.

Read from `data/countries.csv`, an official table shipped with its sources and dates in
`data/SOURCES.md`; pycountry supplies the names. The Global South is the Group of 77 and China.
"""

from __future__ import annotations

import csv
import gettext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pycountry

from concord.errors import N_, Invalid
from concord.i18n import current_language

DATA = Path(__file__).parent / "data" / "countries.csv"
INCOME_GROUPS = ("low", "lower-middle", "upper-middle", "high")
REGIONS = ("Africa", "Americas", "Asia", "Europe", "Oceania")


class UnknownCountry(Invalid):
    code = "member.unknown_country"
    message = N_("“{code}” is not an ISO 3166-1 country code that Concord knows.")


@dataclass(frozen=True, slots=True)
class Country:
    iso2: str
    iso3: str
    m49: str
    name: str
    region: str
    sub_region: str
    intermediate_region: str
    ldc: bool
    lldc: bool
    sids: bool
    income_group: str
    g77: bool
    un_member: bool

    @property
    def global_south(self) -> bool:
        """G77 members plus China, the usual reading of “Global South” at the UN."""
        return self.g77 or self.iso2 == "CN"

    def local_name(self, language: str | None = None) -> str:
        """The country's name in `language` (default: the current one), from pycountry's
        ISO 3166 translations, which the Debian iso-codes project maintains."""
        return _iso3166(language or current_language.get()).gettext(self.name)


POSIX_LOCALES = {"zh": "zh_CN"}


@lru_cache(maxsize=8)
def _iso3166(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation(
        "iso3166-1",
        pycountry.LOCALES_DIR,
        languages=[POSIX_LOCALES.get(language, language)],
        fallback=True,
    )


@lru_cache(maxsize=1)
def all_countries() -> dict[str, Country]:
    """Every country by ISO alpha-2 code."""
    with DATA.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        row["iso2"]: Country(
            iso2=row["iso2"],
            iso3=row["iso3"],
            m49=row["m49"],
            name=row["name"],
            region=row["region"],
            sub_region=row["sub_region"],
            intermediate_region=row["intermediate_region"],
            ldc=row["ldc"] == "1",
            lldc=row["lldc"] == "1",
            sids=row["sids"] == "1",
            income_group=row["income_group"],
            g77=row["g77"] == "1",
            un_member=row["un_member"] == "1",
        )
        for row in rows
    }


def country(code: str) -> Country:
    """The country for an ISO alpha-2 or alpha-3 code, or `UnknownCountry`."""
    key = (code or "").strip().upper()
    countries = all_countries()
    if len(key) == 2 and key in countries:
        return countries[key]
    if len(key) == 3:
        for candidate in countries.values():
            if candidate.iso3 == key:
                return candidate
    raise UnknownCountry(code=code)
