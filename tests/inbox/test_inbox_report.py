"""The report with pictures: the charts carry the ledger's figures exactly (per day, by rule, by kind), on the
inbox's page in a real Chromium and in the file `handoff report --html` writes.

A screenshot of the page, at a phone's size, is written under the artifacts' `inbox/` folder as `report.png`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from playwright.async_api import BrowserContext, expect
from sqlalchemy import Engine
from sqlmodel import Session, select

from examples.restaurant import app as restaurant
from handoff.activities.ledger.report_series import build_series
from handoff.activities.ledger.tables import CaseRow, DecisionRow, RunRow, ViolationRow
from handoff.schemas.cases import ExceptionCase
from handoff.schemas.runs import Stage
from handoff.workers.inbox.charts import Bar, bar_chart
from handoff.workers.inbox.report_page import standalone_report
from handoff.workers.testkit import HandoffKit
from tests.api.checks import ledger_reaches
from tests.inbox.conftest import screenshot, sign_in
from tests.runtime import payloads
from tests.workers.cli_runner import handoff

NOW = datetime.now(UTC).replace(microsecond=0)
TWO_DAYS_AGO, YESTERDAY = NOW - timedelta(days=2), NOW - timedelta(days=1)
PARTY = "reservation.party_size <= 12"
DEPOSIT = "deposit for large parties"

Figures = dict[str, dict[str, str]]
"""A handoff's charts as read back from the markup: chart name -> {date or label: data-value}, plus `baseline` and
`target` under `<chart>:declared`."""


def add_run(session: Session, key: str, stage: str, received_at: datetime, delivered_after: float | None) -> str:
    workflow_id = f"reservation-to-pos/{key}"
    finished = received_at + timedelta(seconds=delivered_after) if delivered_after is not None else None
    session.add(
        RunRow(
            workflow_id=workflow_id,
            handoff="reservation-to-pos",
            event="reservation.confirmed",
            dedupe_key=key,
            contract_version=1,
            contract_hash="hash",
            stage=stage,
            payload={},
            received_at=received_at,
            updated_at=finished or received_at,
            finished_at=finished,
        )
    )
    return workflow_id


def add_case(
    session: Session, workflow_id: str, case_id: str, opened_at: datetime, rules: list[str], decided: tuple[str, bool]
) -> None:
    """A case breaking `rules`, decided (kind, by the contract at its SLA?)."""
    kind, by_timeout = decided
    session.add(
        CaseRow(
            id=case_id,
            workflow_id=workflow_id,
            handoff="reservation-to-pos",
            owner_group="front-of-house",
            status="decided",
            opened_at=opened_at,
            sla_deadline=opened_at + timedelta(hours=1),
            decided_at=opened_at + timedelta(seconds=5),
            decision=kind,
            allowed=["approve", "reject", "correct"],
            payload={},
        )
    )
    session.flush()
    for position, rule in enumerate(rules):
        session.add(ViolationRow(case_id=case_id, position=position, rule=rule, kind="max", field="f", reason="r"))
    session.add(
        DecisionRow(
            case_id=case_id,
            workflow_id=workflow_id,
            handoff="reservation-to-pos",
            decision=kind,
            operator="contract" if by_timeout else "hana",
            group=None if by_timeout else "front-of-house",
            reason="test",
            decided_at=opened_at + timedelta(seconds=5),
            by_timeout=by_timeout,
        )
    )


def known_ledger(ledger: Engine) -> None:
    """Two days ago: three runs (10 s and 30 s delivered, one rejected), two with cases; yesterday: one run of 50 s;
    and a run with a case from before the window, which no chart may count."""
    with Session(ledger) as session:
        add_run(session, "R1", "delivered", TWO_DAYS_AGO, 10)
        r2 = add_run(session, "R2", "delivered", TWO_DAYS_AGO, 30)
        add_case(session, r2, "C-R2", TWO_DAYS_AGO, [PARTY, DEPOSIT], ("correct", False))
        r3 = add_run(session, "R3", "rejected", TWO_DAYS_AGO, None)
        add_case(session, r3, "C-R3", TWO_DAYS_AGO, [PARTY], ("reject", True))
        add_run(session, "R4", "delivered", YESTERDAY, 50)
        old = add_run(session, "R0", "rejected", NOW - timedelta(days=45), None)
        add_case(session, old, "C-R0", NOW - timedelta(days=45), ["an old rule"], ("approve", False))
        session.commit()


def read_figures(html: str, handoff_name: str) -> Figures:
    """The data attributes of every chart in the handoff's section of a report page."""
    section = re.search(rf'<section[^>]*data-handoff="{re.escape(handoff_name)}".*?</section>', html, re.DOTALL)
    assert section is not None, f"no section for {handoff_name}"
    figures: Figures = {}
    for markup in re.findall(r"<svg.*?</svg>", section.group(0), re.DOTALL):
        svg = ET.fromstring(markup)
        name = svg.attrib["data-chart"]
        figures[name] = {
            element.attrib.get("data-date") or element.attrib["data-label"]: element.attrib["data-value"]
            for element in svg.iter()
            if "data-value" in element.attrib
        }
        figures[f"{name}:declared"] = {
            k: svg.attrib[f"data-{k}"] for k in ("baseline", "target") if f"data-{k}" in svg.attrib
        }
    return figures


