"""`handoff backtest`: recorded runs judged again by the app's current rules.

The ledger holds 250 reservation-to-pos runs of the last 20 days (and a few particular ones) judged by v1 (parties up
to 12), as the workflow would have recorded them: varied party sizes, channels, tables and deposits, a case with its violations wherever v1 found one.
The app then moves on to a v2 (parties up to 14, or up to 10) and the backtest's figures are checked against
`evaluate` run on each recorded payload here. The POS of the recorded days had no table T5 and still had T21; today's
has T1..T20, which is what `--lookups` asks.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner, Result

from examples.restaurant import build_app, reservation_to_pos
from examples.restaurant.app import CONTRACTS, RestaurantApp
from examples.restaurant.systems import FLOOR_TABLES
from handoff import HandoffContract, Max
from handoff.activities.ledger.backtest import recorded_runs
from handoff.activities.ledger.database import create_schema, make_engine
from handoff.activities.ledger.tables import CaseRow, RunRow, ViolationRow
from handoff.schemas.backtest import Backtest
from handoff.workers.cli import backtest as backtest_cli
from handoff.workers.cli import commands
from handoff.workflows.validation import evaluate
from tests.runtime import payloads
from tests.workers.cli_runner import restored_logging

app = commands("backtest")

HANDOFF = "reservation-to-pos"
V1 = reservation_to_pos.CONTRACT
MAX_12 = "reservation.party_size <= 12"
TABLE_LOOKUP = "pos.table_exists(reservation.table_number)"
TABLES_THEN = (set(FLOOR_TABLES) - {"T5"}) | {"T21"}
"""The POS floor plan when the runs were recorded."""
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
MISFIT = f"{HANDOFF}/R-misfit"
TWO_CASES = f"{HANDOFF}/R-two-cases"
ORDERS = 10
OTHERS = tuple(contract for contract in CONTRACTS if contract.name != HANDOFF)


def with_max_party(size: int) -> HandoffContract:
    """reservation-to-pos v2: v1 with another cap on the party size."""
    return V1.model_copy(
        update={
            "version": 2,
            "rules": tuple(
                Max(field=rule.field, value=size, reason=f"Parties over {size} are events, booked by a manager.")
                if isinstance(rule, Max) and rule.field == "reservation.party_size"
                else rule
                for rule in V1.rules
            ),
        }
    )


LOOSER, STRICTER = with_max_party(14), with_max_party(10)

# The activities' ledgers, a SQLite file and a PostgreSQL database, for the test of the ledger read.


@dataclass(frozen=True)
class Recorded:
    """A run as the test wrote it to the ledger."""

    workflow_id: str
    handoff: str
    payload: dict[str, Any]
    received_at: datetime
    stage: str
    first_case: tuple[str, ...] = ()
    cases: int = 0

    @property
    def judged(self) -> bool:
        return self.cases > 0 or self.stage not in ("received", "validating")


# -- the recorded ledger ----------------------------------------------------------------------------------------------


def v1_verdict(payload: dict[str, Any]) -> tuple[str, ...]:
    """The rules v1 found broken, the look-up answered by the POS of the day, in the workflow's order."""
    assert V1.trigger is not None
    typed = V1.trigger.payload.model_validate(payload).model_dump()
    table = payload["reservation"]["table_number"]
    failed = {TABLE_LOOKUP} if table is not None and table not in TABLES_THEN else set()
    return tuple(v.rule for v in evaluate(V1.rules, typed, failed)) + tuple(failed)


