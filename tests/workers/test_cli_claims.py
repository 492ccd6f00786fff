"""`handoff claim`, `release`, `reassign`, `comment` and `decide-many`, typed as an operator types them, against a
real server and worker: the operator's token decides who acts, `case` and `cases` show the holder and the history,
refusals print their kind and words and exit 1 (2 for bad input), and each case of a bulk decision gets its own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from examples.restaurant import RestaurantApp
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.api.checks import ledger_reaches, open_case_in_ledger, run_state
from tests.runtime import payloads
from tests.workers.cli_runner import cli_env, handoff
from tests.workers.test_cli_cases import CLI_SLA_SCALE, acting_as


@pytest.fixture
async def handoffs(client: Client, restaurant: RestaurantApp, tmp_path: Path) -> AsyncIterator[HandoffKit]:
    """A worker and a ledger whose reservation cases wait a minute before escalating."""
    async with running_handoffs(client, restaurant, tmp_path, sla_scale=CLI_SLA_SCALE) as kit:
        yield kit


@pytest.fixture
async def env(handoffs: HandoffKit, temporal_env: WorkflowEnvironment) -> dict[str, str]:
    """The kit's environment for `handoff`, logged in as nobody."""
    return cli_env(handoffs, temporal_env.client.service_client.config.target_host)


@pytest.fixture
async def tokens(env: dict[str, str]) -> dict[str, str]:
    """Tokens of hana and hugo (front-of-house) and chef (kitchen-leads), added with `handoff operators add`."""
    found = {}
    for name, group in (("hana", "front-of-house"), ("hugo", "front-of-house"), ("chef", "kitchen-leads")):
        added = await handoff(env, "operators", "add", name, "--group", group, "--json")
        assert 0 == added.exit_code, added.output
        found[name] = json.loads(added.stdout)["token"]
    return found


async def booking(kit: HandoffKit) -> tuple[str, str]:
    """An open front-of-house case (a party of 14): its id and its run's."""
    sent = await kit.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    case = await open_case_in_ledger(kit, sent.workflow_id)
    return case.id, sent.workflow_id


async def test_claim_release_reassign_and_comment_show_in_case_and_cases(
    env: dict[str, str],
    tokens: dict[str, str],
    handoffs: HandoffKit,
) -> None:
    """hana claims (again: nothing changes), comments, hands the case to hugo, who releases it; `cases` shows the
    holder while there is one, and `case` shows the holder and every act in its history."""
    case_id, _ = await booking(handoffs)
    hana, hugo = acting_as(env, tokens["hana"]), acting_as(env, tokens["hugo"])

    claimed = await handoff(hana, "claim", case_id)
    again = await handoff(hana, "claim", case_id, "--json")
    listed = await handoff(env, "cases")
    listed_json = await handoff(env, "cases", "--json")
    commented = await handoff(hana, "comment", case_id, "guest will call back at 6")
    handed = await handoff(hana, "reassign", case_id, "--to", "hugo")
    shown_held = await handoff(env, "case", case_id)
    released = await handoff(hugo, "release", case_id, "--json")
    shown = await handoff(env, "case", case_id)
    shown_json = await handoff(env, "case", case_id, "--json")

    results = (claimed, again, listed, listed_json, commented, handed, shown_held, released, shown, shown_json)
    assert [0] * 10 == [r.exit_code for r in results], [r.output for r in results]
    assert f"Case {case_id} is yours: front-of-house sees you hold it." in claimed.stdout
    assert ("hana", False) == (json.loads(again.stdout)["claimed_by"], json.loads(again.stdout)["changed"])
    row = next(line for line in listed.stdout.splitlines() if case_id in line)
    assert "hana" in row
    assert ["hana"] == [c["claimed_by"] for c in json.loads(listed_json.stdout) if c["id"] == case_id]
    assert f"Comment added to case {case_id}." in commented.stdout
    assert f"Case {case_id} is held by hugo now." in handed.stdout
    assert "held by hugo since" in shown_held.stdout
    assert (None, True) == (json.loads(released.stdout)["claimed_by"], json.loads(released.stdout)["changed"])
    assert "held by nobody: `handoff claim` takes it" in shown.stdout
    for words in ("claimed", "commented", "guest will call back at 6", "reassigned", "to hugo", "released"):
        assert words in shown.stdout
    assert [
        ("opened", None),
        ("claimed", "hana"),
        ("commented", "hana"),
        ("reassigned", "hana"),
        ("released", "hugo"),
    ] == [(e["kind"], e["operator"]) for e in json.loads(shown_json.stdout)["history"]]


