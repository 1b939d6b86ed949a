"""A journey's retention term: an ISO 8601 period in its data file, seven years when it names
none, refused when it is not a period or is nothing at all."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from journeys.catalog import load_catalog
from journeys.model import DEFAULT_RETENTION, JourneyDefinition, RetentionTerm


def test_every_journey_in_the_catalogue_names_its_term() -> None:
    terms = {d.id: str(d.retention) for d in load_catalog().all()}

    assert terms["vraag"] == "P1Y" and terms["huurtoeslag"] == "P7Y"
    assert all(term.startswith("P") for term in terms.values())


@pytest.mark.parametrize(
    ("written", "years", "months", "days"),
    [("P7Y", 7, 0, 0), ("P18M", 0, 18, 0), ("P1Y6M", 1, 6, 0), ("P90D", 0, 0, 90)],
)
def test_a_period_is_read_as_years_months_and_days(
    written: str, years: int, months: int, days: int
) -> None:
    term = RetentionTerm.model_validate(written)

    assert (term.years, term.months, term.days) == (years, months, days)
    assert str(term) == written


@pytest.mark.parametrize("written", ["7 years", "P", "P0D", "P-1Y", "7Y", "P1W"])
def test_what_is_not_a_period_of_some_length_is_refused(written: str) -> None:
    with pytest.raises(ValidationError):
        RetentionTerm.model_validate(written)


def test_a_journey_without_a_term_keeps_its_cases_seven_years() -> None:
    raw: dict[str, Any] = load_catalog().get("vraag").model_dump()
    del raw["retention"]

    assert JourneyDefinition.model_validate(raw).retention == DEFAULT_RETENTION
    assert str(DEFAULT_RETENTION) == "P7Y"


def test_a_misspelt_term_names_the_journey_field() -> None:
    raw: dict[str, Any] = load_catalog().get("vraag").model_dump()
    raw["retention"] = "seven years"

    with pytest.raises(ValidationError, match="retention"):
        JourneyDefinition.model_validate(raw)


def test_counting_back_lands_on_the_last_day_of_a_shorter_month() -> None:
    moment = dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC)

    assert RetentionTerm(months=1).before(moment) == dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC)
    assert RetentionTerm(years=2).before(moment) == dt.datetime(2024, 3, 31, 12, tzinfo=dt.UTC)
    assert RetentionTerm(years=1, days=1).before(moment) == dt.datetime(
        2025, 3, 30, 12, tzinfo=dt.UTC
    )