def recorded_reservations(rng: random.Random) -> Iterator[Recorded]:
    """250 runs over the last 20 days, plus runs older than 30 days; received at :17 past an hour, so no window's
    edge (30m, 12h, 7d, 30d) falls within minutes of one."""
    for n in range(250):
        payload = payloads.reservation(
            reservation__id=f"R-{n:04d}",
            reservation__party_size=rng.choice([*range(1, 17), None]),
            reservation__channel=rng.choice(["web", "phone", "walk-in", "partner", "email", None]),
            reservation__deposit_cents=rng.choice([0, 0, 5000]),
            reservation__table_number=rng.choice([*FLOOR_TABLES, "T21", "T21", "T99", "Patio", None]),
            guest__name=rng.choice(["Ada Lovelace"] * 9 + [None]),
        )
        rules = v1_verdict(payload)
        stage = rng.choice(["delivered", "rejected", "awaiting-decision"]) if rules else "delivered"
        received = NOW - timedelta(hours=rng.randrange(20 * 24), minutes=17)
        yield Recorded(f"{HANDOFF}/R-{n:04d}", HANDOFF, payload, received, stage, rules, 1 if rules else 0)
    for n in range(5):
        old = payloads.reservation(reservation__id=f"R-old-{n}", reservation__party_size=13)
        yield Recorded(f"{HANDOFF}/R-old-{n}", HANDOFF, old, NOW - timedelta(days=40), "rejected", (MAX_12,), 1)
    for n in range(3):
        fresh = payloads.reservation(reservation__id=f"R-new-{n}", reservation__party_size=13)
        yield Recorded(f"{HANDOFF}/R-new-{n}", HANDOFF, fresh, NOW - timedelta(minutes=17), "received")
    # Accepted by an older payload model; today's wants a number.
    misfit = payloads.reservation(reservation__id="R-misfit", reservation__party_size="a dozen")
    yield Recorded(MISFIT, HANDOFF, misfit, NOW - timedelta(hours=3, minutes=17), "delivered")
    # Its first case failed the look-up; the second, after a correction, only a missing name.
    two = payloads.reservation(reservation__id="R-two-cases", reservation__table_number="T5")
    yield Recorded(TWO_CASES, HANDOFF, two, NOW - timedelta(hours=5, minutes=17), "rejected", (TABLE_LOOKUP,), 2)


def recorded_orders() -> Iterator[Recorded]:
    for n in range(ORDERS):
        order = payloads.order(order__id=f"O-{n}")
        yield Recorded(f"order-to-kitchen/O-{n}", "order-to-kitchen", order, NOW - timedelta(hours=n + 1), "delivered")


def write(session: Session, run: Recorded) -> None:
    session.add(
        RunRow(
            workflow_id=run.workflow_id,
            handoff=run.handoff,
            event="reservation.confirmed" if run.handoff == HANDOFF else "order.placed",
            dedupe_key=run.workflow_id.split("/", 1)[1],
            contract_version=1,
            contract_hash=V1.content_hash(),
            stage=run.stage,
            payload=run.payload,
            received_at=run.received_at,
            updated_at=run.received_at,
        )
    )
    for number in range(run.cases):
        case_id = f"C-{run.workflow_id.split('/', 1)[1]}-{number}"
        opened = run.received_at + timedelta(minutes=number + 1)
        session.add(
            CaseRow(
                id=case_id,
                workflow_id=run.workflow_id,
                handoff=run.handoff,
                owner_group="front-of-house",
                status="decided",
                opened_at=opened,
                sla_deadline=opened + timedelta(minutes=30),
                payload=run.payload,
            )
        )
        session.flush()  # the case before its violations (foreign key)
        rules = run.first_case if number == 0 else ("guest.name is required",)
        for position, rule in enumerate(rules):
            session.add(
                ViolationRow(case_id=case_id, position=position, rule=rule, kind="-", field="-", reason="recorded")
            )


def every_recorded_run() -> list[Recorded]:
    return [*recorded_reservations(random.Random(20260101)), *recorded_orders()]


def write_all(engine: Engine, runs: list[Recorded]) -> None:
    with Session(engine) as session:
        for run in runs:
            write(session, run)
        session.commit()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Recorded]]:
    """A SQLite ledger with every recorded run, and the runs as written."""
    url = f"sqlite:///{tmp_path_factory.mktemp('backtest') / 'ledger.db'}"
    runs = every_recorded_run()
    engine = make_engine(url)
    try:
        create_schema(engine)
        write_all(engine, runs)
    finally:
        engine.dispose()
    return url, runs


# -- the apps and the command -----------------------------------------------------------------------------------------

VERSIONS = {"looser": LOOSER, "stricter": STRICTER}
"""The apps the commands load, by attribute name (`--app tests.workers.test_backtest:looser`)."""
SYSTEMS: list[str] = []
"""The URL of this test's restaurant systems database."""


def __getattr__(name: str) -> RestaurantApp:
    """The restaurant app at `name`'s version of reservation-to-pos, built when the command imports it: after the
    command set up its logging, as a user's module is (the restaurant's adapters bind their loggers as they are
    built)."""
    if name not in VERSIONS or not SYSTEMS:
        raise AttributeError(name)
    return build_app(SYSTEMS[0], contracts=(VERSIONS[name], *OTHERS), lock_file=None)


