from collections.abc import Iterator
from datetime import date, timedelta
from typing import TypeVar

import pytest
from pydantic import ValidationError

from journeys.catalog import Catalog, load_catalog
from journeys.engine import (
    Action,
    Advance,
    CancelTimer,
    CaseState,
    DeadlinePassed,
    Decide,
    Extend,
    IllegalAction,
    NotifyCitizen,
    Outcome,
    ProvideInformation,
    RecordEvent,
    RequestInformation,
    Resume,
    SetTimer,
    Start,
    Suspend,
    Withdraw,
    apply,
    parse_action,
    status_view,
)
from journeys.model import JourneyDefinition

CATALOG: Catalog = load_catalog()
JOURNEY_IDS = sorted(definition.id for definition in CATALOG.all())
MONDAY = date(2026, 1, 5)
T = TypeVar("T")


def journey(journey_id: str) -> JourneyDefinition:
    return CATALOG.get(journey_id)


def run(definition: JourneyDefinition, *actions: Action) -> Outcome:
    """The outcome of the last action, starting from no case."""
    state: CaseState | None = None
    outcome: Outcome | None = None
    for action in actions:
        outcome = apply(definition, state, action)
        state = outcome.state
    assert outcome is not None
    return outcome


def started(definition: JourneyDefinition, on: date = MONDAY) -> CaseState:
    return apply(definition, None, Start(on=on)).state


def stage_paths(definition: JourneyDefinition, visits: int = 2) -> Iterator[list[str]]:
    """Every advance path from the first stage to a deciding one, each stage at most `visits`
    times."""

    def walk(path: list[str]) -> Iterator[list[str]]:
        stage = definition.stage(path[-1])
        if stage.decides:
            yield path
        for target in stage.to:
            if path.count(target) < visits:
                yield from walk([*path, target])

    yield from walk([definition.initial_stage.id])


def advanced_through(
    definition: JourneyDefinition, path: list[str], on: date = MONDAY
) -> CaseState:
    state = started(definition, on)
    for day, stage_id in enumerate(path[1:], start=1):
        state = apply(definition, state, Advance(on=on + timedelta(days=day), to=stage_id)).state
    return state


def of_type(effects: tuple[object, ...], kind: type[T]) -> list[T]:
    return [effect for effect in effects if isinstance(effect, kind)]


# Every path, every result -------------------------------------------------------------------


@pytest.mark.parametrize("journey_id", JOURNEY_IDS)
def test_every_path_reaches_each_result_its_last_stage_decides(journey_id: str) -> None:
    definition = journey(journey_id)
    reached: set[str] = set()
    paths = list(stage_paths(definition))
    assert paths
    for path in paths:
        state = advanced_through(definition, path)
        assert (state.stage, state.status) == (path[-1], "open")
        decided_on = MONDAY + timedelta(days=len(path) + 3)
        for result_id in definition.stage(path[-1]).decides:
            outcome = apply(definition, state, Decide(on=decided_on, result=result_id))
            final = outcome.state
            assert final.status == "closed"
            assert final.result == result_id
            assert final.stage == path[-1]
            assert final.decided_on == decided_on
            assert final.started_on == MONDAY
            notices = of_type(outcome.effects, NotifyCitizen)
            assert [n.template for n in notices] == ["case_decided"]
            assert notices[0].params["result"] == result_id
            assert CancelTimer(kind="citizen_deadline") in outcome.effects
            reached.add(result_id)
    assert reached == {r.id for r in definition.results} - {"withdrawn"}


@pytest.mark.parametrize("journey_id", JOURNEY_IDS)
def test_every_advance_off_a_path_is_refused(journey_id: str) -> None:
    definition = journey(journey_id)
    stage_ids = [stage.id for stage in definition.stages]
    for path in stage_paths(definition):
        state = advanced_through(definition, path)
        allowed = set(definition.stage(state.stage).to)
        for target in set(stage_ids) - allowed:
            with pytest.raises(IllegalAction) as error:
                apply(definition, state, Advance(on=MONDAY + timedelta(days=30), to=target))
            assert error.value.stage == state.stage
            assert f"'{state.stage}'" in str(error.value)
            assert "advance" in str(error.value)


