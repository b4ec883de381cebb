"""Numbers as people write them, in the reader's language.

Pages printed Python's own forms ("4.66e+05 examples", "0.001016 kWh"): no reader writes a
number that way, and each language groups digits and marks decimals differently (French
"466 000,5" with narrow no-break spaces, Spanish "466.000,5", Russian "466 000,5"). These
functions format with Babel's CLDR data for the request's language, choose a unit a person
would choose (Wh below one kWh, MWh above a thousand), and are the Jinja filters of every
page (`environment()` in `concord.web.render` registers `FILTERS`).

Moments and durations are figures too: `utc_moment` writes a date and time of day in UTC the
way the reader's language does ("2 déc. 2026, 06:41:07"), `seconds` a duration with the
language's own word and plural ("5 секунд").

Anything that is not a number (a dash for a missing figure, a label) passes through unchanged,
so a template can filter a cell without first testing what is in it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from numbers import Real
from typing import Any

from babel import Locale
from babel.dates import format_datetime
from babel.numbers import format_compact_decimal, format_decimal, format_percent
from babel.units import format_unit

from concord.errors import N_
from concord.i18n import current_language, gettext

# A unit symbol and the number of base units it holds, smallest first; the base unit of each
# scale is the one the records keep (energy in kWh, emissions in kg, sizes in bytes).
ENERGY = [(N_("Wh"), 1e-3), (N_("kWh"), 1.0), (N_("MWh"), 1e3), (N_("GWh"), 1e6)]
EMISSIONS = [(N_("g CO2e"), 1e-3), (N_("kg CO2e"), 1.0), (N_("t CO2e"), 1e3)]
SIZES = [(N_("B"), 1), (N_("kB"), 1e3), (N_("MB"), 1e6), (N_("GB"), 1e9), (N_("TB"), 1e12)]

SIGNIFICANT = 3  # digits shown of a measured figure: 0.001016 → 0.00102, 12.345 → 12.3
COMPACT_FROM = 1_000_000  # counts below this are shown in full; above, "1.2 M"
NBSP = "\u00a0"  # a number and its unit stay on one line


def _locale(language: str | None) -> str:
    return language or current_language.get()


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _pattern(value: float, significant: int) -> str:
    """A CLDR pattern with as many optional decimals as `significant` digits need."""
    if value == 0:
        return "#,##0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, min(significant - 1 - magnitude, 12))
    return "#,##0" + ("." + "#" * decimals if decimals else "")


def number(value: Any, digits: int | None = None, language: str | None = None) -> Any:
    """A figure with the language's grouping and decimal mark.

    Whole numbers are shown whole ("466 000"); others keep `SIGNIFICANT` significant digits
    (never scientific notation), or exactly `digits` decimals when given ("0,912").
    """
    if not _is_number(value):
        return value
    if digits is not None:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
    elif float(value).is_integer():
        pattern = "#,##0"
    else:
        pattern = _pattern(float(value), SIGNIFICANT)
    return format_decimal(value, format=pattern, locale=_locale(language))


def percent(share: Any, digits: int = 0, language: str | None = None) -> Any:
    """A share (0.466) as a percentage in the language's form ("47 %", "47%")."""
    if not _is_number(share):
        return share
    locale = Locale.parse(_locale(language))
    pattern = locale.percent_formats[None].pattern  # where the sign goes, and its spacing
    if digits:
        pattern = pattern.replace("0", "0." + "0" * digits, 1)
    return format_percent(share, format=pattern, locale=locale)


def count(value: Any, language: str | None = None) -> Any:
    """A count in full up to a million, then compact ("1,2 M", "123,5万")."""
    if not _is_number(value):
        return value
    if abs(value) < COMPACT_FROM:
        return number(round(value), language=language)
    return format_compact_decimal(value, fraction_digits=1, locale=_locale(language))


def scaled(value: Any, units: list[tuple[str, float]], language: str | None = None) -> Any:
    """`value` (in the scale's base unit) in the largest unit that keeps it at or above one."""
    if not _is_number(value):
        return value
    symbol, factor = units[0]
    for candidate, size in units:
        if abs(value) >= size:
            symbol, factor = candidate, size
    shown = value / factor
    # Two significant digits below ten read as a measurement ("1,0 Wh"), not as an exact count.
    pattern = "#,##0.0" if abs(shown) < 10 else _pattern(shown, SIGNIFICANT)
    text = format_decimal(shown, format=pattern, locale=_locale(language))
    return f"{text}{NBSP}{gettext(symbol, language, domain='web')}"


def energy(kwh: Any, language: str | None = None) -> Any:
    """Energy recorded in kWh, as Wh, kWh, MWh or GWh."""
    return scaled(kwh, ENERGY, language)


def emissions(kg: Any, language: str | None = None) -> Any:
    """Emissions recorded in kg CO2e, as g, kg or t CO2e."""
    return scaled(kg, EMISSIONS, language)


def size(octets: Any, language: str | None = None) -> Any:
    """A file size in bytes, in SI decimal units (1 kB = 1000 B)."""
    if _is_number(octets) and abs(octets) < 1000:
        return f"{number(octets, language=language)}{NBSP}{gettext('B', language, domain='web')}"
    return scaled(octets, SIZES, language)


def utc_moment(value: Any, language: str | None = None) -> Any:
    """A moment (a datetime, or its ISO 8601 text as the API gives it) as the date and time of
    day in UTC, to the second; the page names the zone. The date stays: a map or a figure may
    have been computed on another day than the one it is read on."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # the database keeps UTC
    return format_datetime(value, "medium", tzinfo=UTC, locale=_locale(language))


def seconds(value: Any, language: str | None = None) -> Any:
    """A duration in seconds with the language's word for it, plural included ("5 seconds",
    "5 секунд", "5秒钟")."""
    if not _is_number(value):
        return value
    whole = float(value).is_integer()
    pattern = "#,##0" if whole else _pattern(float(value), SIGNIFICANT)
    amount = int(value) if whole else value  # 5.0 takes the plural of 5
    return format_unit(
        amount, "duration-second", length="long", format=pattern, locale=_locale(language)
    )


FILTERS = {
    "number": number,
    "percent": percent,
    "count": count,
    "energy": energy,
    "emissions": emissions,
    "size": size,
    "utc_moment": utc_moment,
    "seconds": seconds,
}
