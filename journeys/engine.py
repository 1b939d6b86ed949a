"""The journey engine: pure functions from (definition, state, action) to a new state and effects.

Nothing here reads a clock, a database or the network. Every action carries the date it
happened on (a Europe/Amsterdam date: the hub converts), and the hub carries out the
effects: it records events, writes notifications to the outbox and keeps timers.

Notifications name a message template; the engine may ask for these:
`case_started`, `stage_entered`, `information_requested`, `deadline_passed`,
`case_suspended`, `case_resumed`, `case_extended`, `case_decided`, `case_withdrawn`.
The only timer is `citizen_deadline`; its `due_on` is the citizen's last day to respond, so
the hub fires it when the next day begins and then applies `DeadlinePassed`.
"""

from datetime import date, timedelta
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

from journeys.calendar import add_duration, next_working_day
from journeys.model import Duration, DurationUnit, JourneyDefinition, Stage, Turn

Status = Literal["open", "waiting_for_citizen", "suspended", "closed"]
Audience = Literal["citizen", "staff"]

CITIZEN_DEADLINE_TIMER = "citizen_deadline"
NOTIFY_TEMPLATES = (
    "case_started",
    "stage_entered",
    "information_requested",
    "deadline_passed",
    "case_suspended",
    "case_resumed",
    "case_extended",
    "case_decided",
    "case_withdrawn",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Extension(_Frozen):
    reason: str
    days: int = Field(ge=1)
    unit: DurationUnit


class CaseState(_Frozen):
    """Where one case stands. The hub stores it as it is and hands it back to `apply`."""

    journey_id: str
    version: int
    stage: str
    status: Status
    started_on: date
    stage_entered_on: date
    result: str | None = None
    decided_on: date | None = None
    citizen_deadline: date | None = None
    information_requested: str | None = None
    suspended_since: date | None = None
    suspended_days: int = Field(default=0, ge=0)
    extensions: list[Extension] = Field(default_factory=list)


class _Action(_Frozen):
    on: date


class Start(_Action):
    kind: Literal["start"] = "start"


class Advance(_Action):
    kind: Literal["advance"] = "advance"
    to: str


class RequestInformation(_Action):
    kind: Literal["request_information"] = "request_information"
    what: str = Field(min_length=1)
    deadline: date | None = None


class ProvideInformation(_Action):
    kind: Literal["provide_information"] = "provide_information"
    note: str = ""


class DeadlinePassed(_Action):
    kind: Literal["deadline_passed"] = "deadline_passed"


class Suspend(_Action):
    kind: Literal["suspend"] = "suspend"
    reason: str


class Resume(_Action):
    kind: Literal["resume"] = "resume"


class Extend(_Action):
    kind: Literal["extend"] = "extend"
    reason: str
    days: int = Field(ge=1)
    unit: DurationUnit


class Decide(_Action):
    kind: Literal["decide"] = "decide"
    result: str
    note: str = ""


class Withdraw(_Action):
    kind: Literal["withdraw"] = "withdraw"
    reason: str = ""


Action = Annotated[
    Start
    | Advance
    | RequestInformation
    | ProvideInformation
    | DeadlinePassed
    | Suspend
    | Resume
    | Extend
    | Decide
    | Withdraw,
    Field(discriminator="kind"),
]
_ACTION: TypeAdapter[Action] = TypeAdapter(Action)


def parse_action(data: dict[str, Any]) -> Action:
    """An action from its JSON form, chosen by `kind`; raises pydantic's ValidationError."""
    return _ACTION.validate_python(data)


class RecordEvent(_Frozen):
    kind: str
    payload: dict[str, JsonValue]
    audience: Audience


class NotifyCitizen(_Frozen):
    template: str
    params: dict[str, JsonValue]


class SetTimer(_Frozen):
    kind: str
    due_on: date


class CancelTimer(_Frozen):
    kind: str


Effect = RecordEvent | NotifyCitizen | SetTimer | CancelTimer


class Outcome(NamedTuple):
    state: CaseState
    effects: tuple[Effect, ...]


class IllegalAction(Exception):
    """An action the journey does not allow in the case's current stage and status."""

    def __init__(self, stage: str | None, action: str, reason: str) -> None:
        where = f"in stage {stage!r}" if stage is not None else "before the case has started"
        super().__init__(f"cannot {action} {where}: {reason}")
        self.stage = stage
        self.action = action
        self.reason = reason


def apply(definition: JourneyDefinition, state: CaseState | None, action: Action) -> Outcome:
    """The case's new state after `action`, and what the hub must do because of it.

    Raises `IllegalAction`, naming the stage and the action, when the action is not allowed:
    `Start` on an existing case, anything else on none, anything on a closed case, an
    action dated before the case's last change, and each action's own rules.
    """
    if isinstance(action, Start):
        if state is not None:
            raise IllegalAction(state.stage, action.kind, "the case has already started")
        return _start(definition, action)
    if state is None:
        raise IllegalAction(None, action.kind, "there is no case yet; start one first")
    if (state.journey_id, state.version) != (definition.id, definition.version):
        raise IllegalAction(
            state.stage,
            action.kind,
            f"the case follows {state.journey_id} v{state.version}, "
            f"not {definition.id} v{definition.version}",
        )
    if state.status == "closed":
        raise IllegalAction(state.stage, action.kind, "the case is closed")
    latest = max(state.stage_entered_on, state.suspended_since or state.stage_entered_on)
    if action.on < latest:
        raise IllegalAction(
            state.stage,
            action.kind,
            f"dated {action.on.isoformat()}, before the case's last change on {latest.isoformat()}",
        )
    match action:
        case Advance():
            return _advance(definition, state, action)
        case RequestInformation():
            return _request_information(definition, state, action)
        case ProvideInformation():
            return _provide_information(state, action)
        case DeadlinePassed():
            return _deadline_passed(state, action)
        case Suspend():
            return _suspend(state, action)
        case Resume():
            return _resume(state, action)
        case Extend():
            return _extend(definition, state, action)
        case Decide():
            return _decide(definition, state, action)
        case Withdraw():
            return _withdraw(state, action)


def _stage_name(stage: Stage) -> dict[str, JsonValue]:
    return {"nl": stage.name.nl, "en": stage.name.en}


def _require_open(state: CaseState, action: str) -> None:
    if state.status == "waiting_for_citizen":
        raise IllegalAction(
            state.stage,
            action,
            "the case is waiting for information from the citizen "
            "(provide it, or let the deadline pass, first)",
        )
    if state.status == "suspended":
        raise IllegalAction(state.stage, action, "the case is suspended (resume it first)")


def _start(definition: JourneyDefinition, action: Start) -> Outcome:
    stage = definition.initial_stage
    state = CaseState(
        journey_id=definition.id,
        version=definition.version,
        stage=stage.id,
        status="open",
        started_on=action.on,
        stage_entered_on=action.on,
    )
    expected = expected_completion(definition, state, action.on)
    assert expected is not None
    return Outcome(
        state,
        (
            RecordEvent(
                kind="case_started",
                payload={"stage": stage.id, "expected_completion": expected.isoformat()},
                audience="citizen",
            ),
            NotifyCitizen(
                template="case_started",
                params={
                    "journey_id": definition.id,
                    "started_by": definition.started_by,
                    "stage": stage.id,
                    "stage_name": _stage_name(stage),
                    "expected_completion": expected.isoformat(),
                },
            ),
        ),
    )


def _advance(definition: JourneyDefinition, state: CaseState, action: Advance) -> Outcome:
    _require_open(state, action.kind)
    current = definition.stage(state.stage)
    if action.to not in current.to:
        allowed = ", ".join(current.to) or "none: this stage ends in a decision"
        raise IllegalAction(
            state.stage,
            action.kind,
            f"stage {action.to!r} cannot be reached from here (allowed: {allowed})",
        )
    target = definition.stage(action.to)
    effects: list[Effect] = [
        RecordEvent(
            kind="stage_entered",
            payload={"from": current.id, "to": target.id, "turn": target.turn},
            audience="citizen",
        )
    ]
    if target.notify_on_entry:
        effects.append(
            NotifyCitizen(
                template="stage_entered",
                params={
                    "journey_id": definition.id,
                    "stage": target.id,
                    "stage_name": _stage_name(target),
                    "turn": target.turn,
                },
            )
        )
    new_state = state.model_copy(update={"stage": target.id, "stage_entered_on": action.on})
    return Outcome(new_state, tuple(effects))


def _request_information(
    definition: JourneyDefinition, state: CaseState, action: RequestInformation
) -> Outcome:
    _require_open(state, action.kind)
    deadline = action.deadline or add_duration(action.on, definition.citizen_response)
    if deadline <= action.on:
        raise IllegalAction(
            state.stage,
            action.kind,
            f"the deadline {deadline.isoformat()} must come after {action.on.isoformat()}",
        )
    new_state = state.model_copy(
        update={
            "status": "waiting_for_citizen",
            "citizen_deadline": deadline,
            "information_requested": action.what,
            "suspended_since": action.on,
        }
    )
    details: dict[str, JsonValue] = {"what": action.what, "deadline": deadline.isoformat()}
    return Outcome(
        new_state,
        (
            RecordEvent(kind="information_requested", payload=details, audience="citizen"),
            NotifyCitizen(template="information_requested", params=details),
            SetTimer(kind=CITIZEN_DEADLINE_TIMER, due_on=deadline),
        ),
    )


def _resumed(state: CaseState, on: date) -> dict[str, Any]:
    """The fields that stop a running suspension on `on`, counting its days."""
    since = state.suspended_since
    stood_still = (on - since).days if since is not None else 0
    return {
        "status": "open",
        "suspended_since": None,
        "suspended_days": state.suspended_days + stood_still,
        "citizen_deadline": None,
        "information_requested": None,
    }


def _provide_information(state: CaseState, action: ProvideInformation) -> Outcome:
    if state.status != "waiting_for_citizen":
        raise IllegalAction(state.stage, action.kind, "no information was requested")
    return Outcome(
        state.model_copy(update=_resumed(state, action.on)),
        (
            RecordEvent(
                kind="information_provided", payload={"note": action.note}, audience="citizen"
            ),
            CancelTimer(kind=CITIZEN_DEADLINE_TIMER),
        ),
    )


def _deadline_passed(state: CaseState, action: DeadlinePassed) -> Outcome:
    deadline = state.citizen_deadline
    if state.status != "waiting_for_citizen" or deadline is None:
        raise IllegalAction(state.stage, action.kind, "the case is not waiting for the citizen")
    # The clock stood still until the deadline passed, not until a late timer happened to fire.
    # An earlier date is taken as given: staff may close the wait when the citizen says the
    # information will not come.
    resumed_on = min(action.on, deadline + timedelta(days=1))
    new_state = state.model_copy(update=_resumed(state, resumed_on))
    details: dict[str, JsonValue] = {
        "what": state.information_requested,
        "deadline": deadline.isoformat(),
    }
    return Outcome(
        new_state,
        (
            RecordEvent(kind="deadline_passed", payload=details, audience="citizen"),
            NotifyCitizen(template="deadline_passed", params=details),
        ),
    )


def _suspend(state: CaseState, action: Suspend) -> Outcome:
    _require_open(state, action.kind)
    new_state = state.model_copy(update={"status": "suspended", "suspended_since": action.on})
    details: dict[str, JsonValue] = {"reason": action.reason}
    return Outcome(
        new_state,
        (
            RecordEvent(kind="suspended", payload=details, audience="citizen"),
            NotifyCitizen(template="case_suspended", params=details),
        ),
    )


def _resume(state: CaseState, action: Resume) -> Outcome:
    if state.status != "suspended":
        raise IllegalAction(state.stage, action.kind, "the case is not suspended")
    new_state = state.model_copy(update=_resumed(state, action.on))
    details: dict[str, JsonValue] = {"suspended_days": new_state.suspended_days}
    return Outcome(
        new_state,
        (
            RecordEvent(kind="resumed", payload=details, audience="citizen"),
            NotifyCitizen(template="case_resumed", params=details),
        ),
    )


def _extend(definition: JourneyDefinition, state: CaseState, action: Extend) -> Outcome:
    extension = Extension(reason=action.reason, days=action.days, unit=action.unit)
    extensions = [*state.extensions, extension]
    cap = definition.extension
    if cap is not None:
        norm_end = _extended_end(definition, state.started_on, [])
        if _extended_end(definition, state.started_on, extensions) > add_duration(
            norm_end, cap, roll_forward=False
        ):
            raise IllegalAction(
                state.stage,
                action.kind,
                f"the decision may be postponed by at most {cap.days} {cap.unit} days in all",
            )
    new_state = state.model_copy(update={"extensions": extensions})
    expected = expected_completion(definition, new_state, action.on)
    assert expected is not None
    details: dict[str, JsonValue] = {
        "reason": action.reason,
        "days": action.days,
        "unit": action.unit,
        "expected_completion": expected.isoformat(),
    }
    return Outcome(
        new_state,
        (
            RecordEvent(kind="extended", payload=details, audience="citizen"),
            NotifyCitizen(template="case_extended", params=details),
        ),
    )


def _decide(definition: JourneyDefinition, state: CaseState, action: Decide) -> Outcome:
    _require_open(state, action.kind)
    stage = definition.stage(state.stage)
    if action.result not in stage.decides:
        allowed = ", ".join(stage.decides) or "none: advance to a later stage first"
        raise IllegalAction(
            state.stage,
            action.kind,
            f"result {action.result!r} cannot be decided here (allowed: {allowed})",
        )
    result = definition.result(action.result)
    new_state = state.model_copy(
        update={"status": "closed", "result": result.id, "decided_on": action.on}
    )
    follow_ups: list[JsonValue] = []
    for follow_up in result.follow_ups:
        until = add_duration(action.on, follow_up.within).isoformat() if follow_up.within else None
        follow_ups.append({"kind": follow_up.kind, "until": until})
    return Outcome(
        new_state,
        (
            RecordEvent(
                kind="decided",
                payload={"result": result.id, "note": action.note},
                audience="citizen",
            ),
            CancelTimer(kind=CITIZEN_DEADLINE_TIMER),
            NotifyCitizen(
                template="case_decided",
                params={
                    "journey_id": definition.id,
                    "result": result.id,
                    "result_text": {"nl": result.text.nl, "en": result.text.en},
                    "follow_ups": follow_ups,
                },
            ),
        ),
    )


def _withdraw(state: CaseState, action: Withdraw) -> Outcome:
    update = _resumed(state, action.on)
    update.update({"status": "closed", "result": "withdrawn", "decided_on": action.on})
    return Outcome(
        state.model_copy(update=update),
        (
            RecordEvent(kind="withdrawn", payload={"reason": action.reason}, audience="citizen"),
            CancelTimer(kind=CITIZEN_DEADLINE_TIMER),
            NotifyCitizen(template="case_withdrawn", params={"journey_id": state.journey_id}),
        ),
    )


def _extended_end(
    definition: JourneyDefinition, started_on: date, extensions: list[Extension]
) -> date:
    end = add_duration(started_on, definition.service_norm, roll_forward=False)
    for extension in extensions:
        end = add_duration(
            end, Duration(days=extension.days, unit=extension.unit), roll_forward=False
        )
    return end


def expected_completion(
    definition: JourneyDefinition, state: CaseState, today: date
) -> date | None:
    """When the case should be decided; None once it is closed.

    The start date plus the service norm, plus every extension, plus the calendar days the
    clock stood still — a suspension still running counts up to `today`. Only the final date
    moves to the next working day, as the Algemene termijnenwet does.
    """
    if state.status == "closed":
        return None
    end = _extended_end(definition, state.started_on, state.extensions)
    stood_still = state.suspended_days
    if state.suspended_since is not None:
        stood_still += max(0, (today - state.suspended_since).days)
    return next_working_day(end + timedelta(days=stood_still))


class StageSummary(_Frozen):
    id: str
    name: str
    state: Literal["done", "current", "upcoming"]


class FollowUpView(_Frozen):
    kind: str
    text: str
    until: date | None


class StatusView(_Frozen):
    """What the citizen's status page shows, in one language."""

    status: Status
    stage_index: int
    stage_count: int
    stages: list[StageSummary]
    turn: Turn | None
    now: str
    next: str
    expected_completion: date | None
    overdue: bool
    citizen_deadline: date | None
    information_requested: str | None
    result: str | None
    result_text: str | None
    follow_ups: list[FollowUpView]


_WAITING_NOW = {
    "nl": "We wachten op informatie van u: {what}",
    "en": "We are waiting for information from you: {what}",
}
_WAITING_NEXT = {
    "nl": "Stuur de informatie uiterlijk {deadline}. Daarna gaan we verder met uw zaak.",
    "en": "Please send it by {deadline}. Then we continue with your case.",
}
_SUSPENDED_NOW = {
    "nl": "We hebben uw zaak even stilgezet. De termijn loopt nu niet door.",
    "en": "We have paused your case for now. The time limit is on hold.",
}
_CLOSED_NEXT = {
    "nl": "Uw zaak is afgerond.",
    "en": "Your case is closed.",
}


_MONTHS = {
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
    "en": "January February March April May June July August September October November December",
}


def _pick(texts: dict[str, str], lang: str) -> str:
    return texts["en"] if lang == "en" else texts["nl"]


def _long_date(day: date, lang: str) -> str:
    # Plain language: "14 mei 2026" reads better than an ISO date on a citizen's page.
    return f"{day.day} {_pick(_MONTHS, lang).split()[day.month - 1]} {day.year}"


def status_view(
    definition: JourneyDefinition, state: CaseState, today: date, lang: str = "nl"
) -> StatusView:
    """The case as its citizen sees it on `today`, in `lang` (Dutch unless "en").

    Stages are shown in the order the definition lists them: those before the current one
    are done, those after it upcoming, even when a path skips one. Once the case is closed,
    the stage it closed in is done too, and follow-ups (such as an objection period) run
    until their date counted from the decision.
    """
    stage = definition.stage(state.stage)
    index = next(i for i, candidate in enumerate(definition.stages) if candidate.id == stage.id)
    closed = state.status == "closed"
    stages = [
        StageSummary(
            id=candidate.id,
            name=candidate.name.get(lang),
            state=(
                "done"
                if i < index or (i == index and closed)
                else "current"
                if i == index
                else "upcoming"
            ),
        )
        for i, candidate in enumerate(definition.stages)
    ]
    expected = expected_completion(definition, state, today)
    turn: Turn | None = stage.turn
    now, next_ = stage.now.get(lang), stage.next.get(lang)
    result_text: str | None = None
    follow_ups: list[FollowUpView] = []
    if state.status == "waiting_for_citizen":
        turn = "citizen"
        now = _pick(_WAITING_NOW, lang).format(what=state.information_requested)
        deadline = _long_date(state.citizen_deadline, lang) if state.citizen_deadline else ""
        next_ = _pick(_WAITING_NEXT, lang).format(deadline=deadline)
    elif state.status == "suspended":
        now = _pick(_SUSPENDED_NOW, lang)
    elif closed and state.result is not None and state.decided_on is not None:
        turn = None
        result = definition.result(state.result)
        result_text = result.text.get(lang)
        now, next_ = result_text, _pick(_CLOSED_NEXT, lang)
        follow_ups = [
            FollowUpView(
                kind=follow_up.kind,
                text=follow_up.text.get(lang),
                until=add_duration(state.decided_on, follow_up.within)
                if follow_up.within
                else None,
            )
            for follow_up in result.follow_ups
        ]
    return StatusView(
        status=state.status,
        stage_index=index + 1,
        stage_count=len(definition.stages),
        stages=stages,
        turn=turn,
        now=now,
        next=next_,
        expected_completion=expected,
        overdue=expected is not None and today > expected,
        citizen_deadline=state.citizen_deadline,
        information_requested=state.information_requested,
        result=state.result,
        result_text=result_text,
        follow_ups=follow_ups,
    )