@pytest.mark.parametrize("journey_id", JOURNEY_IDS)
def test_withdraw_from_any_open_stage_and_status(journey_id: str) -> None:
    definition = journey(journey_id)
    for path in stage_paths(definition):
        for length in range(1, len(path) + 1):
            open_state = advanced_through(definition, path[:length])
            on = MONDAY + timedelta(days=20)
            waiting = apply(
                definition, open_state, RequestInformation(on=on, what="loonstrook")
            ).state
            suspended = apply(definition, open_state, Suspend(on=on, reason="rechtszaak")).state
            for state in (open_state, waiting, suspended):
                outcome = apply(definition, state, Withdraw(on=on + timedelta(days=4)))
                assert outcome.state.status == "closed"
                assert outcome.state.result == "withdrawn"
                assert outcome.state.stage == path[length - 1]
                assert outcome.state.suspended_since is None
                assert outcome.state.citizen_deadline is None
                assert CancelTimer(kind="citizen_deadline") in outcome.effects
                assert [n.template for n in of_type(outcome.effects, NotifyCitizen)] == [
                    "case_withdrawn"
                ]
            assert waiting.status == "waiting_for_citizen"
            assert (
                apply(definition, waiting, Withdraw(on=on + timedelta(days=4))).state.suspended_days
                == 4
            )


# Illegal moves --------------------------------------------------------------------------------


def test_start_twice_is_refused() -> None:
    definition = journey("huurtoeslag")
    with pytest.raises(IllegalAction, match=r"cannot start in stage 'received'"):
        apply(definition, started(definition), Start(on=MONDAY))


def test_actions_without_a_case_are_refused() -> None:
    with pytest.raises(IllegalAction, match="cannot advance before the case has started"):
        apply(journey("huurtoeslag"), None, Advance(on=MONDAY, to="assessment"))


def test_deciding_a_result_the_stage_does_not_decide_is_refused() -> None:
    definition = journey("huurtoeslag")
    with pytest.raises(IllegalAction) as error:
        apply(definition, started(definition), Decide(on=MONDAY, result="granted"))
    assert str(error.value) == (
        "cannot decide in stage 'received': result 'granted' cannot be decided here "
        "(allowed: none: advance to a later stage first)"
    )
    state = advanced_through(definition, ["received", "assessment", "decision"])
    with pytest.raises(IllegalAction, match="'registered' cannot be decided here"):
        apply(definition, state, Decide(on=MONDAY + timedelta(days=5), result="registered"))
    with pytest.raises(IllegalAction, match="'withdrawn' cannot be decided here"):
        apply(definition, state, Decide(on=MONDAY + timedelta(days=5), result="withdrawn"))


def test_nothing_is_allowed_on_a_closed_case() -> None:
    definition = journey("huurtoeslag")
    closed = apply(definition, started(definition), Withdraw(on=MONDAY)).state
    for action in (
        Withdraw(on=MONDAY),
        Advance(on=MONDAY, to="assessment"),
        Extend(on=MONDAY, reason="druk", days=7, unit="calendar"),
    ):
        with pytest.raises(
            IllegalAction, match=f"cannot {action.kind} in stage 'received': the case is closed"
        ):
            apply(definition, closed, action)


def test_waiting_and_suspended_cases_cannot_advance_or_be_decided() -> None:
    definition = journey("ww-uitkering")
    state = advanced_through(definition, ["received", "assessment"])
    waiting = apply(
        definition, state, RequestInformation(on=MONDAY + timedelta(days=2), what="x")
    ).state
    suspended = apply(definition, state, Suspend(on=MONDAY + timedelta(days=2), reason="x")).state
    later = MONDAY + timedelta(days=3)
    for action in (Advance(on=later, to="calculation"), Decide(on=later, result="rejected")):
        with pytest.raises(IllegalAction, match="waiting for information from the citizen"):
            apply(definition, waiting, action)
        with pytest.raises(IllegalAction, match="suspended"):
            apply(definition, suspended, action)
    for again in (RequestInformation(on=later, what="y"), Suspend(on=later, reason="y")):
        with pytest.raises(IllegalAction, match=again.kind):
            apply(definition, waiting, again)
        with pytest.raises(IllegalAction, match=again.kind):
            apply(definition, suspended, again)


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (Resume(on=MONDAY), "not suspended"),
        (ProvideInformation(on=MONDAY), "no information was requested"),
        (DeadlinePassed(on=MONDAY), "not waiting for the citizen"),
    ],
)
def test_actions_that_need_a_particular_status(action: Action, reason: str) -> None:
    definition = journey("dakkapel")
    with pytest.raises(IllegalAction) as error:
        apply(definition, started(definition), action)
    assert error.value.stage == "received"
    assert error.value.action == action.kind
    assert reason in str(error.value)


