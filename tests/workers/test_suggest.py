"""`handoff suggest`, on SQLite and PostgreSQL: a ledger with known patterns gives the expected rule changes, each
with its evidence and the backtest's figures; a rule rarely overridden gives none; the command's text and JSON.

The ledger holds 42 runs of booking-to-pos received in the window, judged by its v3 as the workflow would have: 20
clean; 10 parties over 12, of which 9 (parties of 13 and 14) approved and one of 30 rejected; 6 bookings by e-mail,
only one approved; 6 tables named "Patio", 5 approved. One party of 40, approved, is older than the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session

from handoff.activities.ledger.backtest import recorded_runs
from handoff.activities.ledger.diagnosis import read_cases
from handoff.activities.ledger.tables import CaseRow, DecisionRow, RunRow, ViolationRow
from handoff.schemas.contract import HandoffContract, Trigger
from handoff.schemas.diagnosis import Thresholds
from handoff.schemas.rules import Max, MaxLength, Min, OneOf, Pattern
from handoff.schemas.suggestions import HandoffSuggestions, SuggestionReport
from handoff.workers.app import Handoffs
from handoff.workers.suggest import propose, python, suggest
from handoff.workflows.validation import evaluate
from tests.workers.cli_runner import handoff

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
MAX_12 = "reservation.party_size <= 12"
CHANNELS = "reservation.channel in {web, phone}"
TABLES = r"reservation.table matches /T\d+/"


class Reservation(BaseModel):
    id: str
    party_size: int | None = None
    channel: str | None = None
    table: str | None = None


class Booked(BaseModel):
    reservation: Reservation


class Order(BaseModel):
    id: str


class Placed(BaseModel):
    order: Order


BOOKINGS = HandoffContract(
    name="booking-to-pos",
    version=3,
    trigger=Trigger(event="booking.confirmed", payload=Booked, dedupe_key="reservation.id"),
    rules=(
        Max(field="reservation.party_size", value=12, reason="Parties over 12 are events, booked by a manager."),
        OneOf(field="reservation.channel", values=("web", "phone"), reason="Known channels."),
        Pattern(field="reservation.table", regex=r"T\d+", reason="POS tables are named T1, T2, ..."),
    ),
)
ORDERS = HandoffContract(
    name="order-to-kitchen", trigger=Trigger(event="order.placed", payload=Placed, dedupe_key="order.id")
)
APP = Handoffs(contracts=[BOOKINGS, ORDERS])
"""The app `handoff suggest --app tests.workers.test_suggest:APP` reads."""


class Ledger:
    """Writes runs as the workflow would leave them: the payload, and when v3 finds a rule broken, the case with its
    violations and the operator's decision."""

    def __init__(self, session: Session, start: datetime) -> None:
        self.session, self.start, self.count = session, start, 0

    def run(self, decision: str | None = None, *, at: datetime | None = None, **reservation: Any) -> str:
        self.count += 1
        workflow_id = f"booking-to-pos/R-{self.count:02d}"
        received = at or self.start + timedelta(minutes=self.count)
        payload = {"reservation": {"id": f"R-{self.count:02d}", "channel": "web", "table": "T1", **reservation}}
        violations = evaluate(BOOKINGS.rules, payload)
        self.session.add(
            RunRow(
                workflow_id=workflow_id,
                handoff=BOOKINGS.name,
                event="booking.confirmed",
                dedupe_key=f"R-{self.count:02d}",
                contract_version=3,
                contract_hash=BOOKINGS.content_hash(),
                stage=("rejected" if decision == "reject" else "delivered") if violations else "delivered",
                payload=payload,
                received_at=received,
                updated_at=received,
            )
        )
        if not violations:
            return workflow_id
        assert decision is not None, "a run that opens a case is decided in this ledger"
        case_id = f"C-{self.count:02d}"
        self.session.add(
            CaseRow(
                id=case_id,
                workflow_id=workflow_id,
                handoff=BOOKINGS.name,
                owner_group="front-of-house",
                status="decided",
                opened_at=received,
                sla_deadline=received + timedelta(minutes=30),
                decision=decision,
                decided_at=received + timedelta(minutes=5),
                payload=payload,
            )
        )
        self.session.flush()  # the case before its violations (foreign key)
        for position, violation in enumerate(violations):
            self.session.add(
                ViolationRow(
                    case_id=case_id,
                    position=position,
                    rule=violation.rule,
                    kind=violation.kind,
                    field=violation.field,
                    value=violation.value,
                    reason=violation.reason,
                )
            )
        self.session.add(
            DecisionRow(
                case_id=case_id,
                workflow_id=workflow_id,
                handoff=BOOKINGS.name,
                decision=decision,
                operator="ada",
                group="front-of-house",
                reason="the manager said this one is fine",
                decided_at=received + timedelta(minutes=5),
            )
        )
        return workflow_id