EXPECTED: Figures = {
    "exception_rate": {TWO_DAYS_AGO.date().isoformat(): "66.6667", YESTERDAY.date().isoformat(): "0"},
    "exception_rate:declared": {},
    "cycle_time": {TWO_DAYS_AGO.date().isoformat(): "10", YESTERDAY.date().isoformat(): "50"},
    "cycle_time:declared": {"baseline": "1800", "target": "60"},
    "cases_by_rule": {PARTY: "2", DEPOSIT: "1"},
    "cases_by_rule:declared": {},
    "decisions_by_kind": {"correct": "1", "reject": "1"},
    "decisions_by_kind:declared": {},
}
"""What the known ledger's reservation-to-pos charts must carry; reservation-to-pos's gain is a cycle time of
1800 s before, 60 s as the target."""


def test_the_charts_carry_the_ledgers_figures_per_day_by_rule_and_by_kind(ledger: Engine) -> None:
    """Exception rate and cycle time p50 per day, cases by rule and decisions by kind, exactly as the ledger has
    them; nothing from before the window; every day of the window a point on the axis, figures only where runs
    were."""
    known_ledger(ledger)

    series = build_series(ledger, restaurant.catalog.contracts, since=NOW - timedelta(days=30), now=NOW)
    page = standalone_report(series, "30d")

    pos = next(line for line in series.handoffs if line.handoff == "reservation-to-pos")
    assert (31, 4) == (len(pos.points), pos.runs)
    assert (date.fromordinal(NOW.date().toordinal() - 30), NOW.date()) == (pos.points[0].start, pos.points[-1].start)
    assert EXPECTED == read_figures(page, "reservation-to-pos")
    assert ("met", 30.0) == ((pos.gain.verdict.value, pos.gain.actual) if pos.gain else None)  # p50 of 10, 30, 50


def test_a_rule_that_looks_like_markup_is_shown_as_text_and_read_back_exactly() -> None:
    """A label is escaped everywhere it appears, so the chart is still one well-formed SVG that says it as written."""
    label = '<script>alert("x")</script> & a > b'

    svg = ET.fromstring(str(bar_chart("cases by rule", [Bar(label, 3)], name="cases_by_rule")))

    bar = next(element for element in svg.iter() if "data-value" in element.attrib)
    assert (label, "3") == (bar.attrib["data-label"], bar.attrib["data-value"])
    assert f"{label}: 3" == bar.findtext("title")
    assert "script" not in {element.tag for element in svg.iter()}


async def test_handoff_report_html_writes_a_standalone_page_with_the_same_figures(
    ledger: Engine, ledger_url: str, tmp_path: Path
) -> None:
    """`handoff report --html FILE` writes one file, its stylesheet inlined and no script, whose charts carry the
    same figures; a window it cannot read is a usage error that writes nothing."""
    known_ledger(ledger)
    target = tmp_path / "report.html"
    env = {
        "HANDOFF_APP": "examples.restaurant:app",
        "HANDOFF_DATABASE_URL": ledger_url,
        "HANDOFF_HOME": str(tmp_path / "home"),
        "HANDOFF_LOG_LEVEL": "WARNING",
    }

    written = await handoff(env, "report", "--html", str(target), "--since", "30d")
    refused = await handoff(env, "report", "--html", str(tmp_path / "never.html"), "--since", "30")

    assert 0 == written.exit_code, written.output
    page = target.read_text(encoding="utf-8")
    assert EXPECTED == read_figures(page, "reservation-to-pos")
    inlined = re.search(r"<style>(.*?)</style>", page, re.DOTALL)
    assert (True, False, False) == (
        inlined is not None and ".chart .series" in inlined.group(1),
        "<script" in page,
        'rel="stylesheet"' in page,
    )
    assert (2, False) == (refused.exit_code, (tmp_path / "never.html").exists())


async def test_a_viewer_opens_the_report_and_sees_the_runs_in_its_charts(
    phone: BrowserContext,
    inbox_url: str,
    handoffs: HandoffKit,
    tokens: dict[str, str],
    reservation_case: ExceptionCase,
) -> None:
    """After one delivered run and one with a case today, a viewer follows "Report" from the inbox: today's
    exception rate is 50 %, today's cycle time is the delivered run's, and the case's rules are counted once each."""
    accepted = await handoffs.send("reservation.confirmed", payloads.reservation())
    await ledger_reaches(handoffs, accepted.workflow_id, Stage.DELIVERED)
    with Session(handoffs.ledger) as session:
        run = session.get(RunRow, accepted.workflow_id)
        rules = session.exec(select(ViolationRow.rule).where(ViolationRow.case_id == reservation_case.id)).all()
    assert run is not None and run.finished_at is not None
    today = run.received_at.date().isoformat()

    page = await phone.new_page()
    await sign_in(page, inbox_url, tokens["vera"])
    await page.get_by_role("link", name="Report").click()
    await expect(page.get_by_role("heading", name="Report", exact=True)).to_be_visible()
    section = page.locator('section[data-handoff="reservation-to-pos"]')
    await expect(section.locator('svg[data-chart="exception_rate"]')).to_be_visible()
    rate = section.locator(f'svg[data-chart="exception_rate"] circle[data-date="{today}"]')
    await expect(rate).to_have_attribute("data-value", "50")
    await expect(section.locator('svg[data-chart="cycle_time"]')).to_have_attribute("data-target", "60")
    await expect(section.locator(f'svg[data-chart="cycle_time"] circle[data-date="{today}"]')).to_have_count(1)
    bars = section.locator('svg[data-chart="cases_by_rule"] g.bar')
    labels = {await bar.get_attribute("data-label"): await bar.get_attribute("data-value") for bar in await bars.all()}
    await page.screenshot(path=screenshot("report.png"), full_page=True)

    assert {rule: "1" for rule in rules} == labels
    assert rules, "the case broke at least one rule"
