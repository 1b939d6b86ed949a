"""Validated journey definitions: the types a journey YAML file is read into.

Validation here is per field and per object (a blank text, an unknown context, a missing
"withdrawn" result). Checks that need the whole stage graph — reachability, a path to a
result, transitions to unknown stages — live in `journeys.catalog.check_definition`, so
that one broken file can report all of its problems at once.
"""

import calendar
import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")]
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
DurationUnit = Literal["calendar", "working"]
Turn = Literal["citizen", "government", "third_party"]
Context = Literal["obligation", "right", "possibility"]
CitizenContext = Literal["standard", "specific"]
Actor = Literal["government", "citizen"]

WITHDRAWN = "withdrawn"
# A journey whose ``agency`` is "any" (a general question) belongs to the agency it is
# opened at; the hub chooses that agency when the case opens.
ANY_AGENCY = "any"


class UnknownStage(LookupError):
    """A stage id that the journey definition does not have."""

    def __init__(self, journey_id: str, stage_id: str) -> None:
        super().__init__(f"journey {journey_id!r} has no stage {stage_id!r}")
        self.journey_id = journey_id
        self.stage_id = stage_id


class UnknownResult(LookupError):
    """A result id that the journey definition does not have."""

    def __init__(self, journey_id: str, result_id: str) -> None:
        super().__init__(f"journey {journey_id!r} has no result {result_id!r}")
        self.journey_id = journey_id
        self.result_id = result_id


class _Definition(BaseModel):
    # extra="forbid" turns a misspelt key in a YAML file into an error instead of a silent default.
    model_config = ConfigDict(frozen=True, extra="forbid")


class Texts(_Definition):
    """A citizen-facing text in Dutch and English; both are required."""

    nl: NonBlank
    en: NonBlank

    def get(self, lang: str) -> str:
        """The text in `lang`; Dutch for any language other than English."""
        return self.en if lang == "en" else self.nl


class Duration(_Definition):
    days: int = Field(ge=0)
    unit: DurationUnit


_PERIOD = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?")


class RetentionTerm(_Definition):
    """How long a closed case and its messages are kept after closing, written as an ISO 8601
    period of years, months and days: ``P7Y``, ``P18M``, ``P1Y6M``, ``P90D``."""

    years: int = Field(0, ge=0, le=100)
    months: int = Field(0, ge=0)
    days: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_period(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = _PERIOD.fullmatch(value.strip())
        if match is None or not any(match.groups()):
            raise ValueError(f"{value!r} is not a period such as P7Y, P18M or P90D")
        years, months, days = (int(part or 0) for part in match.groups())
        return {"years": years, "months": months, "days": days}

    @model_validator(mode="after")
    def _not_zero(self) -> "RetentionTerm":
        if not (self.years or self.months or self.days):
            raise ValueError("a retention term must be longer than nothing")
        return self

    def before(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` less this term (the 31st becomes the month's last day): a case closed
        before it has outlived its term at ``moment``."""
        month_index = moment.year * 12 + moment.month - 1 - self.years * 12 - self.months
        year, month = divmod(month_index, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        return moment.replace(year=year, month=month + 1, day=day) - dt.timedelta(days=self.days)

    def __str__(self) -> str:
        parts = ((self.years, "Y"), (self.months, "M"), (self.days, "D"))
        return "P" + "".join(f"{n}{unit}" for n, unit in parts if n)


# Unless a journey names its own: what the hub keeps when nobody said otherwise.
DEFAULT_RETENTION = RetentionTerm(years=7)


class Stage(_Definition):
    id: Slug
    name: Texts
    turn: Turn
    expected: Duration
    now: Texts
    next: Texts
    notify_on_entry: bool = False
    to: list[Slug] = Field(default_factory=list)
    decides: list[Slug] = Field(default_factory=list)


class FollowUp(_Definition):
    kind: Slug
    within: Duration | None = None
    text: Texts


class ResultDefinition(_Definition):
    id: Slug
    text: Texts
    follow_ups: list[FollowUp] = Field(default_factory=list)


class Reminder(_Definition):
    id: Slug
    before: Duration
    text: Texts


class JourneyDefinition(_Definition):
    id: Slug
    version: int = Field(ge=1)
    title: Texts
    summary: Texts
    agency: Slug
    participating_agencies: list[Slug] = Field(default_factory=list)
    processing_activity: Slug
    context: Context
    citizen_context: CitizenContext
    done_by: Actor
    started_by: Actor = "citizen"
    service_norm: Duration
    extension: Duration | None = None
    """The most a decision may be postponed beyond the service norm, when a law caps it
    (a permit: once, six weeks). None: no cap beyond what the agency announces."""
    citizen_response: Duration
    retention: RetentionTerm = DEFAULT_RETENTION
    """How long after closing a case of this journey, with its messages, is kept; then the
    worker removes it (see hub.retention)."""
    reminders: list[Reminder] = Field(default_factory=list)
    stages: list[Stage] = Field(min_length=1)
    results: list[ResultDefinition] = Field(min_length=1)

    @field_validator("results")
    @classmethod
    def _citizen_may_withdraw(cls, results: list[ResultDefinition]) -> list[ResultDefinition]:
        if not any(result.id == WITHDRAWN for result in results):
            raise ValueError("a 'withdrawn' result is required: a citizen may always withdraw")
        return results

    def stage(self, stage_id: str) -> Stage:
        """The stage with this id; raises `UnknownStage` if there is none."""
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise UnknownStage(self.id, stage_id)

    def result(self, result_id: str) -> ResultDefinition:
        """The result with this id; raises `UnknownResult` if there is none."""
        for result in self.results:
            if result.id == result_id:
                return result
        raise UnknownResult(self.id, result_id)

    @property
    def initial_stage(self) -> Stage:
        """The stage every case of this journey starts in: the first one listed."""
        return self.stages[0]
