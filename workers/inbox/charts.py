"""Charts as inline SVG, drawn on the server: a line over time with the declared baseline and target, and bars.

No script draws them and none reads them: every figure is in the markup, as text a screen reader says (the chart's
`<title>` and `aria-label`, each point's and bar's `<title>`) and as data attributes (`data-value`, `data-date`,
`data-label`, `data-baseline`, `data-target`) that a test or a scraper reads back exactly. Every text is escaped.
Colours come from classes (the inbox's stylesheet), since its Content-Security-Policy allows no inline style.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from markupsafe import Markup

WIDTH = 480
LINE_HEIGHT = 200
BAR_ROW = 30
LEFT, RIGHT, TOP, BOTTOM = 60, 12, 20, 30
"""Margins of a line chart's plot area, in SVG units: room for the axis labels."""


@dataclass(frozen=True)
class Point:
    """One figure of a series: None where there was nothing to measure (the line breaks there)."""

    day: date
    value: float | None


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str = ""
    """Said after the value in the bar's title, e.g. '2 by the contract at its SLA'."""


def number(value: float) -> str:
    """A figure as a data attribute holds it: integers without '.0', others as Python writes them (exact)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _attribute(value: object) -> str:
    return escape(str(value), quote=True)


def line_chart(
    title: str,
    points: Sequence[Point],
    *,
    unit: Callable[[float], str],
    baseline: float | None = None,
    target: float | None = None,
    name: str = "",
) -> Markup:
    """A line of `points` in time order, with horizontal lines at the declared `baseline` and `target`.

    Args:
        unit: how a figure reads to a person ('12 %', '3 min'), in titles and axis labels.
        name: the chart's `data-chart`, for finding it on a page.
    """
    plot_width, plot_height = WIDTH - LEFT - RIGHT, LINE_HEIGHT - TOP - BOTTOM
    measured = [point.value for point in points if point.value is not None]
    top = max([*measured, *(v for v in (baseline, target) if v is not None), 0.0]) * 1.1 or 1.0

    def x(index: int) -> float:
        return LEFT + (plot_width * index / (len(points) - 1) if len(points) > 1 else plot_width / 2)

    def y(value: float) -> float:
        return TOP + plot_height * (1 - value / top)

    said = ", ".join(f"{point.day.isoformat()}: {unit(point.value)}" for point in points if point.value is not None)
    declared = "".join(
        f"; {word} {unit(value)}" for word, value in (("baseline", baseline), ("target", target)) if value is not None
    )
    label = f"{title}. {said or 'No figures in this window'}{declared}."
    parts = [
        f'<svg class="chart line-chart" viewBox="0 0 {WIDTH} {LINE_HEIGHT}" role="img" '
        f'aria-label="{_attribute(label)}" data-chart="{_attribute(name)}"'
        + (f' data-baseline="{number(baseline)}"' if baseline is not None else "")
        + (f' data-target="{number(target)}"' if target is not None else "")
        + ">",
        f"<title>{escape(label)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_height}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_height}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 5}" text-anchor="end">{escape(unit(top))}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + plot_height}" text-anchor="end">0</text>',
    ]
    if points:
        for index in sorted({0, len(points) - 1}):
            anchor = "start" if index == 0 and len(points) > 1 else "end" if index else "middle"
            parts.append(
                f'<text class="tick" x="{x(index):.1f}" y="{LINE_HEIGHT - 8}" text-anchor="{anchor}">'
                f"{escape(points[index].day.isoformat())}</text>"
            )
    for kind, value in (("baseline", baseline), ("target", target)):
        if value is not None:
            parts.append(
                f'<g class="{kind}" data-{kind}="{number(value)}"><title>{kind}: {escape(unit(value))}</title>'
                f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{WIDTH - RIGHT}" y2="{y(value):.1f}"/>'
                f'<text x="{WIDTH - RIGHT}" y="{y(value) - 4:.1f}" text-anchor="end">{kind} {escape(unit(value))}'
                "</text></g>"
            )
    for run in _runs(points):
        path = " ".join(f"{x(index):.1f},{y(value):.1f}" for index, value in run)
        parts.append(f'<polyline class="series" points="{path}"/>')
    for index, point in enumerate(points):
        if point.value is None:
            continue
        parts.append(
            f'<circle class="point" cx="{x(index):.1f}" cy="{y(point.value):.1f}" r="4" '
            f'data-date="{point.day.isoformat()}" data-value="{number(point.value)}">'
            f"<title>{point.day.isoformat()}: {escape(unit(point.value))}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _runs(points: Sequence[Point]) -> list[list[tuple[int, float]]]:
    """The stretches of consecutive measured points: the line is not drawn across a day without a figure."""
    runs: list[list[tuple[int, float]]] = [[]]
    for index, point in enumerate(points):
        if point.value is None:
            runs.append([])
        else:
            runs[-1].append((index, point.value))
    return [run for run in runs if run]


def bar_chart(title: str, bars: Sequence[Bar], *, name: str = "") -> Markup:
    """Horizontal bars, one a row, in the order given, each labelled with its name and value."""
    label_width, value_width = 190, 40
    plot_width = WIDTH - label_width - value_width
    most = max((bar.value for bar in bars), default=0) or 1
    height = max(len(bars), 1) * BAR_ROW + 8
    said = ", ".join(f"{bar.label}: {number(bar.value)}" for bar in bars) or "none in this window"
    label = f"{title}. {said}."
    parts = [
        f'<svg class="chart bar-chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{_attribute(label)}" '
        f'data-chart="{_attribute(name)}">',
        f"<title>{escape(label)}</title>",
    ]
    for row, bar in enumerate(bars):
        top = 4 + row * BAR_ROW
        width = plot_width * bar.value / most
        note = f" ({bar.note})" if bar.note else ""
        parts.append(
            f'<g class="bar" data-label="{_attribute(bar.label)}" data-value="{number(bar.value)}">'
            f"<title>{escape(bar.label)}: {number(bar.value)}{escape(note)}</title>"
            f'<text class="bar-label" x="{label_width - 8}" y="{top + 20}" text-anchor="end">'
            f"{escape(_shortened(bar.label))}</text>"
            f'<rect x="{label_width}" y="{top + 4}" width="{width:.1f}" height="{BAR_ROW - 8}" rx="3"/>'
            f'<text class="bar-value" x="{label_width + width + 6:.1f}" y="{top + 20}">{number(bar.value)}</text></g>'
        )
    if not bars:
        parts.append(f'<text class="empty" x="8" y="20">{escape("None in this window.")}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _shortened(text: str, most: int = 22) -> str:
    """A label that fits beside its bar; the whole of it is in the bar's title."""
    return text if len(text) <= most else text[: most - 1] + "…"


def seconds_text(seconds: float) -> str:
    """A duration as a person reads it on a chart: '45 s', '12 min', '1.5 h', '2.3 d'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def percent_text(value: float) -> str:
    """A rate: '12.5 %'."""
    return f"{value:.1f} %".replace(".0 %", " %")
