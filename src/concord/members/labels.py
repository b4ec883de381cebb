"""Words the pages show from data (kinds, roles, standings, regions, income groups), marked here
so that the catalogue holds them."""

from __future__ import annotations

from concord.errors import N_

LABELS = [
    # kinds of member
    N_("country"),
    N_("university"),
    N_("ministry"),
    N_("lab"),
    N_("company"),
    N_("ngo"),
    # roles
    N_("secretariat"),
    N_("delegate"),
    N_("observer"),
    N_("translator"),
    # standings and acts
    N_("active"),
    N_("suspended"),
    N_("withdrawn"),
    N_("admitted"),
    N_("reinstated"),
    # income groups
    N_("low"),
    N_("lower-middle"),
    N_("upper-middle"),
    N_("high"),
    # UN M49 regions and sub-regions
    N_("Africa"),
    N_("Americas"),
    N_("Asia"),
    N_("Europe"),
    N_("Oceania"),
    N_("Northern Africa"),
    N_("Sub-Saharan Africa"),
    N_("Latin America and the Caribbean"),
    N_("Northern America"),
    N_("Central Asia"),
    N_("Eastern Asia"),
    N_("South-eastern Asia"),
    N_("Southern Asia"),
    N_("Western Asia"),
    N_("Eastern Europe"),
    N_("Northern Europe"),
    N_("Southern Europe"),
    N_("Western Europe"),
    N_("Australia and New Zealand"),
    N_("Melanesia"),
    N_("Micronesia"),
    N_("Polynesia"),
]
