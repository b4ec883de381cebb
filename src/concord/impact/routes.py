"""The impact figures as JSON and CSV, for anyone to download and check."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from concord.http import Db
from concord.impact import indicators
from concord.validation import OptionalYear

router = APIRouter(prefix="/api/impact", tags=["impact"])

# The schema lists the indicators by name: without it, `/api/impact/{name}` also promised an
# indicator for `models`, which `/api/impact/models` (the models' equity, a list) answers. The
# list is not enforced here so that an unknown name keeps its coded 404
# (`impact.unknown_indicator`).
IndicatorName = Annotated[
    str, Path(description="An indicator", json_schema_extra={"enum": sorted(indicators.BY_NAME)})
]


def summary(i: indicators.Indicator) -> dict[str, Any]:
    return {
        "indicator": i.source.name,
        "label": i.source.label,
        "unit": i.source.unit,
        "available": i.available,
        "total": i.total,
        "participants": i.participants,
        "gini": round(i.gini, 4),
        "global_south_share": round(i.south_share, 4),
        "global_south_membership": round(i.south_membership, 4),
        "low_and_lower_middle_share": round(i.poorer_share, 4),
        "low_and_lower_middle_membership": round(i.poorer_membership, 4),
        "by_region": [g.__dict__ for g in i.by_region],
        "by_income": [g.__dict__ for g in i.by_income],
        "by_bloc": [g.__dict__ for g in i.by_bloc],
        "by_country": i.by_country,
        "anonymous": i.anonymous,
    }


@router.get("")
def dashboard(db: Db, year: OptionalYear = None) -> list[dict[str, Any]]:
    """Every indicator with its breakdowns and equity figures (optionally for one year)."""
    return [summary(i) for i in indicators.dashboard(db, year)]


@router.get("/models")
def model_equity(db: Db) -> list[dict[str, Any]]:
    """How each evaluated commons model works for whom, from its newest evaluation campaign:
    members, worst member and its figure, spread, and the means by income group and region."""
    return [
        {
            "campaign": campaign_id,
            "campaign_title": title,
            "repo": s.repo,
            "revision": s.revision,
            "metric": s.metric,
            "members": len(s.cells),
            "mean": s.mean,
            "worst_member": s.worst_member,
            "worst": s.worst,
            "spread": s.spread,
            "by_income": s.by_income,
            "by_region": s.by_region,
            "by_bloc": s.by_bloc,
        }
        for campaign_id, title, s in indicators.model_equity(db)[1]
    ]


@router.get("/{name}.csv")
def indicator_csv(name: IndicatorName, db: Db, year: OptionalYear = None) -> Response:
    """One indicator's breakdown as CSV."""
    return Response(
        to_csv(indicators.compute(db, name, year)),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/{name}")
def indicator(name: IndicatorName, db: Db, year: OptionalYear = None) -> dict[str, Any]:
    """One indicator with its breakdowns and equity figures."""
    return summary(indicators.compute(db, name, year))


def to_csv(i: indicators.Indicator) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["indicator", "dimension", "group", "members", "value"])
    writer.writeheader()
    writer.writerows(i.rows())
    return buffer.getvalue()
