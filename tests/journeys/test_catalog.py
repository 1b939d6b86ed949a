import itertools
import re
import shutil
from pathlib import Path

import pytest
import yaml

from journeys.catalog import (
    PACKAGED_CATALOG,
    Catalog,
    DefinitionError,
    Problem,
    UnknownJourney,
    check_catalog,
    check_definition,
    load_catalog,
    load_definition,
)
from journeys.model import Duration, JourneyDefinition, Texts

BROKEN = Path(__file__).parent / "fixtures" / "broken"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


# The hub's demo data creates agencies and processing activities with exactly these codes.
EXPECTED = {
    "huurtoeslag": ("toeslagen", "toeslagen-aanvraag", [], "right", "standard", "citizen"),
    "ww-uitkering": ("uwv", "uwv-ww", [], "right", "specific", "citizen"),
    "dakkapel": (
        "gemeente-utrecht",
        "omgevingsvergunning",
        [],
        "possibility",
        "specific",
        "citizen",
    ),
    "parkeervergunning-verhuizing": (
        "gemeente-utrecht",
        "parkeren",
        [],
        "obligation",
        "standard",
        "government",
    ),
    "rijbewijs-verlenging": ("rdw", "rdw-rijbewijs", [], "obligation", "standard", "citizen"),
    "kvk-inschrijving": (
        "kvk",
        "kvk-handelsregister",
        ["belastingdienst"],
        "obligation",
        "standard",
        "citizen",
    ),
    "schuldhulp": (
        "gemeente-utrecht",
        "schuldhulpverlening",
        ["belastingdienst", "uwv"],
        "right",
        "specific",
        "government",
    ),
    # A general question, asked of whichever agency the citizen chooses.
    "vraag": ("any", "vragen-beantwoorden", [], "possibility", "standard", "government"),
}


def test_packaged_catalogue_has_no_problems() -> None:
    assert check_catalog(PACKAGED_CATALOG) == []


def test_packaged_catalogue_holds_the_seven_journeys_and_the_question(catalog: Catalog) -> None:
    assert {definition.id for definition in catalog.all()} == set(EXPECTED)
    assert len(catalog) == len(EXPECTED)


@pytest.mark.parametrize("journey_id", sorted(EXPECTED))
def test_journey_agency_activity_and_axes(catalog: Catalog, journey_id: str) -> None:
    definition = catalog.get(journey_id)
    agency, activity, participating, context, citizen_context, done_by = EXPECTED[journey_id]
    assert definition.version == 1
    assert definition.agency == agency
    assert definition.processing_activity == activity
    assert definition.participating_agencies == participating
    assert definition.context == context
    assert definition.citizen_context == citizen_context
    assert definition.done_by == done_by


def test_catalogue_covers_every_context_and_quadrant(catalog: Catalog) -> None:
    definitions = catalog.all()
    assert {d.context for d in definitions} == {"obligation", "right", "possibility"}
    assert {(d.citizen_context, d.done_by) for d in definitions} == set(
        itertools.product(["standard", "specific"], ["government", "citizen"])
    )


@pytest.mark.parametrize(
    ("journey_id", "norm", "results"),
    [
        ("huurtoeslag", (56, "calendar"), {"granted", "partly_granted", "rejected", "withdrawn"}),
        ("ww-uitkering", (28, "calendar"), {"granted", "rejected", "withdrawn"}),
        ("dakkapel", (56, "calendar"), {"granted", "rejected", "withdrawn"}),
        ("parkeervergunning-verhuizing", (5, "working"), {"granted", "withdrawn"}),
        ("rijbewijs-verlenging", (5, "working"), {"granted", "rejected", "withdrawn"}),
        ("kvk-inschrijving", (5, "working"), {"registered", "rejected", "withdrawn"}),
        (
            "schuldhulp",
            (56, "calendar"),
            {"granted", "partly_granted", "rejected", "withdrawn"},
        ),
    ],
)
def test_service_norm_and_results(
    catalog: Catalog, journey_id: str, norm: tuple[int, str], results: set[str]
) -> None:
    definition = catalog.get(journey_id)
    assert (definition.service_norm.days, definition.service_norm.unit) == norm
    assert {result.id for result in definition.results} == results


