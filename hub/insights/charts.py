"""Charts of the insights report as geometry for SVG drawn on the server: the journey
catalogue on the report's two axes, and horizontal bars (plain, or stacked per channel).

Nothing here draws: the functions place circles, bars and labels, and the page's template
writes them as SVG. A series is told apart by a fill pattern and a label, never by colour
alone.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from hub.insights.schemas import ChannelWeek, JourneyFigures

# Fill patterns the template defines, one per series, in this order.
PATTERNS = ("solid", "stripes", "dots", "cross", "light", "vertical", "horizontal")
CHANNEL_ORDER = ("webchat", "email", "sms", "counter", "letter", "portal", "api")

QUADRANT_WIDTH = 720
QUADRANT_HEIGHT = 520
QUADRANT_MARGIN = 40
MIN_RADIUS = 5.0
MAX_RADIUS = 38.0

BAR_WIDTH = 720
BAR_LABEL = 340
LABEL_LINE = 24
WEEK_LABEL = 190
BAR_HEIGHT = 22
BAR_GAP = 8


@dataclass(frozen=True)
class Bubble:
    journey: str
    title: str
    cases: int
    x: float
    y: float
    r: float
    label_y: float
    # The title in lines short enough to stay clear of a neighbour's (at most two).
    lines: list[str]


def label_lines(title: str, width: int = LABEL_LINE) -> list[str]:
    """``title`` broken between words into lines of at most ``width`` characters; what does
    not fit on two lines is cut off after a word, with an ellipsis."""
    lines: list[str] = []
    for word in title.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > 2:
        rest = " ".join(lines[1:])[:width]
        lines = [lines[0], rest.rsplit(" ", 1)[0] + "…"]
    return lines


@dataclass(frozen=True)
class QuadrantChart:
    width: int
    height: int
    left: float
    top: float
    middle_x: float
    middle_y: float
    right: float
    bottom: float
    bubbles: list[Bubble]


def quadrant_chart(figures: Sequence[JourneyFigures], titles: dict[str, str]) -> QuadrantChart:
    """Each journey in its quadrant — standard ↔ specific from left to right, work done by
    the government (top) ↔ by the citizen (bottom) — as a circle whose area grows with its
    number of cases; journeys sharing a quadrant sit side by side in a grid."""
    left, top = QUADRANT_MARGIN * 1.5, QUADRANT_MARGIN
    right, bottom = QUADRANT_WIDTH - QUADRANT_MARGIN * 0.5, QUADRANT_HEIGHT - QUADRANT_MARGIN
    middle_x, middle_y = (left + right) / 2, (top + bottom) / 2
    largest = max((f.cases_opened for f in figures), default=0)
    bubbles = []
    for column, context in enumerate(("standard", "specific")):
        for row, actor in enumerate(("government", "citizen")):
            members = [f for f in figures if f.citizen_context == context and f.done_by == actor]
            if not members:
                continue
            x0 = left if column == 0 else middle_x
            y0 = top if row == 0 else middle_y
            columns = math.ceil(math.sqrt(len(members)))
            rows = math.ceil(len(members) / columns)
            cell_w, cell_h = (middle_x - left) / columns, (middle_y - top) / rows
            for index, member in enumerate(members):
                x = x0 + cell_w * (index % columns + 0.5)
                y = y0 + cell_h * (index // columns + 0.42)
                share = math.sqrt(member.cases_opened / largest) if largest else 0.0
                r = MIN_RADIUS + (min(MAX_RADIUS, cell_h * 0.3) - MIN_RADIUS) * share
                bubbles.append(
                    Bubble(
                        journey=member.journey,
                        title=titles.get(member.journey, member.journey),
                        cases=member.cases_opened,
                        x=round(x, 1),
                        y=round(y, 1),
                        r=round(r, 1),
                        label_y=round(y + r + 14, 1),
                        lines=label_lines(titles.get(member.journey, member.journey)),
                    )
                )
    return QuadrantChart(
        width=QUADRANT_WIDTH,
        height=QUADRANT_HEIGHT,
        left=left,
        top=top,
        middle_x=middle_x,
        middle_y=middle_y,
        right=right,
        bottom=bottom,
        bubbles=bubbles,
    )


@dataclass(frozen=True)
class Segment:
    series: str
    pattern: str
    value: int
    x: float
    width: float


@dataclass(frozen=True)
class Bar:
    label: str
    total: int
    y: float
    segments: list[Segment]


@dataclass(frozen=True)
class LegendEntry:
    series: str
    pattern: str
    x: int
    y: int


LEGEND_COLUMNS = 4
LEGEND_ROW = 28


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]
    # The legend, empty for a chart of one series: its entries, four to a row.
    legend: list[LegendEntry]
    legend_height: int


def bar_chart(
    rows: Sequence[tuple[str, dict[str, int]]],
    series: Sequence[str],
    label_width: int = BAR_LABEL,
) -> BarChart:
    """Horizontal bars, one per (label, values per series), the series stacked left to right
    in the order given; bars share one scale, the longest filling the width."""
    patterns = {name: PATTERNS[i % len(PATTERNS)] for i, name in enumerate(series)}
    largest = max((sum(values.values()) for _, values in rows), default=0)
    room = BAR_WIDTH - label_width - 50
    bars = []
    for index, (label, values) in enumerate(rows):
        x = float(label_width)
        segments = []
        for name in series:
            value = values.get(name, 0)
            if not value:
                continue
            width = room * value / largest
            segments.append(
                Segment(
                    series=name,
                    pattern=patterns[name],
                    value=value,
                    x=round(x, 1),
                    width=round(width, 1),
                )
            )
            x += width
        bars.append(
            Bar(
                label=label,
                total=sum(values.values()),
                y=index * (BAR_HEIGHT + BAR_GAP),
                segments=segments,
            )
        )
    legend = [
        LegendEntry(
            series=name,
            pattern=patterns[name],
            x=(index % LEGEND_COLUMNS) * (BAR_WIDTH // LEGEND_COLUMNS),
            y=(index // LEGEND_COLUMNS) * LEGEND_ROW + 4,
        )
        for index, name in enumerate(series)
        if len(series) > 1
    ]
    return BarChart(
        width=BAR_WIDTH,
        height=max(1, len(rows)) * (BAR_HEIGHT + BAR_GAP),
        label_width=label_width,
        bar_height=BAR_HEIGHT,
        bars=bars,
        legend=legend,
        legend_height=LEGEND_ROW * math.ceil(len(legend) / LEGEND_COLUMNS) + (6 if legend else 0),
    )


def channel_mix_chart(
    weeks: Sequence[dt.date], mix: Sequence[ChannelWeek], week_label: dict[dt.date, str]
) -> BarChart:
    """A bar per week, the citizens' messages stacked per channel."""
    channels = sorted(
        {row.channel for row in mix},
        key=lambda c: (CHANNEL_ORDER.index(c) if c in CHANNEL_ORDER else 99, c),
    )
    per_week: dict[dt.date, dict[str, int]] = {week: {} for week in weeks}
    for row in mix:
        per_week.setdefault(row.week, {})[row.channel] = row.messages
    rows = [(week_label[week], per_week[week]) for week in weeks]
    return bar_chart(rows, channels, label_width=WEEK_LABEL)
