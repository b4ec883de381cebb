"""Words the commons pages show from data, marked for the catalogue."""

from __future__ import annotations

from concord.errors import N_

LABELS = [N_("model"), N_("dataset"), N_("pass"), N_("fail"), N_("error")]