def write_patterns(ledger: Engine, start: datetime = T0) -> dict[str, list[str]]:
    """The planted runs (received from `start` on), and the workflow ids of the parties approved over 12."""
    with Session(ledger) as session:
        write = Ledger(session, start)
        write.run("approve", at=start - timedelta(days=40), party_size=40)
        for n in range(20):
            write.run(party_size=2 + n % 11)
        parties = [write.run("approve", party_size=13 + n % 2) for n in range(9)]
        write.run("reject", party_size=30)
        write.run("approve", channel="email", party_size=4)
        for _ in range(5):
            write.run("reject", channel="email", party_size=4)
        for n in range(6):
            write.run("reject" if n == 0 else "approve", table="Patio", party_size=4)
        session.commit()
    return {"parties": parties}


async def suggested(ledger: Engine, since: datetime = T0) -> HandoffSuggestions:
    report = await suggest(
        [BOOKINGS],
        read_cases(ledger, handoffs=[BOOKINGS.name], since=since),
        recorded_runs(ledger, handoffs=[BOOKINGS.name], since=since),
        since=since,
        now=T0 + timedelta(days=1),
    )
    [bookings] = report.handoffs
    return bookings


NEW_MAX = Max(field="reservation.party_size", value=14, reason="Parties over 14 are events, booked by a manager.")


async def test_a_max_approved_above_its_bound_is_raised_to_the_largest_approved_value(ledger: Engine) -> None:
    """Parties of 13 and 14 approved 9 times in 10: raise the Max to 14 in v4; the backtest of v4 over the 42 runs
    says the 9 approved runs would open no case, and none would open one that did not."""
    planted = write_patterns(ledger)

    bookings = await suggested(ledger)

    [party, table] = bookings.suggestions
    assert (MAX_12, "max", NEW_MAX, 4) == (party.rule, party.kind, party.proposed, party.version)
    assert "overridden 9 of 10 times, values 13-14" == party.evidence.summary
    assert [13, 14] == party.evidence.values
    assert party.measured is not None
    assert (planted["parties"], [], 42) == (party.measured.fewer_cases, [], party.measured.compared)
    assert planted["parties"] == [run.workflow_id for run in party.measured.backtest.no_longer_opened]
    assert (4, [], 13) == (
        party.measured.backtest.version,
        party.measured.backtest.newly_opened,
        party.measured.backtest.would_open,
    )
    assert (round(100 * 22 / 42, 4), round(100 * 13 / 42, 4)) == (
        party.measured.exception_rate_current_pct,
        party.measured.exception_rate_proposed_pct,
    )
    assert party.change is not None
    assert [
        "# booking-to-pos: in its rules,",
        '-    Max(field="reservation.party_size", value=12, reason="Parties over 12 are events, booked by a manager."),',
        '+    Max(field="reservation.party_size", value=14, reason="Parties over 14 are events, booked by a manager."),',
        "# then bump version to 4 and run `handoff lock`.",
    ] == party.change.splitlines()
    assert (TABLES, "pattern", None, None) == (table.rule, table.kind, table.proposed, table.measured)
    assert 'overridden 5 of 6 times, value "Patio"' == table.evidence.summary
    assert table.note is not None and table.note.startswith("no automatic suggestion")


async def test_a_rule_rarely_overridden_gives_no_suggestion(ledger: Engine) -> None:
    """E-mail bookings approved once in 6: below the override share, so the OneOf is not suggested; at a share of
    1/6 it is, widened by "email"."""
    write_patterns(ledger)
    cases = read_cases(ledger, handoffs=[BOOKINGS.name], since=T0)
    runs = recorded_runs(ledger, handoffs=[BOOKINGS.name], since=T0)

    default = await suggested(ledger)
    lenient = await suggest([BOOKINGS], cases, runs, since=T0, now=T0, thresholds=Thresholds(override_share=0.15))

    assert [MAX_12, TABLES] == [suggestion.rule for suggestion in default.suggestions]
    channels = next(s for s in lenient.handoffs[0].suggestions if s.rule == CHANNELS)
    assert OneOf(field="reservation.channel", values=("web", "phone", "email"), reason="Known channels.") == (
        channels.proposed
    )
    assert channels.measured is not None
    assert (6, []) == (len(channels.measured.fewer_cases), channels.measured.new_cases)


