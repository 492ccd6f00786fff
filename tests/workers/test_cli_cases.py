"""`handoff cases`, `case`, `login`, `decide`, `runs`, `status`, `report`, run as an operator types them, against a
real server and worker: decisions go through the workflow as the operator whose token the CLI holds, refusals print
its reason and leave the case as it was."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import handoff.workers.cli.operators
from examples.restaurant import RestaurantApp
from handoff.activities.ledger.tables import RunRow
from handoff.schemas.runs import Stage
from handoff.workers.cli.cases import BadAssignment, parse_assignments  # importing it registers the commands
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.api.checks import ledger_reaches, open_case_in_ledger, run_state
from tests.runtime import payloads
from tests.workers.cli_runner import cli_env, handoff

CLI_SLA_SCALE = 1 / 30
"""A reservation case waits a minute before escalating: time enough to decide it from the command line."""


@pytest.fixture
async def handoffs(client: Client, restaurant: RestaurantApp, tmp_path: Path) -> AsyncIterator[HandoffKit]:
    async with running_handoffs(client, restaurant, tmp_path, sla_scale=CLI_SLA_SCALE) as kit:
        yield kit


@pytest.fixture
async def env(handoffs: HandoffKit, temporal_env: WorkflowEnvironment) -> dict[str, str]:
    """The kit's environment for `handoff`, logged in as nobody."""
    return cli_env(handoffs, temporal_env.client.service_client.config.target_host)


@pytest.fixture
async def tokens(env: dict[str, str]) -> dict[str, str]:
    """The API tokens of two operators added with `handoff operators add`: hana (front-of-house), chef
    (kitchen-leads)."""
    found = {}
    for name, group in (("hana", "front-of-house"), ("chef", "kitchen-leads")):
        added = await handoff(env, "operators", "add", name, "--group", group, "--json")
        assert 0 == added.exit_code, added.output
        found[name] = json.loads(added.stdout)["token"]
    return found


def acting_as(env: dict[str, str], token: str) -> dict[str, str]:
    """`env` with HANDOFF_TOKEN set: how a script or CI acts as an operator."""
    return {**env, "HANDOFF_TOKEN": token}


def test_set_values_are_json_when_they_parse_and_text_otherwise() -> None:
    """`--set` reads 4 as a number, true as a boolean, null as null, "4" as text, and anything else as text."""
    assert {
        "reservation.party_size": 4,
        "guest.marketing_opt_in": True,
        "guest.allergies": None,
        "reservation.table_number": "T7",
        "guest.phone": "4",
        "reservation.notes": "a=b",
    } == parse_assignments(
        [
            "reservation.party_size=4",
            "guest.marketing_opt_in=true",
            "guest.allergies=null",
            "reservation.table_number=T7",
            'guest.phone="4"',
            "reservation.notes=a=b",
        ]
    )
    with pytest.raises(BadAssignment):
        parse_assignments(["party_size"])


async def test_cases_lists_open_cases_and_case_shows_one_in_full(env: dict[str, str], handoffs: HandoffKit) -> None:
    """`cases` (table, --json, --group, --handoff) and `case` (table, --json); an unknown case exits 1."""
    booking = await handoffs.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    deal = await handoffs.send("deal.won", payloads.deal(deal__currency="CHF"))
    booking_case = await open_case_in_ledger(handoffs, booking.workflow_id)
    deal_case = await open_case_in_ledger(handoffs, deal.workflow_id)

    table = await handoff(env, "cases")
    as_json = await handoff(env, "cases", "--json")
    sales = await handoff(env, "cases", "--group", "sales-ops", "--json")
    bookings = await handoff(env, "cases", "--handoff", "reservation-to-pos", "--json")
    one = await handoff(env, "case", booking_case.id)
    one_json = await handoff(env, "case", booking_case.id, "--json")
    unknown = await handoff(env, "case", "C-nope")

    assert (0, 0, 0, 0, 0, 0, 1) == tuple(
        r.exit_code for r in (table, as_json, sales, bookings, one, one_json, unknown)
    ), table.output
    assert booking_case.id in table.stdout and deal_case.id in table.stdout
    assert "reservation.party_size <= 12" in table.stdout
    assert {booking_case.id, deal_case.id} == {c["id"] for c in json.loads(as_json.stdout)}
    assert ([deal_case.id], [booking_case.id]) == (
        [c["id"] for c in json.loads(sales.stdout)],
        [c["id"] for c in json.loads(bookings.stdout)],
    )
    detail = json.loads(one_json.stdout)
    assert ("front-of-house", [14, 0]) == (detail["owner_group"], [v["value"] for v in detail["violations"]])
    assert "Parties over 12 are events, booked by a manager." in one.stdout
    assert booking.workflow_id.split("/")[1] in one.stdout  # the payload snapshot
    assert "No case 'C-nope'" in unknown.stderr


