"""`handoff budget`, `budget resume` and `budget reject`, typed as an operator types them, against a real server and
worker: the held handoff is listed with its figures, an operator of its owner group resumes it (the held run then
delivers once) or rejects its runs, and anyone else, or a decision with nothing held, is refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from handoff.activities.ledger.budget import holds_of
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.operators import Role
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit
from tests.runtime.test_budget import CountingPos, KeptNotices, budgeted_app, send_held, tripped
from tests.workers.cli_runner import cli_env, handoff
from tests.workers.test_cli_cases import acting_as
from tests.workflows.sample_contracts import NAME

POS = CountingPos()
APP = budgeted_app(POS, KeptNotices())
"""The app `HANDOFF_APP` names for these commands (`tests.workers.test_cli_budget:APP`): the kit runs the same one."""


@pytest.fixture
async def kit(client: Client, tmp_path: Path) -> AsyncIterator[HandoffKit]:
    """A worker for the budgeted app whose handoff a burst of bad events has tripped."""
    POS.writes.clear()
    async with tripped(client, tmp_path, APP) as tripped_kit:
        yield tripped_kit


@pytest.fixture
def env(kit: HandoffKit, temporal_env: WorkflowEnvironment) -> dict[str, str]:
    return {
        **cli_env(kit, temporal_env.client.service_client.config.target_host),
        "HANDOFF_APP": "tests.workers.test_cli_budget:APP",
    }


def _token(kit: HandoffKit, name: str, groups: tuple[str, ...], role: Role = Role.OPERATOR) -> str:
    return add_operator(kit.ledger, name, groups, declared_groups=APP.catalog.group_names, role=role)


async def test_a_held_handoff_is_listed_and_an_owner_resumes_it(kit: HandoffKit, env: dict[str, str]) -> None:
    """`budget` lists the hold with its figures; `resume` by a host delivers the held run once and says so."""
    [(workflow_id, booking_id)] = await send_held(kit, 1)
    host = acting_as(env, _token(kit, "ana", ("hosts",)))

    listed = await handoff(env, "budget")
    listed_json = await handoff(env, "budget", "--json")
    resumed = await handoff(host, "budget", "resume", NAME, "--reason", "the source is fixed", "--json")
    result = await kit.result(workflow_id)

    assert [0, 0, 0] == [r.exit_code for r in (listed, listed_json, resumed)], [r.output for r in (listed, resumed)]
    row = next(line for line in listed.stdout.splitlines() if NAME in line and "│" in line)
    assert ["5", "4", "80%", "3600s", "1", "hosts"] == [cell.strip() for cell in row.split("│")][3:9]
    assert f"{NAME}: HELD; 4 of 5 runs opened a case" in listed.stdout
    [shown] = json.loads(listed_json.stdout)
    assert (NAME, "held", 1) == (shown["handoff"], shown["state"], shown["held_runs"])
    decided = json.loads(resumed.stdout)
    assert ("resumed", "ana", [workflow_id]) == (
        decided["hold"]["state"],
        decided["hold"]["decided_by"],
        decided["signalled"],
    )
    assert Stage.DELIVERED == result.stage
    assert {booking_id: 1} == dict(POS.writes)


async def test_reject_ends_the_held_runs_rejected(kit: HandoffKit, env: dict[str, str]) -> None:
    """An administrator may reject the held runs: they end rejected, nothing is delivered, the hold keeps why."""
    [(workflow_id, _)] = await send_held(kit, 1)
    admin = acting_as(env, _token(kit, "root", (), Role.ADMINISTRATOR))

    rejected = await handoff(admin, "budget", "reject", NAME, "--reason", "garbage feed")
    result = await kit.result(workflow_id)

    assert 0 == rejected.exit_code, rejected.output
    assert f"{NAME} rejected: its held runs end rejected (1 run(s) told)" in rejected.stdout
    assert Stage.REJECTED == result.stage and {} == dict(POS.writes)
    assert [("rejected", "root", "garbage feed")] == [
        (hold.state.value, hold.decided_by, hold.reason) for hold in holds_of(kit.ledger, NAME)
    ]


async def test_refusals_and_bad_input(kit: HandoffKit, env: dict[str, str]) -> None:
    """Another group's operator is refused (1), an empty reason is bad input (2), no token is 2, nothing held is 1."""
    [(workflow_id, _)] = await send_held(kit, 1)
    manager = acting_as(env, _token(kit, "max", ("managers",)))
    host = acting_as(env, _token(kit, "ana", ("hosts",)))

    outsider = await handoff(manager, "budget", "resume", NAME, "--reason", "let it go")
    empty = await handoff(host, "budget", "resume", NAME, "--reason", "  ")
    anonymous = await handoff(env, "budget", "resume", NAME, "--reason", "who am I")
    cleared = await handoff(host, "budget", "reject", NAME, "--reason", "done")
    again = await handoff(host, "budget", "resume", NAME, "--reason", "again")
    await kit.result(workflow_id)

    assert [1, 2, 2, 0, 1] == [r.exit_code for r in (outsider, empty, anonymous, cleared, again)]
    assert "Refused (not-allowed): max may not decide the hold" in outsider.stderr
    assert "--reason" in empty.stderr
    assert "Refused (no-active-hold)" in again.stderr