def test_actions_dated_before_the_last_change_are_refused() -> None:
    definition = journey("huurtoeslag")
    state = advanced_through(definition, ["received", "assessment"])
    with pytest.raises(IllegalAction, match="before the case's last change on 2026-01-06"):
        apply(definition, state, Advance(on=MONDAY, to="decision"))


def test_a_case_of_another_journey_or_version_is_refused() -> None:
    state = started(journey("huurtoeslag"))
    with pytest.raises(IllegalAction, match="follows huurtoeslag v1, not dakkapel v1"):
        apply(journey("dakkapel"), state, Advance(on=MONDAY, to="design-review"))


def test_information_deadline_must_lie_after_the_request() -> None:
    definition = journey("huurtoeslag")
    with pytest.raises(IllegalAction, match="request_information"):
        apply(
            definition,
            started(definition),
            RequestInformation(on=MONDAY, what="x", deadline=MONDAY),
        )


# The clock: requests for information, suspension, extension -------------------------------------


def test_request_information_stops_the_clock_until_provided() -> None:
    definition = journey("huurtoeslag")
    request_on = date(2026, 1, 12)
    outcome = apply(
        definition, started(definition), RequestInformation(on=request_on, what="huurcontract")
    )
    state = outcome.state
    assert state.status == "waiting_for_citizen"
    assert state.citizen_deadline == date(2026, 1, 26)  # 14 calendar days
    assert state.information_requested == "huurcontract"
    assert SetTimer(kind="citizen_deadline", due_on=date(2026, 1, 26)) in outcome.effects
    assert [n.template for n in of_type(outcome.effects, NotifyCitizen)] == [
        "information_requested"
    ]

    provided = apply(definition, state, ProvideInformation(on=date(2026, 1, 19), note="bijgevoegd"))
    assert provided.state.status == "open"
    assert provided.state.suspended_days == 7
    assert provided.state.citizen_deadline is None
    assert provided.effects[-1] == CancelTimer(kind="citizen_deadline")
    view = status_view(definition, provided.state, date(2026, 1, 19))
    assert view.expected_completion == date(2026, 3, 2) + timedelta(days=7)


def test_default_information_deadline_moves_off_a_weekend() -> None:
    definition = journey("huurtoeslag")
    saturday_plus_14 = date(2026, 1, 3)  # a Saturday: the deadline lands on Saturday 17 Jan
    state = apply(
        definition,
        started(definition, saturday_plus_14),
        RequestInformation(on=saturday_plus_14, what="x"),
    ).state
    assert state.citizen_deadline == date(2026, 1, 19)


def test_explicit_information_deadline_is_kept() -> None:
    definition = journey("schuldhulp")
    state = apply(
        definition,
        started(definition),
        RequestInformation(on=MONDAY, what="x", deadline=date(2026, 2, 2)),
    ).state
    assert state.citizen_deadline == date(2026, 2, 2)


def test_deadline_passed_resumes_the_clock_at_the_deadline() -> None:
    definition = journey("huurtoeslag")
    state = apply(
        definition, started(definition), RequestInformation(on=date(2026, 1, 12), what="x")
    ).state
    on_time = apply(definition, state, DeadlinePassed(on=date(2026, 1, 27)))
    assert on_time.state.suspended_days == 15
    # The worker fires late; the clock still only stood still until the deadline passed.
    outcome = apply(definition, state, DeadlinePassed(on=date(2026, 1, 30)))
    assert outcome.state.status == "open"
    assert outcome.state.suspended_days == 15
    assert outcome.state.citizen_deadline is None
    events = of_type(outcome.effects, RecordEvent)
    assert [(e.kind, e.payload["deadline"]) for e in events] == [("deadline_passed", "2026-01-26")]
    assert [n.template for n in of_type(outcome.effects, NotifyCitizen)] == ["deadline_passed"]
    # The government decides on what it has.
    decided = run(
        definition,
        Start(on=MONDAY),
        RequestInformation(on=date(2026, 1, 12), what="x"),
        DeadlinePassed(on=date(2026, 1, 27)),
        Advance(on=date(2026, 1, 28), to="assessment"),
        Advance(on=date(2026, 1, 29), to="decision"),
        Decide(on=date(2026, 1, 30), result="rejected"),
    )
    assert decided.state.result == "rejected"
    assert decided.state.suspended_days == 15


