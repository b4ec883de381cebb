"""Licences the commons accepts: SPDX identifiers of open licences (as the Hub spells them,
in lower case) and the open RAIL licences."""

from __future__ import annotations

from concord.errors import N_, Invalid

OPEN = {
    "apache-2.0",
    "mit",
    "bsd-2-clause",
    "bsd-3-clause",
    "isc",
    "zlib",
    "bsl-1.0",
    "mpl-2.0",
    "epl-2.0",
    "eupl-1.2",
    "lgpl-2.1",
    "lgpl-3.0",
    "gpl-2.0",
    "gpl-3.0",
    "agpl-3.0",
    "artistic-2.0",
    "unlicense",
    "cc0-1.0",
    "cc-by-4.0",
    "cc-by-sa-4.0",
    "cc-by-3.0",
    "cc-by-sa-3.0",
    "odc-by",
    "odbl",
    "pddl",
    "cdla-permissive-2.0",
    "cdla-sharing-1.0",
    "ofl-1.1",
}
RAIL = {
    "openrail",
    "openrail++",
    "bigscience-openrail-m",
    "creativeml-openrail-m",
    "bigcode-openrail-m",
    "bigscience-bloom-rail-1.0",
}
NON_COMMERCIAL = {"cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0"}
KNOWN = OPEN | RAIL | NON_COMMERCIAL


class UnknownLicence(Invalid):
    code = "commons.unknown_licence"
    message = N_(
        "“{licence}” is not an SPDX licence identifier the commons knows, e.g. "
        "apache-2.0, mit, cc-by-4.0 or openrail."
    )


def check(licence: str) -> str:
    value = licence.strip().lower()
    if value not in KNOWN:
        raise UnknownLicence(licence=licence)
    return value
