"""The charts' geometry: journeys in their quadrant and sized by their cases, bars on one
scale, every series with a pattern and a legend entry."""

from __future__ import annotations

import datetime as dt

from hub.insights.charts import bar_chart, channel_mix_chart, label_lines, quadrant_chart
from hub.insights.schemas import ChannelWeek, JourneyFigures


def journey(name: str, context: str, done_by: str, cases: int) -> JourneyFigures:
    return JourneyFigures(
        journey=name,
        title=name,
        context="right",
        citizen_context=context,
        done_by=done_by,
        service_norm_days=5,
        service_norm_unit="working",
        cases_opened=cases,
        open_now=0,
        stages_now=[],
        slowest_stage=None,
        closed=0,
        closed_within_norm=0,
        mean_lead_days=None,
        contacts=0,
        contacts_per_case=None,
        channel_switches=0,
        switches_per_case=None,
        first_contact_resolved=0,
        first_contact_resolution=None,
    )


def test_each_journey_sits_in_its_quadrant_sized_by_its_cases() -> None:
    chart = quadrant_chart(
        [
            journey("a", "standard", "government", 100),
            journey("b", "standard", "government", 25),
            journey("c", "specific", "citizen", 0),
        ],
        {"a": "Journey A"},
    )

    a, b, c = chart.bubbles
    assert a.title == "Journey A" and b.title == "b"
    for bubble in (a, b):  # top left: standard, by the government
        assert chart.left < bubble.x < chart.middle_x and chart.top < bubble.y < chart.middle_y
    assert a.y == b.y and a.x < b.x  # side by side
    assert chart.middle_x < c.x < chart.right and chart.middle_y < c.y < chart.bottom
    assert a.r > b.r > c.r  # area grows with the cases; none still shows as a small circle
    assert c.r > 0


def test_bars_share_one_scale_and_stack_their_series() -> None:
    chart = bar_chart([("one", {"x": 10, "y": 30}), ("two", {"x": 20})], ["x", "y"])

    one, two = chart.bars
    assert (one.total, two.total) == (40, 20)
    assert [s.series for s in one.segments] == ["x", "y"]
    assert one.segments[1].x == one.segments[0].x + one.segments[0].width
    assert abs(one.segments[0].width * 2 - two.segments[0].width) < 0.2
    assert [(e.series, e.pattern) for e in chart.legend] == [("x", "solid"), ("y", "stripes")]


def test_the_channel_mix_has_a_bar_for_every_week_even_an_empty_one() -> None:
    weeks = [dt.date(2026, 3, 2), dt.date(2026, 3, 9)]
    mix = [ChannelWeek(week=weeks[0], channel="sms", messages=2)]
    mix.append(ChannelWeek(week=weeks[0], channel="webchat", messages=1))

    chart = channel_mix_chart(weeks, mix, {w: w.isoformat() for w in weeks})

    assert [(b.label, b.total) for b in chart.bars] == [("2026-03-02", 3), ("2026-03-09", 0)]
    assert [e.series for e in chart.legend] == ["webchat", "sms"]  # the channels' own order


def test_long_titles_break_into_two_lines_at_most() -> None:
    assert label_lines("Question") == ["Question"]
    assert label_lines("Moving your parking permit after a change of address") == [
        "Moving your parking",
        "permit after a change…",
    ]
