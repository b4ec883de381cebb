"""Words the pages show from data (standings of commitments, items, matches, enrolments),
marked so that the catalogue holds them."""

from __future__ import annotations

from concord.errors import N_

LABELS = [
    N_("met"),
    N_("missed"),
    N_("on-track"),
    N_("behind"),
    N_("open"),
    N_("matched"),
    N_("proposed"),
    N_("accepted"),
    N_("declined"),
    N_("enrolled"),
    N_("waiting"),
    N_("cancelled"),
    N_("attended"),
    N_("completed"),
    N_("unclassified"),
]
