"""The figures of the insights report, as the API gives them (JSON, and CSV row by row)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class StageNow(BaseModel):
    """Open cases in one stage now, and how long they have been in it on average."""

    stage: str
    cases: int
    mean_days_in_stage: float


class JourneyFigures(BaseModel):
    """One journey's figures. Case figures count the cases opened in the period; "now"
    figures count every open case, whenever it opened."""

    journey: str
    title: str
    context: str
    citizen_context: str
    done_by: str
    service_norm_days: int
    service_norm_unit: str
    cases_opened: int
    open_now: int
    stages_now: list[StageNow]
    # The stage where open cases have waited longest on average; None without open cases.
    slowest_stage: str | None
    closed: int
    closed_within_norm: int
    mean_lead_days: float | None
    contacts: int
    contacts_per_case: float | None
    channel_switches: int
    switches_per_case: float | None
    # Closed cases that had at most one contact from the citizen.
    first_contact_resolved: int
    first_contact_resolution: float | None


class FirstResponse(BaseModel):
    """The first message of the citizen on a case, per channel, and the first staff reply."""

    channel: str
    cases: int
    answered: int
    mean_minutes: float | None


class ChannelWeek(BaseModel):
    """The citizens' messages on one channel in one week (Monday to Sunday, local)."""

    week: dt.date
    channel: str
    messages: int


class NoticeFigures(BaseModel):
    created: int
    sent: int
    delivered: int
    read: int
    not_sent_no_consent: int
    escalated: int


class Insights(BaseModel):
    agency: str
    journey: str | None
    period_from: dt.date
    period_to: dt.date
    journeys: list[JourneyFigures]
    first_response: list[FirstResponse]
    channel_mix: list[ChannelWeek]
    notices: NoticeFigures

    @property
    def cases_opened(self) -> int:
        return sum(j.cases_opened for j in self.journeys)