@pytest.fixture(autouse=True)
def systems(tmp_path: Path) -> Iterator[None]:
    SYSTEMS.append(f"sqlite:///{tmp_path / 'restaurant.db'}")
    yield
    SYSTEMS.clear()


def backtest(url: str, *args: str, app_name: str = "looser") -> Result:
    env = {"HANDOFF_DATABASE_URL": url, "HANDOFF_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    with restored_logging():
        return CliRunner().invoke(app, ["backtest", "--app", f"{__name__}:{app_name}", *args], env=env)


def backtest_json(url: str, *args: str, app_name: str = "looser") -> Backtest:
    result = backtest(url, "--json", *args, app_name=app_name)
    assert 0 == result.exit_code, result.output
    return Backtest.model_validate_json(result.stdout)


# -- what the test expects, from `evaluate` ---------------------------------------------------------------------------


@dataclass
class Expected:
    runs: int = 0
    still_validating: int = 0
    opened_before: int = 0
    would_open: int = 0
    refused: list[str] = field(default_factory=list)
    newly_opened: list[str] = field(default_factory=list)
    no_longer_opened: list[str] = field(default_factory=list)
    by_rule: Counter[str] = field(default_factory=Counter)
    by_field: Counter[str] = field(default_factory=Counter)


def expected(contract: HandoffContract, runs: list[Recorded], since: datetime) -> Expected:
    """Each recorded payload of the window through `evaluate` and the contract's model, look-ups as recorded."""
    found = Expected()
    assert contract.trigger is not None
    for run in runs:
        if run.handoff != contract.name or run.received_at < since:
            continue
        found.runs += 1
        if not run.judged:
            found.still_validating += 1
            continue
        found.opened_before += run.cases > 0
        try:
            typed = contract.trigger.payload.model_validate(run.payload).model_dump()
        except ValidationError:
            found.refused.append(run.workflow_id)
            continue
        failed = {TABLE_LOOKUP} & set(run.first_case)
        violations = evaluate(contract.rules, typed, failed)
        rules = {violation.rule for violation in violations} | failed
        fields = {violation.field for violation in violations} | ({"reservation.table_number"} if failed else set())
        found.would_open += bool(rules)
        found.by_rule.update(rules)
        found.by_field.update(fields)
        if rules and not run.cases:
            found.newly_opened.append(run.workflow_id)
        if run.cases and not rules:
            found.no_longer_opened.append(run.workflow_id)
    return found


# -- the tests --------------------------------------------------------------------------------------------------------


def test_the_ledger_gives_the_runs_of_the_window_with_their_first_case(ledger: Engine) -> None:
    """On SQLite and PostgreSQL alike: the runs of the handoffs asked for, received within the window, oldest first,
    each with its case count and the rules of its first case."""
    runs = every_recorded_run()
    write_all(ledger, runs)
    since = NOW - timedelta(days=7)

    found = recorded_runs(ledger, handoffs=[HANDOFF], since=since)

    want = sorted((r for r in runs if r.handoff == HANDOFF and r.received_at >= since), key=lambda r: r.received_at)
    assert [(r.workflow_id, r.cases, r.first_case) for r in want] == [
        (r.workflow_id, r.cases, r.first_case_rules) for r in found
    ]
    assert all(r.received_at.tzinfo is not None for r in found)


@pytest.mark.parametrize(("app_name", "contract"), [("looser", LOOSER), ("stricter", STRICTER)])
def test_the_counts_are_those_of_evaluate_on_each_recorded_payload(
    recorded: tuple[str, list[Recorded]], app_name: str, contract: HandoffContract
) -> None:
    """Runs, cases before, cases after, changes both ways, refusals and rule counts: as `evaluate` finds them."""
    url, runs = recorded
    want = expected(contract, runs, NOW - timedelta(days=30))

    (got,) = backtest_json(url, "--handoff", HANDOFF, app_name=app_name).handoffs

    assert want.runs >= 200
    assert (contract.version, contract.content_hash()) == (got.version, got.content_hash)
    assert (want.runs, want.still_validating, want.opened_before, want.would_open) == (
        got.runs,
        got.still_validating,
        got.opened_before,
        got.would_open,
    )
    assert want.refused == [run.workflow_id for run in got.refused]
    assert sorted(want.newly_opened) == sorted(run.workflow_id for run in got.newly_opened)
    assert sorted(want.no_longer_opened) == sorted(run.workflow_id for run in got.no_longer_opened)
    assert dict(want.by_rule) == {count.name: count.runs for count in got.by_rule}
    assert dict(want.by_field) == {count.name: count.runs for count in got.by_field}
    judged = want.runs - want.still_validating
    assert round(100 * want.opened_before / judged, 4) == got.exception_rate_before_pct
    assert round(100 * want.would_open / (judged - len(want.refused)), 4) == got.exception_rate_after_pct


def test_a_looser_cap_lets_through_exactly_the_parties_only_the_old_cap_stopped(
    recorded: tuple[str, list[Recorded]],
) -> None:
    """Max 12 -> 14: no run opens a case it did not, and each run let through broke only the old cap, with 13 or 14."""
    url, runs = recorded
    payload_of = {run.workflow_id: run.payload for run in runs}

    (got,) = backtest_json(url, "--handoff", HANDOFF).handoffs

    assert [] == got.newly_opened
    assert got.no_longer_opened
    for run in got.no_longer_opened:
        assert ((MAX_12,), ()) == (run.before, run.after)
        assert payload_of[run.workflow_id]["reservation"]["party_size"] in (13, 14)
    assert "reservation.party_size <= 14" in {count.name for count in got.by_rule}


def test_a_stricter_cap_opens_cases_for_parties_of_11_and_12(recorded: tuple[str, list[Recorded]]) -> None:
    """Max 12 -> 10: the runs that newly open a case are parties of 11 or 12 that v1 let through."""
    url, runs = recorded
    payload_of = {run.workflow_id: run.payload for run in runs}

    (got,) = backtest_json(url, "--handoff", HANDOFF, app_name="stricter").handoffs

    assert got.newly_opened and [] == got.no_longer_opened
    assert {11, 12} >= {payload_of[run.workflow_id]["reservation"]["party_size"] for run in got.newly_opened}
    assert all(("reservation.party_size <= 10",) == run.after for run in got.newly_opened)


def test_a_lookup_counts_as_the_first_recorded_case_found_it(recorded: tuple[str, list[Recorded]]) -> None:
    """Without --lookups, T5's look-up failed (its first case says so), though its later case says otherwise."""
    url, _ = recorded

    result = backtest_json(url, "--handoff", HANDOFF)
    (got,) = result.handoffs

    assert False is result.lookups_rerun
    assert TWO_CASES not in {run.workflow_id for run in got.no_longer_opened}
    assert TABLE_LOOKUP in {count.name for count in got.by_rule}


def test_lookups_are_asked_again_with_the_flag(recorded: tuple[str, list[Recorded]]) -> None:
    """--lookups asks today's POS: T5 exists again (its runs may no longer open a case), T21 is gone (its runs do)."""
    url, runs = recorded
    table_of = {run.workflow_id: run.payload["reservation"]["table_number"] for run in runs if run.handoff == HANDOFF}

    as_recorded = backtest_json(url, "--handoff", HANDOFF).handoffs[0]
    asked = backtest_json(url, "--handoff", HANDOFF, "--lookups")

    (now,) = asked.handoffs
    assert True is asked.lookups_rerun
    newly = {run.workflow_id for run in now.newly_opened} - {run.workflow_id for run in as_recorded.newly_opened}
    gone = {run.workflow_id for run in now.no_longer_opened} - {run.workflow_id for run in as_recorded.no_longer_opened}
    assert newly and {"T21"} == {table_of[workflow_id] for workflow_id in newly}
    assert TWO_CASES in gone and {"T5"} == {table_of[workflow_id] for workflow_id in gone}
    assert all(TABLE_LOOKUP in run.after for run in now.newly_opened if run.workflow_id in newly)


def test_the_text_output_says_what_would_differ(recorded: tuple[str, list[Recorded]]) -> None:
    """The window, how look-ups counted, the rates before and after, the changes with a few runs, the rule counts."""
    url, runs = recorded
    want = expected(LOOSER, runs, NOW - timedelta(days=30))
    judged = want.runs - want.still_validating

    result = backtest(url, "--handoff", HANDOFF)

    said = " ".join(result.stdout.split())
    assert 0 == result.exit_code, result.output
    assert "judged by the app's current rules" in said and "(30d)" in said
    assert "Look-ups were not asked again: each counts as it did in the recorded run" in said
    assert f"{HANDOFF} v2 {LOOSER.content_hash()}" in said
    assert f"{want.runs} received, {want.still_validating} still validating (not compared)" in said
    before = f"before {100 * want.opened_before / judged:.1f}% ({want.opened_before} of {judged})"
    after = f"after {100 * want.would_open / (judged - 1):.1f}% ({want.would_open} of {judged - 1})"
    assert f"exception rate {before} -> {after}" in said
    assert "would open a case now, did not: 0" in said
    assert f"opened a case, would not now: {len(want.no_longer_opened)}" in said
    assert f": was {MAX_12}" in said and "(--json lists them all)" in said
    assert f"refused at the edge now: 1 {MISFIT}: reservation.party_size: Input should be a valid integer" in said
    assert f"reservation.party_size <= 14 {want.by_rule['reservation.party_size <= 14']}" in said


def test_a_payload_that_no_longer_fits_is_refused_at_the_edge(recorded: tuple[str, list[Recorded]]) -> None:
    """A payload today's model refuses is reported with its field errors; it is counted in no rate after."""
    url, _ = recorded

    (got,) = backtest_json(url, "--handoff", HANDOFF).handoffs

    (refused,) = got.refused
    assert MISFIT == refused.workflow_id
    assert [("reservation.party_size", "int_parsing")] == [(e.field, e.type) for e in refused.errors]
    assert MISFIT not in {run.workflow_id for run in got.newly_opened + got.no_longer_opened}


def test_every_handoff_unless_one_is_named(recorded: tuple[str, list[Recorded]]) -> None:
    """Without --handoff each handoff of the app is backtested on its own runs; --handoff keeps one."""
    url, _ = recorded

    every = backtest_json(url)
    one = backtest_json(url, "--handoff", "order-to-kitchen")

    runs = {handoff.handoff: handoff.runs for handoff in every.handoffs}
    assert [HANDOFF, *(contract.name for contract in OTHERS)] == list(runs)
    assert (ORDERS, 0) == (runs["order-to-kitchen"], runs["lead-to-invoice"])
    assert [("order-to-kitchen", ORDERS)] == [(handoff.handoff, handoff.runs) for handoff in one.handoffs]


@pytest.mark.parametrize(
    ("since", "span"),
    [("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)), ("60d", None)],
)
def test_since_reads_days_hours_and_minutes(
    recorded: tuple[str, list[Recorded]], since: str, span: timedelta | None
) -> None:
    """--since 7d / 12h / 30m keeps the runs received within that span; 60d reaches the runs older than 30 days."""
    url, runs = recorded
    span = span or timedelta(days=60)

    (got,) = backtest_json(url, "--handoff", HANDOFF, "--since", since).handoffs

    assert NOW - span == backtest_cli.window_start(since, NOW)
    assert expected(LOOSER, runs, NOW - span).runs == got.runs


@pytest.mark.parametrize("since", ["7x", "d", "0h", "-3d", "1.5d", "99999999999d"])
def test_a_bad_since_is_a_usage_error_naming_the_option(recorded: tuple[str, list[Recorded]], since: str) -> None:
    """Anything but a whole positive number of d, h or m exits 2 and names --since."""
    url, _ = recorded

    result = backtest(url, "--since", since)

    assert 2 == result.exit_code, result.output
    assert "--since" in result.output and "12h or 30m" in result.output
    with pytest.raises(typer.BadParameter):
        backtest_cli.window_start(since, NOW)


def test_an_unknown_handoff_is_a_usage_error_listing_the_known_ones(recorded: tuple[str, list[Recorded]]) -> None:
    """--handoff with a name the app does not have exits 2 and lists the handoffs it has."""
    url, _ = recorded

    result = backtest(url, "--handoff", "reservation-to-kitchen")

    said = " ".join(result.output.split())
    assert 2 == result.exit_code, result.output
    assert "--handoff" in said and "'reservation-to-kitchen'" in said
    assert "(known: lead-to-invoice, order-to-kitchen, reservation-to-pos)" in said


def test_json_is_one_document_of_the_backtest_model(recorded: tuple[str, list[Recorded]]) -> None:
    """--json prints one JSON document on stdout, the model `handoff.schemas.backtest.Backtest`."""
    url, _ = recorded

    result = backtest(url, "--json")

    document = json.loads(result.stdout)
    assert 0 == result.exit_code
    assert {"since", "generated_at", "lookups_rerun", "handoffs"} == set(document)
    assert HANDOFF == Backtest.model_validate(document).handoffs[0].handoff