@pytest.mark.parametrize(
    ("journey_id", "results"),
    [
        ("huurtoeslag", ["granted", "partly_granted", "rejected"]),
        ("ww-uitkering", ["granted", "rejected"]),
        ("dakkapel", ["granted", "rejected"]),
    ],
)
def test_six_week_objection_period(catalog: Catalog, journey_id: str, results: list[str]) -> None:
    definition = catalog.get(journey_id)
    for result_id in results:
        kinds = {f.kind: f.within for f in definition.result(result_id).follow_ups}
        assert kinds["objection"] == Duration(days=42, unit="calendar")
    assert definition.result("withdrawn").follow_ups == []


def test_particular_rules_of_single_journeys(catalog: Catalog) -> None:
    dakkapel = catalog.get("dakkapel")
    assert dakkapel.extension == Duration(days=42, unit="calendar")
    assert {"third_party", "citizen"} <= {stage.turn for stage in dakkapel.stages}

    parking = catalog.get("parkeervergunning-verhuizing")
    assert parking.started_by == "government"

    licence = catalog.get("rijbewijs-verlenging")
    assert [(r.id, r.before) for r in licence.reminders] == [
        ("licence-expiry", Duration(days=91, unit="calendar"))
    ]

    kvk = catalog.get("kvk-inschrijving")
    assert "vat_number" in {f.kind for f in kvk.result("registered").follow_ups}

    debts = catalog.get("schuldhulp")
    assert debts.done_by == "government"
    assert {"third_party", "citizen", "government"} <= {stage.turn for stage in debts.stages}
    assert len(debts.stages) >= 4


def _all_texts(definition: JourneyDefinition) -> list[Texts]:
    found = [definition.title, definition.summary]
    for stage in definition.stages:
        found += [stage.name, stage.now, stage.next]
    for result in definition.results:
        found += [result.text, *(f.text for f in result.follow_ups)]
    found += [reminder.text for reminder in definition.reminders]
    return found


@pytest.mark.parametrize("journey_id", sorted(EXPECTED))
def test_every_text_is_translated(catalog: Catalog, journey_id: str) -> None:
    for text in _all_texts(catalog.get(journey_id)):
        assert text.nl != text.en, text
        assert len(text.nl) > 3
        assert len(text.en) > 3


@pytest.mark.parametrize(
    ("file_name", "field", "fragment"),
    [
        ("bad-context.v1.yaml", "context", "'maybe'"),
        ("unreachable-stage.v1.yaml", "stages[orphan]", "cannot be reached"),
        ("dead-end-stage.v1.yaml", "stages[limbo]", "no path to a result"),
        ("unknown-transition.v1.yaml", "stages[received].to", "unknown stage 'nowhere'"),
        ("missing-english.v1.yaml", "stages[received].name.en", "required"),
        ("missing-dutch.v1.yaml", "title.nl", "required"),
        ("missing-withdrawn.v1.yaml", "results", "'withdrawn' result is required"),
    ],
)
def test_broken_definition_is_refused_naming_file_and_field(
    file_name: str, field: str, fragment: str
) -> None:
    path = BROKEN / file_name
    with pytest.raises(DefinitionError) as error:
        load_definition(path)
    assert error.value.path == path
    assert error.value.field == field
    assert str(error.value).startswith(f"{path}: {field}: ")
    assert fragment in str(error.value)

    problems = [p for p in check_catalog(BROKEN) if p.file == str(path)]
    assert [(p.field, fragment in p.message) for p in problems] == [(field, True)]
    assert str(problems[0]) == str(error.value)


def test_check_catalog_reports_every_broken_file_without_raising() -> None:
    problems = check_catalog(BROKEN)
    assert {Path(p.file).name for p in problems} == {p.name for p in BROKEN.glob("*.yaml")}


def test_load_catalog_refuses_a_directory_with_a_broken_file() -> None:
    with pytest.raises(DefinitionError, match=re.escape("bad-context.v1.yaml: context")):
        load_catalog(BROKEN)


def test_check_catalog_on_missing_or_empty_directory(tmp_path: Path) -> None:
    assert [p.field for p in check_catalog(tmp_path / "nope")] == ["(directory)"]
    assert [p.field for p in check_catalog(tmp_path)] == ["(directory)"]


def _copy_packaged(target: Path, journey_id: str, name: str | None = None) -> Path:
    path = target / (name or f"{journey_id}.v1.yaml")
    shutil.copy(PACKAGED_CATALOG / f"{journey_id}.v1.yaml", path)
    return path


