"""`handoff case` and `handoff status` show personal fields only to the operator whose token the CLI holds when
their group owns the case, mask them for anyone else (every value, without an app to say which are personal), and
say when a run was purged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import handoff.workers.cli.cases  # registers `case` and `status` on the CLI
from examples.restaurant import RestaurantApp
from handoff.activities.ledger.operators import add_operator
from handoff.activities.ledger.purge import purge_runs
from handoff.schemas.runs import Stage
from handoff.workers.masking import MASK
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.api.checks import ledger_reaches, open_case_in_ledger
from tests.runtime import payloads
from tests.workers.cli_runner import cli_env, handoff


@pytest.fixture
async def handoffs(client: Client, restaurant: RestaurantApp, tmp_path: Path) -> AsyncIterator[HandoffKit]:
    """A worker whose reservation cases wait a minute before escalating: time to read them from the CLI."""
    async with running_handoffs(client, restaurant, tmp_path, sla_scale=1 / 30) as kit:
        yield kit


@pytest.fixture
async def env(handoffs: HandoffKit, temporal_env: WorkflowEnvironment) -> dict[str, str]:
    """The kit's environment for `handoff` (the restaurant app in HANDOFF_APP), logged in as nobody."""
    return cli_env(handoffs, temporal_env.client.service_client.config.target_host)


@pytest.fixture
def tokens(handoffs: HandoffKit) -> dict[str, str]:
    """hana decides front-of-house cases, chef kitchen-leads ones."""
    groups = handoffs.app.catalog.group_names
    return {
        name: add_operator(handoffs.ledger, name, [group], declared_groups=groups)
        for name, group in (("hana", "front-of-house"), ("chef", "kitchen-leads"))
    }


def _guest(answer: Any) -> tuple[Any, ...]:
    return answer["guest"]["name"], answer["guest"]["allergies"], answer["reservation"]["party_size"]


async def test_case_and_status_show_the_guest_to_the_owning_group_only(
    env: dict[str, str], tokens: dict[str, str], handoffs: HandoffKit
) -> None:
    """hana (front-of-house, the owner) reads the guest in `case --json` and `status --json`; chef and a CLI
    without a token read `•••`, and the table says the fields are masked. Without an app, everything is masked."""
    booking = await handoffs.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    case = await open_case_in_ledger(handoffs, booking.workflow_id)
    as_hana, as_chef = {**env, "HANDOFF_TOKEN": tokens["hana"]}, {**env, "HANDOFF_TOKEN": tokens["chef"]}
    no_app = {**env, "HANDOFF_APP": ""}

    cases = {
        label: await handoff(variables, "case", case.id, "--json")
        for label, variables in {"hana": as_hana, "chef": as_chef, "nobody": env, "no app": no_app}.items()
    }
    statuses = {
        label: await handoff(variables, "status", booking.workflow_id, "--json")
        for label, variables in {"hana": as_hana, "chef": as_chef}.items()
    }
    table = await handoff(env, "case", case.id)

    assert {label: 0 for label in cases} == {label: result.exit_code for label, result in cases.items()}
    assert {
        "hana": ("Ada Lovelace", "shellfish", 14),
        "chef": (MASK, MASK, 14),
        "nobody": (MASK, MASK, 14),
        "no app": (MASK, MASK, MASK),
    } == {label: _guest(json.loads(result.stdout)["payload"]) for label, result in cases.items()}
    assert "every value is masked" in cases["no app"].stderr
    assert {"hana": ("Ada Lovelace", "shellfish", 14), "chef": (MASK, MASK, 14)} == {
        label: _guest(json.loads(result.stdout)["status"]["payload"]) for label, result in statuses.items()
    }
    assert 0 == table.exit_code and "Ada Lovelace" not in table.stdout
    assert "Personal fields are masked: only operators of front-of-house see them." in table.stdout


async def test_case_and_status_say_when_a_run_was_purged(
    env: dict[str, str], tokens: dict[str, str], handoffs: HandoffKit
) -> None:
    """Once purged, `case` prints "purged on" instead of a payload, and `status` says so too, even to hana."""
    booking = await handoffs.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    case = await open_case_in_ledger(handoffs, booking.workflow_id)
    as_hana = {**env, "HANDOFF_TOKEN": tokens["hana"]}
    decided = await handoff(as_hana, "decide", case.id, "reject", "--reason", "no table")
    assert 0 == decided.exit_code, decided.output
    await ledger_reaches(handoffs, booking.workflow_id, Stage.REJECTED)
    await asyncio.to_thread(purge_runs, handoffs.ledger, before=datetime.now(UTC) + timedelta(minutes=1))

    case_text = await handoff(as_hana, "case", case.id)
    status_text = await handoff(as_hana, "status", booking.workflow_id)
    status_json = await handoff(as_hana, "status", booking.workflow_id, "--json")

    assert (0, 0, 0) == (case_text.exit_code, status_text.exit_code, status_json.exit_code), case_text.output
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    assert f"Payload when the case was opened: purged on {today}" in case_text.stdout
    assert "Ada Lovelace" not in case_text.stdout
    assert f"payloads purged on {today}" in status_text.stdout
    assert {} == json.loads(status_json.stdout)["status"]["payload"]
