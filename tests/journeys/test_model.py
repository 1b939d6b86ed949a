from typing import Any

import pytest
from pydantic import ValidationError

from journeys.model import Duration, JourneyDefinition, Texts, UnknownResult, UnknownStage


def texts(word: str) -> dict[str, str]:
    return {"nl": f"{word} (nl)", "en": f"{word} (en)"}


def stage(id_: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "name": texts(id_),
        "turn": "government",
        "expected": {"days": 1, "unit": "working"},
        "now": texts("now"),
        "next": texts("next"),
        **fields,
    }


def definition_data(**fields: Any) -> dict[str, Any]:
    return {
        "id": "example",
        "version": 1,
        "title": texts("title"),
        "summary": texts("summary"),
        "agency": "voorbeeld",
        "processing_activity": "voorbeeld-activiteit",
        "context": "right",
        "citizen_context": "standard",
        "done_by": "citizen",
        "service_norm": {"days": 10, "unit": "working"},
        "citizen_response": {"days": 14, "unit": "calendar"},
        "stages": [stage("received", to=["decision"]), stage("decision", decides=["granted"])],
        "results": [
            {"id": "granted", "text": texts("granted")},
            {"id": "withdrawn", "text": texts("w")},
        ],
        **fields,
    }


def test_texts_get_falls_back_to_dutch() -> None:
    text = Texts(nl="Hallo", en="Hello")
    assert text.get("en") == "Hello"
    assert text.get("nl") == "Hallo"
    assert text.get("de") == "Hallo"


@pytest.mark.parametrize("blank", ["", "   "])
def test_texts_must_not_be_blank(blank: str) -> None:
    with pytest.raises(ValidationError, match="en"):
        Texts(nl="Hallo", en=blank)


def test_duration_refuses_negative_days_and_unknown_units() -> None:
    with pytest.raises(ValidationError, match="days"):
        Duration(days=-1, unit="calendar")
    with pytest.raises(ValidationError, match="unit"):
        Duration.model_validate({"days": 1, "unit": "weeks"})


def test_definition_defaults() -> None:
    definition = JourneyDefinition.model_validate(definition_data())
    assert definition.started_by == "citizen"
    assert definition.participating_agencies == []
    assert definition.reminders == []
    assert definition.extension is None
    assert definition.stage("received").notify_on_entry is False


def test_initial_stage_is_the_first_listed() -> None:
    definition = JourneyDefinition.model_validate(definition_data())
    assert definition.initial_stage.id == "received"


def test_lookup_of_unknown_stage_and_result_names_them() -> None:
    definition = JourneyDefinition.model_validate(definition_data())
    assert definition.stage("decision").decides == ["granted"]
    assert definition.result("granted").text.nl == "granted (nl)"
    with pytest.raises(UnknownStage, match="'nowhere'") as stage_error:
        definition.stage("nowhere")
    assert not isinstance(stage_error.value, KeyError)
    with pytest.raises(UnknownResult, match="'approved'"):
        definition.result("approved")


def test_withdrawn_result_is_required() -> None:
    data = definition_data(results=[{"id": "granted", "text": texts("granted")}])
    with pytest.raises(ValidationError, match="withdrawn"):
        JourneyDefinition.model_validate(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("context", "maybe"),
        ("citizen_context", "average"),
        ("done_by", "robot"),
        ("started_by", "third_party"),
        ("id", "Not A Slug"),
        ("version", 0),
        ("stages", []),
    ],
)
def test_definition_refuses_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as error:
        JourneyDefinition.model_validate(definition_data(**{field: value}))
    assert error.value.errors()[0]["loc"][0] == field


def test_unknown_keys_are_refused_rather_than_ignored() -> None:
    with pytest.raises(ValidationError, match="service_nrom"):
        JourneyDefinition.model_validate(definition_data(service_nrom={"days": 1}))


def test_stage_turn_is_checked() -> None:
    data = definition_data(stages=[stage("received", turn="nobody", decides=["granted"])])
    with pytest.raises(ValidationError, match="turn"):
        JourneyDefinition.model_validate(data)


def test_definitions_are_frozen() -> None:
    definition = JourneyDefinition.model_validate(definition_data())
    with pytest.raises(ValidationError):
        definition.version = 2  # type: ignore[misc]