def test_file_name_must_match_id_and_version(tmp_path: Path) -> None:
    _copy_packaged(tmp_path, "huurtoeslag", "huurtoeslag.v2.yaml")
    _copy_packaged(tmp_path, "dakkapel", "dormer.v1.yaml")
    _copy_packaged(tmp_path, "schuldhulp", "schuldhulp.yaml")
    problems = {(Path(p.file).name, p.field) for p in check_catalog(tmp_path)}
    assert problems == {
        ("huurtoeslag.v2.yaml", "version"),
        ("dormer.v1.yaml", "id"),
        ("schuldhulp.yaml", "(file name)"),
    }


def test_invalid_yaml_and_non_mapping_are_problems(tmp_path: Path) -> None:
    (tmp_path / "broken-yaml.v1.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    (tmp_path / "a-list.v1.yaml").write_text("- one\n- two\n", encoding="utf-8")
    problems = {(Path(p.file).name, p.field) for p in check_catalog(tmp_path)}
    assert problems == {("broken-yaml.v1.yaml", "(yaml)"), ("a-list.v1.yaml", "(root)")}


def test_catalogue_keeps_every_version(tmp_path: Path) -> None:
    _copy_packaged(tmp_path, "huurtoeslag")
    data = yaml.safe_load((PACKAGED_CATALOG / "huurtoeslag.v1.yaml").read_text(encoding="utf-8"))
    data["version"] = 2
    data["title"]["nl"] = "Huurtoeslag aanvragen (nieuw)"
    (tmp_path / "huurtoeslag.v2.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    _copy_packaged(tmp_path, "dakkapel")

    catalog = load_catalog(tmp_path)
    assert len(catalog) == 3
    assert catalog.get("huurtoeslag").version == 2
    assert catalog.get("huurtoeslag", 1).title.nl == "Huurtoeslag aanvragen"
    assert catalog.get("huurtoeslag", 2).title.nl == "Huurtoeslag aanvragen (nieuw)"
    assert [d.version for d in catalog.versions("huurtoeslag")] == [1, 2]
    assert [(d.id, d.version) for d in catalog.all()] == [("dakkapel", 1), ("huurtoeslag", 2)]
    with pytest.raises(UnknownJourney):
        catalog.get("huurtoeslag", 3)
    with pytest.raises(UnknownJourney):
        catalog.get("zorgtoeslag")


def test_catalog_refuses_the_same_version_twice(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="huurtoeslag v1"):
        Catalog([catalog.get("huurtoeslag"), catalog.get("huurtoeslag")])


def _edited(definition: JourneyDefinition, **changes: object) -> JourneyDefinition:
    return JourneyDefinition.model_validate({**definition.model_dump(), **changes})


def test_check_definition_finds_duplicates_and_unknown_results(catalog: Catalog) -> None:
    definition = catalog.get("ww-uitkering")
    stages = definition.model_dump()["stages"]
    stages[2]["decides"] = ["granted", "approved", "withdrawn"]
    stages.append(stages[1])
    results = [*definition.model_dump()["results"], definition.model_dump()["results"][0]]
    problems = check_definition(_edited(definition, stages=stages, results=results))
    assert set(problems) == {
        Problem(
            "ww-uitkering.v1.yaml",
            "stages[assessment].id",
            "stage id 'assessment' is used more than once",
        ),
        Problem(
            "ww-uitkering.v1.yaml",
            "results[granted].id",
            "result id 'granted' is used more than once",
        ),
        Problem(
            "ww-uitkering.v1.yaml", "stages[calculation].decides", "names unknown result 'approved'"
        ),
        Problem(
            "ww-uitkering.v1.yaml",
            "stages[calculation].decides",
            "'withdrawn' is not decided: the citizen withdraws at any stage",
        ),
    }


def test_check_definition_finds_a_result_nobody_decides(catalog: Catalog) -> None:
    definition = catalog.get("huurtoeslag")
    stages = definition.model_dump()["stages"]
    stages[-1]["decides"] = ["granted", "rejected"]
    problems = check_definition(_edited(definition, stages=stages), file="x.yaml")
    assert [str(p) for p in problems] == [
        "x.yaml: results[partly_granted]: no stage decides this result"
    ]