def test_deadline_declared_passed_early_stops_the_wait_that_day() -> None:
    definition = journey("huurtoeslag")
    state = apply(
        definition, started(definition), RequestInformation(on=date(2026, 1, 12), what="x")
    ).state
    outcome = apply(definition, state, DeadlinePassed(on=date(2026, 1, 16)))
    assert outcome.state.status == "open"
    assert outcome.state.suspended_days == 4
    with pytest.raises(IllegalAction, match="not waiting for the citizen"):
        apply(definition, outcome.state, DeadlinePassed(on=date(2026, 1, 27)))


def test_suspension_moves_the_expected_date_by_the_suspended_days() -> None:
    definition = journey("huurtoeslag")
    state = started(definition)
    assert status_view(definition, state, MONDAY).expected_completion == date(2026, 3, 2)

    suspended = apply(
        definition, state, Suspend(on=date(2026, 1, 12), reason="fraudeonderzoek")
    ).state
    assert suspended.status == "suspended"
    running = status_view(definition, suspended, date(2026, 1, 15))
    assert running.expected_completion == date(2026, 3, 5)
    assert running.now == "We hebben uw zaak even stilgezet. De termijn loopt nu niet door."

    resumed = apply(definition, suspended, Resume(on=date(2026, 1, 22)))
    assert resumed.state.suspended_days == 10
    assert resumed.state.status == "open"
    assert [n.template for n in of_type(resumed.effects, NotifyCitizen)] == ["case_resumed"]
    view = status_view(definition, resumed.state, date(2026, 3, 1))
    assert view.expected_completion == date(2026, 3, 12)
    assert (view.expected_completion - date(2026, 3, 2)).days == 10

    again = run(
        definition,
        Start(on=MONDAY),
        Suspend(on=date(2026, 1, 12), reason="a"),
        Resume(on=date(2026, 1, 22)),
        Suspend(on=date(2026, 2, 2), reason="b"),
        Resume(on=date(2026, 2, 5)),
    )
    assert again.state.suspended_days == 13


def test_expected_date_on_kings_day_moves_to_the_next_working_day() -> None:
    definition = journey("huurtoeslag")
    state = started(definition, date(2026, 3, 2))  # + 56 days = Monday 27 April 2026
    assert status_view(definition, state, date(2026, 3, 2)).expected_completion == date(2026, 4, 28)


def test_working_day_service_norm() -> None:
    definition = journey("kvk-inschrijving")
    state = started(definition, date(2026, 5, 11))
    assert status_view(definition, state, date(2026, 5, 11)).expected_completion == date(
        2026, 5, 19
    )


def test_extension_moves_the_expected_date() -> None:
    definition = journey("huurtoeslag")
    outcome = run(
        definition,
        Start(on=MONDAY),
        Extend(on=date(2026, 2, 20), reason="drukte", days=14, unit="calendar"),
    )
    assert outcome.state.extensions[0].reason == "drukte"
    assert outcome.effects[-1] == NotifyCitizen(
        template="case_extended",
        params={
            "reason": "drukte",
            "days": 14,
            "unit": "calendar",
            "expected_completion": "2026-03-16",
        },
    )
    working = apply(
        definition,
        outcome.state,
        Extend(on=date(2026, 2, 20), reason="nog meer", days=3, unit="working"),
    )
    assert status_view(definition, working.state, MONDAY).expected_completion == date(2026, 3, 19)


