"""Reading CloudEvents and mapping them to journey actions: pure, no database."""

from __future__ import annotations

import datetime as dt

import pytest
from starlette.datastructures import Headers

from hub.backoffice.schemas import action_for, event_from_binary, event_from_structured
from hub.backoffice.service import action_date, receipt_source
from hub.errors import InvalidInput
from journeys.engine import Advance, Extend, RequestInformation

TODAY = dt.date(2026, 11, 28)


def structured(kind: str, data: dict[str, object], **attributes: object) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": "1",
        "source": "urn:nl:toeslagen:zaaksysteem",
        "type": f"nl.interactionhub.case.{kind}",
        "subject": "HU-2026-000001",
        "data": data,
        **attributes,
    }


def test_binary_mode_decodes_percent_encoded_header_values() -> None:
    headers = Headers(
        {
            "ce-specversion": "1.0",
            "ce-id": "42",
            "ce-source": "urn:nl:gemeente%20utrecht",
            "ce-type": "nl.interactionhub.case.suspended",
            "ce-subject": "HU-2026-000001",
            "content-type": "application/json; charset=utf-8",
        }
    )
    event = event_from_binary(headers, b'{"reason": "Wacht op de gemeente"}')
    assert event.source == "urn:nl:gemeente utrecht"
    assert event.data == {"reason": "Wacht op de gemeente"}
    assert event.time is None


def test_binary_mode_wants_json_data() -> None:
    headers = Headers({"ce-specversion": "1.0", "content-type": "text/plain"})
    with pytest.raises(InvalidInput, match="as JSON"):
        event_from_binary(headers, b"reason=x")


def test_each_type_maps_onto_its_action_with_the_data_it_carries() -> None:
    advance = action_for(event_from_structured(structured("stage-reached", {"stage": "x"})), TODAY)
    assert advance == Advance(on=TODAY, to="x")
    request = action_for(
        event_from_structured(
            structured("information-requested", {"what": "Payslips", "until": "2026-12-12"})
        ),
        TODAY,
    )
    assert request == RequestInformation(on=TODAY, what="Payslips", deadline=dt.date(2026, 12, 12))
    extend = action_for(
        event_from_structured(structured("extended", {"reason": "Busy", "days": 10})), TODAY
    )
    assert extend == Extend(on=TODAY, reason="Busy", days=10, unit="calendar")


def test_bad_data_is_named_as_the_event_calls_it() -> None:
    event = event_from_structured(
        structured("information-requested", {"what": "Payslips", "until": "soon"})
    )
    with pytest.raises(InvalidInput) as refused:
        action_for(event, TODAY)
    assert [error["loc"] for error in refused.value.extra["errors"]] == [["data", "until"]]


def test_times_are_rfc_3339_with_an_offset() -> None:
    event = event_from_structured(structured("resumed", {}, time="2026-11-28t10:00:00.5z"))
    assert event.time == dt.datetime(2026, 11, 28, 10, 0, 0, 500000, tzinfo=dt.UTC)
    for bad in ("2026-11-28", "2026-11-28T10:00:00", "2026-13-01T10:00:00Z", "28-11-2026"):
        with pytest.raises(InvalidInput):
            event_from_structured(structured("resumed", {}, time=bad))


def test_attribute_names_are_lower_case_letters_and_digits() -> None:
    with pytest.raises(InvalidInput, match="lower-case"):
        event_from_structured(structured("resumed", {}, traceParent="x"))
    assert event_from_structured(structured("resumed", {}, traceparent="x")).type.endswith(
        "resumed"
    )


def test_an_action_is_dated_the_events_local_day_but_never_in_the_future() -> None:
    late_evening = dt.datetime(2020, 3, 2, 23, 30, tzinfo=dt.UTC)
    assert action_date(late_evening, "Europe/Amsterdam") == dt.date(2020, 3, 3)
    far_ahead = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)
    assert action_date(far_ahead, "Europe/Amsterdam") < dt.date(2999, 1, 1)


def test_receipts_are_kept_per_agency_within_thirty_characters() -> None:
    assert receipt_source("toeslagen") == "ce:toeslagen"
    long_one, long_two = "gemeente-" + "a" * 40, "gemeente-" + "b" * 40
    assert len(receipt_source(long_one)) == 30
    assert receipt_source(long_one) != receipt_source(long_two)
