"""The report with pictures: each handoff's exception rate and cycle time over a window, against the baseline and
target its contract declares, and its cases by rule and decisions by kind, as charts drawn on the server (`charts`).

`/inbox/report` shows it to anyone signed in (`?since=90d` for another window); `handoff report --html FILE` writes
the same page as one standalone file, its stylesheet inlined, to mail or archive (`standalone_report`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from jinja2 import Template
from markupsafe import Markup

from handoff.activities.ledger.report_series import build_series
from handoff.schemas.contract import Measure
from handoff.schemas.report_series import HandoffSeries, ReportSeries
from handoff.workers.api.context import Ready, api_context
from handoff.workers.inbox.charts import Bar, Point, bar_chart, line_chart, percent_text, seconds_text
from handoff.workers.inbox.web import (
    STATIC_DIRECTORY,
    current_visitor,
    message_page,
    page,
    templates,
    to_sign_in,
)
from handoff.workers.links import INBOX_PATH
from handoff.workers.settings import parse_span

router = APIRouter(prefix=INBOX_PATH)

Context = Annotated[Ready, Depends(api_context)]

DEFAULT_SINCE = "30d"

_STANDALONE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} · Handoff</title>
<style>{{ css }}</style>
</head>
<body>
<main>
{% block main %}{% endblock %}
</main>
</body>
</html>
"""
"""The page `report.html` extends in a file of its own: the inbox's look, inlined, without its navigation."""


@dataclass(frozen=True)
class HandoffCharts:
    """One handoff's figures and its four charts, as the template shows them."""

    series: HandoffSeries
    exception_rate: Markup
    cycle_time: Markup
    cases_by_rule: Markup
    decisions_by_kind: Markup


def charts_of(series: HandoffSeries) -> HandoffCharts:
    """The charts of one handoff: each line with the gain's baseline and target when the gain is measured by it."""
    lines = {}
    for measure, unit, title, figure in (
        (Measure.EXCEPTION_RATE, percent_text, "Exception rate", "exception_rate_pct"),
        (Measure.CYCLE_TIME, seconds_text, "Cycle time (p50)", "cycle_time_p50"),
    ):
        gain = series.gain_on(measure)
        lines[measure] = line_chart(
            f"{series.handoff}: {title}",
            [Point(point.start, getattr(point, figure)) for point in series.points],
            unit=unit,
            baseline=gain.baseline if gain else None,
            target=gain.target if gain else None,
            name=f"{measure.value}",
        )
    return HandoffCharts(
        series=series,
        exception_rate=lines[Measure.EXCEPTION_RATE],
        cycle_time=lines[Measure.CYCLE_TIME],
        cases_by_rule=bar_chart(
            f"{series.handoff}: cases by rule",
            [Bar(count.rule, count.cases) for count in series.cases_by_rule],
            name="cases_by_rule",
        ),
        decisions_by_kind=bar_chart(
            f"{series.handoff}: decisions by kind",
            [
                Bar(
                    count.kind,
                    count.decisions,
                    f"{count.by_timeout} by the contract at its SLA" * bool(count.by_timeout),
                )
                for count in series.decisions_by_kind
            ],
            name="decisions_by_kind",
        ),
    )


def figure(value: float | None, measure: Measure) -> str:
    """A gain's figure as a person reads it, in the unit its measure is counted in."""
    if value is None:
        return "-"
    if measure is Measure.CYCLE_TIME:
        return seconds_text(value)
    if measure is Measure.EXCEPTION_RATE:
        return percent_text(value)
    return f"{value:g}"


def _values(series: ReportSeries, since: str) -> dict[str, Any]:
    return {
        "report": series,
        "since_text": since,
        "charts": [charts_of(handoff) for handoff in series.handoffs],
        "seconds": seconds_text,
        "percent": percent_text,
        "figure": figure,
    }


def standalone_report(series: ReportSeries, since: str) -> str:
    """The report page as one HTML file: the same template and charts, the stylesheet inlined, no links out."""
    layout: Template = templates.env.from_string(_STANDALONE)
    css = (STATIC_DIRECTORY / "inbox.css").read_text(encoding="utf-8")
    return templates.env.get_template("report.html").render(
        layout=layout, css=Markup(css), visitor=None, **_values(series, since)
    )


@router.get("/report")
async def report_page(request: Request, context: Context) -> Response:
    """The report over `?since=` (default 30d), for anyone signed in."""
    visitor = await current_visitor(request, context)
    if visitor is None:
        return to_sign_in(request)
    since = request.query_params.get("since") or DEFAULT_SINCE
    now = datetime.now(UTC)
    try:
        start = now - parse_span(since)
    except (ValueError, OverflowError) as error:
        detail = str(error) if isinstance(error, ValueError) else f"{since!r} reaches back further than a date can"
        return message_page(request, 400, "No such window", detail + ".", visitor)

    series = await asyncio.to_thread(build_series, context.ledger, context.app.catalog.contracts, since=start, now=now)
    return page(request, "report.html", {"visitor": visitor, "layout": "base.html", **_values(series, since)})