def test_each_bound_moves_to_the_furthest_approved_value() -> None:
    """Min lowers to the smallest value, MaxLength rises to the longest, an exclusive Max becomes inclusive; a rule
    that already lets every value pass, or values of the wrong type, give no suggestion."""
    low = Min(field="order.total", value=10, exclusive=True, reason="Orders under 10 are tests.")
    name = MaxLength(field="guest.name", value=5, reason="The POS shows 5 characters.")
    cap = Max(field="order.total", value=500, exclusive=True, reason="Over 500 needs a manager.")

    assert (Min(field="order.total", value=4, reason="Orders under 4 are tests."), None) == propose(low, [4, 7.5])
    assert (MaxLength(field="guest.name", value=8, reason="The POS shows 8 characters."), None) == propose(
        name, ["Ada Love", "Ada L"]
    )
    assert (Max(field="order.total", value=500, reason="Over 500 needs a manager."), None) == propose(cap, [500])
    assert (None, "no automatic suggestion: the rule already lets every approved value pass") == propose(cap, [20])
    assert (None, "no automatic suggestion: no approved value is a number") == propose(cap, ["a lot"])
    assert 'Min(field="order.total", value=10, exclusive=True, reason="Orders under 10 are tests.")' == python(low)


@pytest.fixture
def env(ledger: Engine, ledger_url: str, tmp_path: Path) -> dict[str, str]:
    """`handoff` pointed at a ledger with the planted runs (received two days ago) and the test's app."""
    write_patterns(ledger, start=datetime.now(UTC) - timedelta(days=2))
    return {
        "HANDOFF_APP": "tests.workers.test_suggest:APP",
        "HANDOFF_HOME": str(tmp_path / "home"),
        "HANDOFF_DATABASE_URL": ledger_url,
        "HANDOFF_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }


async def test_suggest_prints_the_evidence_the_change_and_the_backtest(env: dict[str, str]) -> None:
    """The text output: per handoff, each overridden rule with its evidence, the change to commit and its figures."""
    result = await handoff(env, "suggest", "--since", "7d")

    assert 0 == result.exit_code, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Suggestions: rules approved as is in 50% or more of their decided cases (from 5)")
    assert [
        "booking-to-pos v3: 22 decided case(s), 42 run(s)",
        "  reservation.party_size <= 12: overridden 9 of 10 times, values 13-14",
    ] == lines[2:4]
    assert (
        '    +    Max(field="reservation.party_size", value=14, reason="Parties over 14 are events, booked by a '
        'manager."),' in lines
    )
    assert "    # then bump version to 4 and run `handoff lock`." in lines
    assert "    backtest: 9 fewer case(s), 0 new, over 42 run(s); exception rate 52.4% -> 31.0%" in lines
    assert "    no automatic suggestion: a change to a pattern rule does not follow from the values" in lines
    assert [
        "order-to-kitchen v1: 0 decided case(s), 0 run(s)",
        "  no rule is overridden often enough to suggest a change.",
    ] == lines[-2:]


async def test_suggest_json_is_the_report_and_honours_the_settings(env: dict[str, str]) -> None:
    """`--json` parses as a SuggestionReport; HANDOFF_DIAGNOSE_OVERRIDE_SHARE=0.95 leaves the Max (9 in 10) out;
    --since 1d finds nothing; an unknown --handoff is a usage error."""
    default = await handoff(env, "suggest", "--json", "--handoff", "booking-to-pos")
    strict = await handoff({**env, "HANDOFF_DIAGNOSE_OVERRIDE_SHARE": "0.95"}, "suggest", "--json")
    recent = await handoff(env, "suggest", "--json", "--since", "1d")
    unknown = await handoff(env, "suggest", "--handoff", "nope")

    assert (0, 0, 0, 2) == (default.exit_code, strict.exit_code, recent.exit_code, unknown.exit_code), (
        default.output + strict.output + recent.output
    )
    [bookings] = SuggestionReport.model_validate_json(default.stdout).handoffs
    assert [(MAX_12, NEW_MAX), (TABLES, None)] == [(s.rule, s.proposed) for s in bookings.suggestions]
    assert bookings.suggestions[0].measured is not None and 9 == len(bookings.suggestions[0].measured.fewer_cases)
    assert [[], []] == [h.suggestions for h in SuggestionReport.model_validate_json(strict.stdout).handoffs]
    assert [(0, []), (0, [])] == [
        (h.runs, h.suggestions) for h in SuggestionReport.model_validate_json(recent.stdout).handoffs
    ]
    assert "known: booking-to-pos, order-to-kitchen" in unknown.output