async def test_decide_approve_delivers_and_runs_and_status_show_it(
    env: dict[str, str], tokens: dict[str, str], handoffs: HandoffKit
) -> None:
    """hana, by her HANDOFF_TOKEN, approves her group's case; the run delivers; `runs` and `status` (live) say so."""
    booking = await handoffs.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    case = await open_case_in_ledger(handoffs, booking.workflow_id)

    decided = await handoff(
        acting_as(env, tokens["hana"]), "decide", case.id, "approve", "--reason", "VIP, the manager agreed"
    )
    await ledger_reaches(handoffs, booking.workflow_id, Stage.DELIVERED)
    runs = await handoff(env, "runs", "--stage", "delivered", "--json")
    runs_table = await handoff(env, "runs", "--handoff", "reservation-to-pos", "--limit", "5")
    status = await handoff(env, "status", booking.workflow_id, "--json")
    status_text = await handoff(env, "status", booking.workflow_id)

    assert 0 == decided.exit_code, decided.output
    assert f"Case {case.id} decided: approve by hana (front-of-house)" in decided.stdout
    assert [booking.workflow_id] == [r["workflow_id"] for r in json.loads(runs.stdout)]
    assert booking.workflow_id in runs_table.stdout and "approved as is" in runs_table.stdout
    live = json.loads(status.stdout)
    assert ("temporal", "delivered", True) == (live["source"], live["status"]["stage"], live["status"]["override"])
    assert f"case {case.id}: approve by hana" in status_text.stdout


async def test_a_refused_decision_prints_the_workflows_reason_exits_1_and_leaves_the_case(
    env: dict[str, str], tokens: dict[str, str], handoffs: HandoffKit
) -> None:
    """A kitchen lead may not decide a front-of-house case (exit 1, audited); no token, an unknown token or a bad
    --set exit 2; none of them changes the case."""
    booking = await handoffs.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    case = await open_case_in_ledger(handoffs, booking.workflow_id)
    before = await run_state(handoffs, booking.workflow_id)
    hana, chef = acting_as(env, tokens["hana"]), acting_as(env, tokens["chef"])

    not_owner = await handoff(chef, "decide", case.id, "approve", "--reason", "looks tasty")
    no_token = await handoff(env, "decide", case.id, "approve", "--reason", "boo")
    unknown = await handoff(acting_as(env, "not-a-token"), "decide", case.id, "approve", "--reason", "boo")
    bad_set = await handoff(hana, "decide", case.id, "correct", "--reason", "r", "--set", "size")
    bad_value = await handoff(
        hana, "decide", case.id, "correct", "--reason", "r", "--set", "reservation.party_size=four"
    )
    as_flag = await handoff(hana, "decide", case.id, "approve", "--as", "hana", "--reason", "r")

    assert (1, 2, 2, 2, 1, 2) == tuple(
        r.exit_code for r in (not_owner, no_token, unknown, bad_set, bad_value, as_flag)
    ), not_owner.output
    assert "Refused (not-owner)" in not_owner.stderr and "owned by 'front-of-house'" in not_owner.stderr
    assert "Operator 'chef' (kitchen-leads)" in not_owner.stderr
    assert "No operator token: run `handoff login`" in no_token.stderr and "HANDOFF_TOKEN" in no_token.stderr
    assert "The operator token from HANDOFF_TOKEN is no operator's in this ledger" in unknown.stderr
    assert "write entity.field=value" in bad_set.stderr
    assert "Refused (invalid-correction)" in bad_value.stderr
    assert "No such option: --as" in as_flag.stderr
    after = await run_state(handoffs, booking.workflow_id)
    assert [("chef", "not-owner"), ("hana", "invalid-correction")] == [
        (r.request.operator, r.kind.value if r.kind else None) for r in after[0].cases[0].refused
    ]
    unchanged = after[0].model_copy(update={"cases": [after[0].cases[0].model_copy(update={"refused": []})]})
    assert before == (unchanged, *after[1:])