def test_a_capped_extension_cannot_be_exceeded() -> None:
    definition = journey("dakkapel")  # a permit may be postponed once, by six weeks
    state = started(definition)
    extended = apply(
        definition, state, Extend(on=date(2026, 2, 20), reason="advies", days=42, unit="calendar")
    ).state
    assert status_view(definition, extended, MONDAY).expected_completion == date(2026, 4, 13)
    with pytest.raises(IllegalAction, match="at most 42 calendar days") as error:
        apply(
            definition,
            extended,
            Extend(on=date(2026, 2, 20), reason="meer", days=1, unit="calendar"),
        )
    assert error.value.stage == "received"
    with pytest.raises(IllegalAction, match="extend"):
        apply(
            definition,
            state,
            Extend(on=date(2026, 2, 20), reason="te lang", days=43, unit="calendar"),
        )


def test_overdue_once_the_expected_date_has_passed() -> None:
    definition = journey("parkeervergunning-verhuizing")
    state = started(definition, date(2026, 5, 11))
    assert status_view(definition, state, date(2026, 5, 19)).overdue is False
    assert status_view(definition, state, date(2026, 5, 20)).overdue is True


# Effects --------------------------------------------------------------------------------------


def test_start_notifies_and_names_who_started() -> None:
    outcome = apply(journey("parkeervergunning-verhuizing"), None, Start(on=date(2026, 5, 11)))
    assert outcome.state.stage == "address-changed"
    assert outcome.state.status == "open"
    notice = of_type(outcome.effects, NotifyCitizen)[0]
    assert notice.template == "case_started"
    assert notice.params["started_by"] == "government"
    assert notice.params["expected_completion"] == "2026-05-19"  # over Ascension Day


def test_entering_a_stage_notifies_only_when_the_stage_asks() -> None:
    definition = journey("dakkapel")
    state = advanced_through(definition, ["received"])
    outcome = apply(definition, state, Advance(on=MONDAY, to="design-review"))
    notices = of_type(outcome.effects, NotifyCitizen)
    assert [(n.template, n.params["stage"]) for n in notices] == [
        ("stage_entered", "design-review")
    ]
    assert outcome.state.stage_entered_on == MONDAY
    quiet = apply(definition, outcome.state, Advance(on=MONDAY, to="assessment"))
    assert of_type(quiet.effects, NotifyCitizen) == []
    assert [e.payload for e in of_type(quiet.effects, RecordEvent)] == [
        {"from": "design-review", "to": "assessment", "turn": "government"}
    ]


def test_decision_notice_carries_follow_up_dates() -> None:
    definition = journey("huurtoeslag")
    state = advanced_through(definition, ["received", "assessment", "decision"])
    outcome = apply(definition, state, Decide(on=date(2026, 3, 16), result="partly_granted"))
    notice = of_type(outcome.effects, NotifyCitizen)[0]
    assert notice.params["follow_ups"] == [{"kind": "objection", "until": "2026-04-28"}]


# Status view ----------------------------------------------------------------------------------


def test_status_view_of_an_open_case() -> None:
    definition = journey("huurtoeslag")
    state = advanced_through(definition, ["received", "assessment"])
    view = status_view(definition, state, date(2026, 1, 20))
    assert (view.stage_index, view.stage_count) == (2, 3)
    assert [(s.id, s.state) for s in view.stages] == [
        ("received", "done"),
        ("assessment", "current"),
        ("decision", "upcoming"),
    ]
    assert view.stages[1].name == "Gegevens controleren"
    assert view.turn == "government"
    assert view.now == definition.stage("assessment").now.nl
    assert view.next == definition.stage("assessment").next.nl
    assert view.expected_completion == date(2026, 3, 2)
    assert view.overdue is False
    assert view.result is None
    assert view.follow_ups == []

    english = status_view(definition, state, date(2026, 1, 20), lang="en")
    assert english.stages[1].name == "Checking your details"
    assert english.now == definition.stage("assessment").now.en


