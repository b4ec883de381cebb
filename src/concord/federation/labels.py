"""Words the federation pages show from data, marked for the catalogue."""

from __future__ import annotations

from concord.errors import N_

LABELS = [N_("running"), N_("closed"), N_("expired"), N_("completed")]
