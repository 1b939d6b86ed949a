"""The supervisor's insights page in the staff console: how interactions go, per journey and
channel, drawn as well as counted.

Every chart is SVG drawn on the server and is followed by its numbers as a table; the same
numbers come as CSV from ``/api/insights.csv``. The page shows figures, no party data, so it
writes no access log lines.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse

from hub.agencies.service import get_agency
from hub.clock import local_today
from hub.dependencies import CatalogDep, SessionDep, SettingsDep
from hub.errors import HubError
from hub.insights.charts import bar_chart, channel_mix_chart, quadrant_chart
from hub.insights.routes import period_of
from hub.insights.service import Period, agency_insights, journeys_of_agency
from hub.web.i18n import long_date, mark
from hub.web.pages import StaffPage, page_language, page_router, render
from journeys.catalog import Catalog, UnknownJourney
from journeys.model import JourneyDefinition

router = page_router()

PERIOD_REFUSED = mark(
    "The period is not right: give two dates, the first not after the last, at most a year apart."
)


def _day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _definition(catalog: Catalog, journey: str) -> JourneyDefinition | None:
    try:
        return catalog.get(journey)
    except UnknownJourney:
        return None


@router.get("/console/insights", response_class=HTMLResponse)
async def insights_page(
    request: Request,
    viewer: StaffPage,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """The agency's figures over a period (four weeks up to today unless chosen), for one
    journey or all: the catalogue on the two axes, cases by stage, lead times, contacts,
    the channel mix, first responses and notices."""
    assert viewer.agency_id is not None
    lang = page_language(request)
    today = local_today(settings.timezone)
    asked = request.query_params
    error = None
    try:
        period = period_of(_day(asked.get("from")), _day(asked.get("to")), today)
    except (ValueError, HubError):
        period, error = Period.ending(today), PERIOD_REFUSED
    journeys = journeys_of_agency(catalog, viewer.agency_id)
    journey = asked.get("journey") or None
    if journey is not None and journey not in {d.id for d in journeys}:
        journey = None
    report = await agency_insights(
        session,
        catalog=catalog,
        agency_id=viewer.agency_id,
        journey_id=journey,
        period=period,
        today=today,
        timezone=settings.timezone,
    )
    definitions = {f.journey: _definition(catalog, f.journey) for f in report.journeys}
    titles = {k: d.title.get(lang) if d else k for k, d in definitions.items()}

    def stage_name(journey_id: str, stage_id: str) -> str:
        definition = definitions.get(journey_id)
        if definition is None:
            return stage_id
        try:
            return definition.stage(stage_id).name.get(lang)
        except LookupError:
            return stage_id

    stage_rows = [
        (f"{titles[f.journey]}: {stage_name(f.journey, s.stage)}", {"cases": s.cases})
        for f in report.journeys
        for s in f.stages_now
        if f.open_now
    ]
    weeks = period.weeks()
    week_labels = {week: f"{week.isocalendar().week} ({long_date(week, lang)})" for week in weeks}
    query = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    if journey:
        query["journey"] = journey
    status_code = 422 if error else 200
    return render(
        request,
        "pages/insights.html",
        {
            "agency": (await get_agency(session, viewer.agency_id)).name,
            "report": report,
            "period": period,
            "error": error,
            "journeys": [(d.id, d.title.get(lang)) for d in journeys],
            "journey": journey,
            "titles": titles,
            "stage_name": stage_name,
            "quadrant": quadrant_chart(report.journeys, titles),
            "stages_chart": bar_chart(stage_rows, ["cases"]),
            "mix_chart": channel_mix_chart(weeks, report.channel_mix, week_labels),
            "week_labels": week_labels,
            "csv_link": f"/api/insights.csv?{urlencode(query)}",
        },
        status_code=status_code,
        viewer=viewer,
    )