async def test_login_keeps_the_token_for_decide_and_refuses_an_unknown_one(
    env: dict[str, str], tokens: dict[str, str], handoffs: HandoffKit
) -> None:
    """`handoff login` checks the token against the ledger and keeps it, readable by the user only; `decide` then
    acts as that operator, and HANDOFF_TOKEN, when set, wins over it."""
    booking = await handoffs.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    case = await open_case_in_ledger(handoffs, booking.workflow_id)

    wrong = await handoff(env, "login", "--token", "not-a-token")
    logged_in = await handoff(env, "login", stdin=tokens["hana"] + "\n")
    overridden = await handoff(acting_as(env, tokens["chef"]), "decide", case.id, "reject", "--reason", "no table")
    decided = await handoff(env, "decide", case.id, "reject", "--reason", "no table free", "--json")

    assert (1, 0, 1, 0) == (wrong.exit_code, logged_in.exit_code, overridden.exit_code, decided.exit_code), (
        logged_in.output + decided.output
    )
    assert "That token is no operator's in this ledger" in wrong.stderr
    assert "Logged in as hana (front-of-house)." in logged_in.stdout
    assert tokens["hana"] not in logged_in.stdout
    kept = handoffs.settings.home / "config" / "handoff" / "token"
    assert (tokens["hana"], 0o600) == (kept.read_text().strip(), stat.S_IMODE(kept.stat().st_mode))
    assert "Refused (not-owner)" in overridden.stderr
    result = json.loads(decided.stdout)
    assert ("hana", "front-of-house", "rejected") == (
        result["case"]["decision"]["operator"],
        result["case"]["decision"]["group"],
        result["next_stage"],
    )


async def test_a_correction_from_the_command_line_revalidates_and_delivers(
    env: dict[str, str], tokens: dict[str, str], handoffs: HandoffKit
) -> None:
    """`--set reservation.party_size=4` is sent as the number 4; the corrected run delivers it."""
    booking = await handoffs.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    case = await open_case_in_ledger(handoffs, booking.workflow_id)

    decided = await handoff(
        acting_as(env, tokens["hana"]),
        "decide",
        case.id,
        "correct",
        "--reason",
        "4 guests",
        "--set",
        "reservation.party_size=4",
    )

    assert 0 == decided.exit_code, decided.output
    status = await handoffs.wait_for_stage(booking.workflow_id, Stage.DELIVERED)
    assert 4 == status.payload["reservation"]["party_size"]


async def test_status_falls_back_to_the_ledger_and_report_prints(env: dict[str, str], handoffs: HandoffKit) -> None:
    """A run Temporal no longer has is read from the ledger; an unknown run exits 1; `report` has every handoff."""
    received = datetime(2025, 1, 2, 19, 0, tzinfo=UTC)
    with Session(handoffs.ledger) as session:
        session.add(
            RunRow(
                workflow_id="reservation-to-pos/R-OLD",
                handoff="reservation-to-pos",
                event="reservation.confirmed",
                dedupe_key="R-OLD",
                contract_version=1,
                contract_hash="0123456789abcdef",
                stage="delivered",
                last_step=3,
                payload={"reservation": {"id": "R-OLD"}},
                received_at=received,
                updated_at=received,
                finished_at=received.replace(minute=1),
            )
        )
        session.commit()

    old = await handoff(env, "status", "reservation-to-pos/R-OLD", "--json")
    unknown = await handoff(env, "status", "reservation-to-pos/R-NEVER")
    report = await handoff(env, "report", "--json")
    table = await handoff(env, "report")

    assert (0, 1, 0, 0) == (old.exit_code, unknown.exit_code, report.exit_code, table.exit_code)
    assert ("ledger", "delivered") == (json.loads(old.stdout)["source"], json.loads(old.stdout)["status"]["stage"])
    assert "neither Temporal nor the ledger knows it" in unknown.stderr
    line = json.loads(report.stdout)["handoffs"][0]
    assert ("reservation-to-pos", 1, 60.0, "met") == (
        line["handoff"],
        line["delivered"],
        line["cycle_time"]["p50"],
        line["gain"]["verdict"],
    )
    assert "cycle_time 60 vs target 60 seconds: met" in table.stdout
