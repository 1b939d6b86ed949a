"""Insights API: an agency's figures for its own dashboards, as JSON or as CSV.

Staff and agency systems read their own agency's figures only.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer
from hub.auth.dependencies import CurrentStaffOrAgency
from hub.clock import local_today
from hub.dependencies import CatalogDep, IsoDate, SessionDep, SettingsDep
from hub.errors import Forbidden, InvalidInput
from hub.insights.schemas import Insights
from hub.insights.service import MAX_PERIOD_DAYS, Period, agency_insights
from journeys.catalog import Catalog

router = APIRouter(prefix="/api", tags=["insights"])

AgencyParam = Annotated[str | None, Query(description="Your own agency (the default).")]
JourneyParam = Annotated[str | None, Query(description="One journey; all by default.")]
FromParam = Annotated[IsoDate | None, Query(alias="from", description="First local day.")]
ToParam = Annotated[IsoDate | None, Query(alias="to", description="Last local day (today).")]


def own_agency(viewer: Viewer, agency: str | None) -> str:
    """The agency whose figures the viewer asked for: only ever their own."""
    assert viewer.agency_id is not None  # staff and agency systems always belong to one
    if agency is not None and agency != viewer.agency_id:
        raise Forbidden("You can read your own agency's figures only.")
    return viewer.agency_id


# Far enough either way for any figure the hub holds; beyond them the date arithmetic of a
# period (four weeks back, a day on) would leave the calendar.
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


def period_of(first: dt.date | None, last: dt.date | None, today: dt.date) -> Period:
    """The asked period; by default the four weeks up to today. At most a year long."""
    for day in (first, last):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise InvalidInput(f"A date lies between {EARLIEST} and {LATEST}.")
    period = Period.ending(last or today)
    if first is not None:
        period = Period(first, period.last)
    if period.first > period.last:
        raise InvalidInput("'from' must not be after 'to'.")
    if (period.last - period.first).days >= MAX_PERIOD_DAYS:
        raise InvalidInput(f"A period is at most {MAX_PERIOD_DAYS} days long.")
    return period


async def read_insights(
    session: AsyncSession,
    *,
    catalog: Catalog,
    viewer: Viewer,
    timezone: str,
    agency: str | None,
    journey: str | None,
    first: dt.date | None,
    last: dt.date | None,
) -> Insights:
    """The viewer's agency's figures for the asked journey and period."""
    today = local_today(timezone)
    return await agency_insights(
        session,
        catalog=catalog,
        agency_id=own_agency(viewer, agency),
        journey_id=journey or None,
        period=period_of(first, last, today),
        today=today,
        timezone=timezone,
    )


@router.get("/insights")
async def insights(
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    agency: AgencyParam = None,
    journey: JourneyParam = None,
    first: FromParam = None,
    last: ToParam = None,
) -> Insights:
    """How the agency's interactions go per journey over a period (default: four weeks).

    Case figures count the cases opened in the period; ``stages_now`` counts every case
    open now. No party data: figures only.
    """
    return await read_insights(
        session,
        catalog=catalog,
        viewer=viewer,
        timezone=settings.timezone,
        agency=agency,
        journey=journey,
        first=first,
        last=last,
    )


CSV_COLUMNS = ("section", "journey", "item", "measure", "value")


def insights_csv(report: Insights) -> str:
    """The report's numbers, one per row: section, journey, item (a stage, channel or
    week), measure and value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for figures in report.journeys:
        for measure, value in figures.model_dump(exclude={"stages_now", "title"}).items():
            if measure != "journey":
                writer.writerow(("journey", figures.journey, "", measure, _cell(value)))
        for stage in figures.stages_now:
            writer.writerow(("stage_now", figures.journey, stage.stage, "cases", stage.cases))
            writer.writerow(
                (
                    "stage_now",
                    figures.journey,
                    stage.stage,
                    "mean_days_in_stage",
                    stage.mean_days_in_stage,
                )
            )
    for response in report.first_response:
        for measure in ("cases", "answered", "mean_minutes"):
            value = getattr(response, measure)
            writer.writerow(("first_response", "", response.channel, measure, _cell(value)))
    for week in report.channel_mix:
        item = f"{week.week.isoformat()} {week.channel}"
        writer.writerow(("channel_mix", "", item, "messages", week.messages))
    for measure, value in report.notices.model_dump().items():
        writer.writerow(("notices", report.journey or "", "", measure, value))
    return out.getvalue()


def _cell(value: object) -> object:
    return "" if value is None else value


def csv_response(report: Insights) -> Response:
    name = f"insights-{report.agency}-{report.period_from}-{report.period_to}.csv"
    return Response(
        insights_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/insights.csv", response_class=Response)
async def insights_as_csv(
    viewer: CurrentStaffOrAgency,
    session: SessionDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    agency: AgencyParam = None,
    journey: JourneyParam = None,
    first: FromParam = None,
    last: ToParam = None,
) -> Response:
    """The same figures as ``/api/insights``, as CSV: one number per row."""
    report = await read_insights(
        session,
        catalog=catalog,
        viewer=viewer,
        timezone=settings.timezone,
        agency=agency,
        journey=journey,
        first=first,
        last=last,
    )
    return csv_response(report)