def test_status_view_while_waiting_for_the_citizen() -> None:
    definition = journey("dakkapel")
    state = advanced_through(definition, ["received", "design-review"])
    state = apply(
        definition, state, RequestInformation(on=date(2026, 1, 12), what="een zijaanzicht")
    ).state
    view = status_view(definition, state, date(2026, 1, 14))
    assert view.status == "waiting_for_citizen"
    assert view.turn == "citizen"
    assert view.citizen_deadline == date(2026, 2, 9)
    assert view.now == "We wachten op informatie van u: een zijaanzicht"
    assert "9 februari 2026" in view.next
    assert "9 February 2026" in status_view(definition, state, date(2026, 1, 14), lang="en").next
    assert view.expected_completion == date(2026, 3, 2) + timedelta(days=2)


def test_status_view_of_a_decided_case_shows_result_and_follow_ups() -> None:
    definition = journey("kvk-inschrijving")
    state = advanced_through(definition, ["received", "identification", "registration"])
    state = apply(definition, state, Decide(on=date(2026, 1, 20), result="registered")).state
    view = status_view(definition, state, date(2026, 2, 1))
    assert view.status == "closed"
    assert (view.stage_index, view.stage_count) == (3, 3)
    assert all(s.state == "done" for s in view.stages)
    assert view.turn is None
    assert view.expected_completion is None
    assert view.overdue is False
    assert view.result == "registered"
    assert view.result_text == definition.result("registered").text.nl
    assert view.now == view.result_text
    assert [(f.kind, f.until) for f in view.follow_ups] == [("vat_number", date(2026, 2, 3))]
    assert view.follow_ups[0].text.startswith("De Belastingdienst")


def test_objection_period_until_date_moves_off_kings_day() -> None:
    definition = journey("dakkapel")
    state = advanced_through(definition, ["received", "design-review", "assessment"])
    state = apply(definition, state, Decide(on=date(2026, 3, 16), result="rejected")).state
    view = status_view(definition, state, date(2026, 3, 16), lang="en")
    assert [(f.kind, f.until) for f in view.follow_ups] == [("objection", date(2026, 4, 28))]
    assert (
        view.follow_ups[0].text == "Do you disagree with the decision? Then object within 6 weeks."
    )


def test_status_view_of_a_withdrawn_case() -> None:
    definition = journey("schuldhulp")
    state = advanced_through(definition, ["first-conversation", "documents"])
    state = apply(definition, state, Withdraw(on=date(2026, 1, 20), reason="zelf opgelost")).state
    view = status_view(definition, state, date(2026, 1, 21))
    assert view.result == "withdrawn"
    assert (view.stage_index, view.stage_count) == (2, 4)
    assert [s.state for s in view.stages] == ["done", "done", "upcoming", "upcoming"]
    assert view.follow_ups == []


# Parsing actions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        Start(on=MONDAY),
        Advance(on=MONDAY, to="assessment"),
        RequestInformation(on=MONDAY, what="loonstrook", deadline=date(2026, 1, 19)),
        RequestInformation(on=MONDAY, what="loonstrook"),
        ProvideInformation(on=MONDAY, note="zie bijlage"),
        DeadlinePassed(on=MONDAY),
        Suspend(on=MONDAY, reason="rechtszaak"),
        Resume(on=MONDAY),
        Extend(on=MONDAY, reason="advies", days=14, unit="calendar"),
        Decide(on=MONDAY, result="granted", note="akkoord"),
        Withdraw(on=MONDAY),
    ],
)
def test_parse_action_round_trips_json(action: Action) -> None:
    parsed = parse_action(action.model_dump(mode="json"))
    assert type(parsed) is type(action)
    assert parsed == action


def test_parse_action_refuses_unknown_kinds_and_missing_fields() -> None:
    assert parse_action({"kind": "advance", "on": "2026-01-05", "to": "x"}) == Advance(
        on=MONDAY, to="x"
    )
    with pytest.raises(ValidationError):
        parse_action({"kind": "approve", "on": "2026-01-05"})
    with pytest.raises(ValidationError):
        parse_action({"kind": "advance", "on": "2026-01-05"})


def test_case_state_survives_a_json_round_trip() -> None:
    definition = journey("dakkapel")
    state = run(
        definition,
        Start(on=MONDAY),
        Extend(on=MONDAY, reason="advies", days=14, unit="calendar"),
        Suspend(on=date(2026, 1, 7), reason="bezwaar buren"),
    ).state
    assert CaseState.model_validate(state.model_dump(mode="json")) == state