async def test_refusals_print_their_kind_and_leave_the_case_as_it_was(
    env: dict[str, str],
    tokens: dict[str, str],
    handoffs: HandoffKit,
) -> None:
    """hugo may not take hana's case, nor decide it (exit 1, nothing sent to the run); a chef may not comment (exit
    1); an empty comment or a name nobody has is bad input (exit 2), as is acting without a token; an unknown case
    exits 1."""
    case_id, workflow_id = await booking(handoffs)
    hana, hugo, chef = (acting_as(env, tokens[name]) for name in ("hana", "hugo", "chef"))
    await handoff(hana, "claim", case_id)
    before = await run_state(handoffs, workflow_id)

    taken = await handoff(hugo, "claim", case_id)
    decided = await handoff(hugo, "decide", case_id, "approve", "--reason", "VIP")
    by_chef = await handoff(chef, "comment", case_id, "yum")
    empty = await handoff(hana, "comment", case_id, "   ")
    to_nobody = await handoff(hana, "reassign", case_id, "--to", "nobody")
    no_token = await handoff(env, "claim", case_id)
    unknown = await handoff(hana, "release", "C-nope")

    assert [1, 1, 1, 2, 2, 2, 1] == [
        r.exit_code for r in (taken, decided, by_chef, empty, to_nobody, no_token, unknown)
    ], taken.output
    assert "Refused (held-by-another): Case" in taken.stderr and "held by hana since" in taken.stderr
    assert "Refused (held-by-another)" in decided.stderr and "only hana decides it" in decided.stderr
    assert "Refused (not-owner)" in by_chef.stderr
    assert "Refused (invalid-comment)" in empty.stderr
    assert "Refused (bad-assignee)" in to_nobody.stderr and "no operator named 'nobody'" in to_nobody.stderr
    assert "No operator token" in no_token.stderr
    assert "Refused (unknown-case): No case 'C-nope' in the ledger." in unknown.stderr
    assert before == await run_state(handoffs, workflow_id)

    by_holder = await handoff(hana, "decide", case_id, "reject", "--reason", "no table")
    await ledger_reaches(handoffs, workflow_id, Stage.REJECTED)
    after = await handoff(hana, "release", case_id)

    assert (0, 1) == (by_holder.exit_code, after.exit_code), by_holder.output
    assert "Refused (already-decided)" in after.stderr and "reject by hana" in after.stderr


async def test_decide_many_decides_each_case_and_says_which_were_refused(
    env: dict[str, str],
    tokens: dict[str, str],
    handoffs: HandoffKit,
) -> None:
    """hana rejects two free bookings and one hugo holds: two decided, the held one refused (exit 1); then the last
    alone, with --json: exit 0."""
    first, second, held = [await booking(handoffs) for _ in range(3)]
    hana = acting_as(env, tokens["hana"])
    await handoff(acting_as(env, tokens["hugo"]), "claim", held[0])

    mixed = await handoff(
        hana,
        "decide-many",
        first[0],
        held[0],
        second[0],
        "--handoff",
        "reservation-to-pos",
        "--decision",
        "reject",
        "--reason",
        "fully booked",
    )
    await handoff(acting_as(env, tokens["hugo"]), "release", held[0])
    alone = await handoff(
        hana,
        "decide-many",
        held[0],
        "--handoff",
        "reservation-to-pos",
        "--decision",
        "reject",
        "--reason",
        "fully booked",
        "--json",
    )

    assert (1, 0) == (mixed.exit_code, alone.exit_code), mixed.output + alone.output
    assert f"{first[0]}: decided, reject; run -> rejected" in mixed.stdout
    assert f"{held[0]}: refused (held-by-another)" in mixed.stdout
    assert "2 decided, 0 first approval(s), 1 refused, 0 failed." in mixed.stdout
    result = json.loads(alone.stdout)
    assert (1, [("decided", "hana")]) == (
        result["decided"],
        [(o["outcome"], o["decision"]["operator"]) for o in result["outcomes"]],
    )
    for _, workflow_id in (first, second, held):
        await ledger_reaches(handoffs, workflow_id, Stage.REJECTED)


async def test_decide_many_refuses_what_cannot_be_sent_as_asked(
    env: dict[str, str],
    tokens: dict[str, str],
    handoffs: HandoffKit,
) -> None:
    """A correction, a case named twice, or a case of another handoff than --handoff (alone, or among its own):
    exit 2 with the reason, nothing decided."""
    case_id, workflow_id = await booking(handoffs)
    deal = await handoffs.send("deal.won", payloads.deal(deal__currency="CHF"))
    deal_case = await open_case_in_ledger(handoffs, deal.workflow_id)
    hana = acting_as(env, tokens["hana"])
    before = await run_state(handoffs, workflow_id)

    def many(*cases: str, handoff_name: str = "reservation-to-pos", decision: str = "reject") -> list[str]:
        return ["decide-many", *cases, "--handoff", handoff_name, "--decision", decision, "--reason", "r"]

    correction = await handoff(hana, *many(case_id, decision="correct"))
    twice = await handoff(hana, *many(case_id, case_id))
    wrong = await handoff(hana, *many(case_id, handoff_name="lead-to-invoice"))
    mixed = await handoff(hana, *many(case_id, deal_case.id))

    assert [2, 2, 2, 2] == [r.exit_code for r in (correction, twice, wrong, mixed)], correction.output
    assert "decision: a correction sets fields of one payload: decide it alone" in correction.stderr
    assert f"case_ids: names {case_id} more than once" in twice.stderr
    assert "Refused (wrong-handoff)" in wrong.stderr
    assert f"Refused (wrong-handoff): Not every case is of 'reservation-to-pos' (lead-to-invoice: {deal_case.id}" in (
        mixed.stderr
    )
    assert before == await run_state(handoffs, workflow_id)
