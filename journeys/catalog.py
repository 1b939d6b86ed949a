"""Loading and checking the journey catalogue: one YAML file per journey version.

A file is named `<id>.v<version>.yaml` and holds one `JourneyDefinition`. The packaged
catalogue (`journeys/catalog/`) refers to these agency and processing activity codes,
which the hub's register (and its demo data) must hold:

    journey                       agency            processing activity  also taking part
    huurtoeslag                   toeslagen         toeslagen-aanvraag
    ww-uitkering                  uwv               uwv-ww
    dakkapel                      gemeente-utrecht  omgevingsvergunning
    parkeervergunning-verhuizing  gemeente-utrecht  parkeren
    rijbewijs-verlenging          rdw               rdw-rijbewijs
    kvk-inschrijving              kvk               kvk-handelsregister  belastingdienst
    schuldhulp                    gemeente-utrecht  schuldhulpverlening  belastingdienst, uwv
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from journeys.model import WITHDRAWN, JourneyDefinition

PACKAGED_CATALOG = Path(__file__).parent / "catalog"
_FILE_NAME = re.compile(r"^(?P<id>[a-z0-9]+(?:[-_][a-z0-9]+)*)\.v(?P<version>[1-9][0-9]*)\.yaml$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a journey definition, named by file and field."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


class DefinitionError(Exception):
    """A journey definition file that cannot be used; `problems` lists all that is wrong."""

    def __init__(
        self, path: Path, field: str, message: str, problems: Iterable[Problem] = ()
    ) -> None:
        super().__init__(f"{path}: {field}: {message}")
        self.path = path
        self.field = field
        self.message = message
        self.problems = list(problems) or [Problem(str(path), field, message)]


class UnknownJourney(LookupError):
    """A journey id, or id and version, that the catalogue does not hold."""


class Catalog:
    """Every journey definition found, each version kept: a case stays on the version it
    started under."""

    def __init__(self, definitions: Iterable[JourneyDefinition]) -> None:
        self._definitions: dict[tuple[str, int], JourneyDefinition] = {}
        for definition in definitions:
            key = (definition.id, definition.version)
            if key in self._definitions:
                raise ValueError(f"journey {definition.id} v{definition.version} is listed twice")
            self._definitions[key] = definition

    def get(self, journey_id: str, version: int | None = None) -> JourneyDefinition:
        """That version of the journey, or its latest version when `version` is None."""
        if version is not None:
            try:
                return self._definitions[(journey_id, version)]
            except KeyError:
                raise UnknownJourney(f"no journey {journey_id!r} version {version}") from None
        versions = self.versions(journey_id)
        if not versions:
            raise UnknownJourney(f"no journey {journey_id!r}")
        return versions[-1]

    def versions(self, journey_id: str) -> list[JourneyDefinition]:
        """Every version of the journey, oldest first."""
        return sorted(
            (d for (id_, _), d in self._definitions.items() if id_ == journey_id),
            key=lambda d: d.version,
        )

    def all(self) -> list[JourneyDefinition]:
        """The latest version of every journey, by id: what a new case can start under."""
        return [self.get(journey_id) for journey_id in sorted({k[0] for k in self._definitions})]

    def __len__(self) -> int:
        return len(self._definitions)


def _field_name(loc: tuple[int | str, ...], raw: Any) -> str:
    """A pydantic error location as a reader finds it in the file: `stages[advice].name.en`."""
    name, node = "", raw
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            label = item.get("id") if isinstance(item, dict) else None
            name += f"[{label if isinstance(label, str) else part}]"
            node = item
        else:
            name += f".{part}" if name else part
            node = node.get(part) if isinstance(node, dict) else None
    return name or "(root)"


def _read(path: Path) -> tuple[JourneyDefinition | None, list[Problem]]:
    file = str(path)
    name = _FILE_NAME.match(path.name)
    if name is None:
        return None, [Problem(file, "(file name)", "must be <id>.v<version>.yaml")]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        return None, [Problem(file, "(file)", f"cannot be read: {error}")]
    except yaml.YAMLError as error:
        return None, [Problem(file, "(yaml)", " ".join(str(error).split()))]
    if not isinstance(raw, dict):
        return None, [Problem(file, "(root)", "must be a mapping of fields to values")]
    try:
        definition = JourneyDefinition.model_validate(raw)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            message = detail["msg"].removeprefix("Value error, ")
            if not isinstance(detail["input"], dict | list) and detail["type"] != "missing":
                message += f" (found {detail['input']!r})"
            problems.append(Problem(file, _field_name(detail["loc"], raw), message))
        return None, problems
    problems = []
    if definition.id != name["id"]:
        problems.append(
            Problem(file, "id", f"is {definition.id!r}, but the file name says {name['id']!r}")
        )
    if definition.version != int(name["version"]):
        problems.append(
            Problem(
                file,
                "version",
                f"is {definition.version}, but the file name says {name['version']}",
            )
        )
    return definition, problems + check_definition(definition, file=file)


def load_definition(path: Path) -> JourneyDefinition:
    """The journey definition in `path`, validated field by field and as a graph.

    Raises `DefinitionError` naming the file and the first broken field; its `problems`
    holds every problem found.
    """
    definition, problems = _read(path)
    if problems or definition is None:
        first = problems[0]
        raise DefinitionError(path, first.field, first.message, problems)
    return definition


def _duplicates(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for id_ in ids:
        if id_ in seen and id_ not in repeated:
            repeated.append(id_)
        seen.add(id_)
    return repeated


def check_definition(definition: JourneyDefinition, *, file: str | None = None) -> list[Problem]:
    """Problems with the stage graph of a definition that is valid field by field.

    Finds duplicate stage, result and reminder ids; `to` and `decides` naming a stage or
    result that does not exist; a stage that cannot be reached from the first; a stage with
    no path to a result; a result no stage decides. `file` names the problems' file
    (default `<id>.v<version>.yaml`).
    """
    file = file or f"{definition.id}.v{definition.version}.yaml"
    problems = [
        Problem(file, f"{kind}[{id_}].id", f"{kind[:-1]} id {id_!r} is used more than once")
        for kind, ids in (
            ("stages", [s.id for s in definition.stages]),
            ("results", [r.id for r in definition.results]),
            ("reminders", [r.id for r in definition.reminders]),
        )
        for id_ in _duplicates(ids)
    ]
    stage_ids = {stage.id for stage in definition.stages}
    result_ids = {result.id for result in definition.results}
    leads_to: dict[str, set[str]] = {stage.id: set() for stage in definition.stages}
    decided: set[str] = set()
    deciding: set[str] = set()
    for stage in definition.stages:
        for target in stage.to:
            if target in stage_ids:
                leads_to[stage.id].add(target)
            else:
                problems.append(
                    Problem(file, f"stages[{stage.id}].to", f"names unknown stage {target!r}")
                )
        for result_id in stage.decides:
            if result_id == WITHDRAWN:
                problems.append(
                    Problem(
                        file,
                        f"stages[{stage.id}].decides",
                        "'withdrawn' is not decided: the citizen withdraws at any stage",
                    )
                )
            elif result_id in result_ids:
                decided.add(result_id)
                deciding.add(stage.id)
            else:
                problems.append(
                    Problem(
                        file, f"stages[{stage.id}].decides", f"names unknown result {result_id!r}"
                    )
                )

    first = definition.initial_stage.id
    reachable = _closure({first}, leads_to)
    came_from: dict[str, set[str]] = {stage_id: set() for stage_id in leads_to}
    for source, targets in leads_to.items():
        for target in targets:
            came_from[target].add(source)
    ends_in_result = _closure(deciding, came_from)
    for stage in definition.stages:
        if stage.id not in reachable:
            problems.append(
                Problem(
                    file,
                    f"stages[{stage.id}]",
                    f"cannot be reached: no path leads here from the first stage {first!r}",
                )
            )
        if stage.id not in ends_in_result:
            problems.append(
                Problem(
                    file,
                    f"stages[{stage.id}]",
                    "has no path to a result: neither it nor any stage after it decides one",
                )
            )
    for result in definition.results:
        if result.id != WITHDRAWN and result.id not in decided:
            problems.append(Problem(file, f"results[{result.id}]", "no stage decides this result"))
    return problems


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    found, frontier = set(start), list(start)
    while frontier:
        for neighbour in edges.get(frontier.pop(), set()):
            if neighbour not in found:
                found.add(neighbour)
                frontier.append(neighbour)
    return found


def _definition_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.glob("*.yaml") if path.is_file())


def load_catalog(directory: Path | None = None) -> Catalog:
    """Every journey definition in `directory` (default: the packaged catalogue).

    Raises `DefinitionError` for the first file that is broken: a hub must not start with
    a journey it cannot run.
    """
    return Catalog(
        load_definition(path) for path in _definition_files(directory or PACKAGED_CATALOG)
    )


def check_catalog(directory: Path) -> list[Problem]:
    """Every problem in every definition file in `directory`; empty when all is well.

    Never raises for a broken file: each problem names its file and field.
    """
    if not directory.is_dir():
        return [Problem(str(directory), "(directory)", "does not exist or is not a directory")]
    paths = _definition_files(directory)
    if not paths:
        return [Problem(str(directory), "(directory)", "holds no journey definitions (*.yaml)")]
    problems: list[Problem] = []
    for path in paths:
        problems.extend(_read(path)[1])
    return problems
