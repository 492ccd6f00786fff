"""Drift checks from the command line and on a clock, on the real dev server: `handoff schedules sync` makes each
contract's drift check a Temporal Schedule (idempotent, deleted with the check), a firing opens drift cases, and
`handoff drift check` runs one check now and prints what differs; `handoff report` counts the drift per system.

The systems are the in-memory test systems of `tests.runtime.test_drift` (fakes at the adapter boundary).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from handoff import Handoffs
from handoff.workers.testkit import running_handoffs
from tests.runtime.test_drift import World, deliver, drift_app
from tests.workers.cli_runner import cli_env, handoff
from tests.workflows.sample_contracts import GROUPS, ready_contract

HANDOFF = "drift-cli-bookings"
SCHEDULE_ID = f"handoff/{HANDOFF}/drift"
MODULE = "tests.workers.test_drift_cli"

WORLD = World()
APP = drift_app(WORLD, name=HANDOFF)
UNCHECKED = Handoffs(groups=GROUPS, contracts=(ready_contract(name=HANDOFF),))
UNCHECKED.source("bookings")
UNCHECKED.system("pos", WORLD.pos)


async def _listed(client: Client, schedule_id: str, timeout: float = 10) -> None:
    """Wait until Temporal's visibility (about a second behind) lists the schedule, as a later sync reads it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not [s async for s in await client.list_schedules() if s.id == schedule_id]:
        assert asyncio.get_running_loop().time() < deadline, f"{schedule_id} was never listed"
        await asyncio.sleep(0.2)


async def test_drift_schedule_sync_firing_and_the_check_command(
    client: Client, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Sync creates the drift schedule once; its firing opens the drift case; `handoff drift check` names the field;
    dropping the drift check deletes the schedule."""
    async with running_handoffs(client, APP, tmp_path) as kit:
        env = cli_env(kit, temporal_env.client.service_client.config.target_host)
        drifted = await deliver(kit, WORLD, "Ada")
        WORLD.pos.records[drifted]["guest_name"] = "Ada L."

        created = await handoff(env, "schedules", "sync", "--app", f"{MODULE}:APP")
        again = await handoff(env, "schedules", "sync", "--app", f"{MODULE}:APP")
        listed = await handoff(env, "schedules", "--json", "--app", f"{MODULE}:APP")
        assert f"created {SCHEDULE_ID}" in created.stdout, created.stdout + created.stderr
        assert "Nothing changed: 1 schedule(s) already match the app." in again.stdout
        [row] = json.loads(listed.stdout)
        assert (SCHEDULE_ID, HANDOFF, "drift check every 1:00:00", "in sync") == (
            row["id"],
            row["handoff"],
            row["spec"],
            row["status"],
        )

        await kit.client.get_schedule_handle(SCHEDULE_ID).trigger()
        case = await kit.open_case(f"{drifted}/drift-1", timeout=30)
        checked = await handoff(env, "drift", "check", "--app", f"{MODULE}:APP", "--handoff", HANDOFF)

        [violation] = case.violations
        assert ("guest.name", "Ada L.") == (violation.field, violation.value)
        assert 0 == checked.exit_code, checked.stdout + checked.stderr
        assert f"{HANDOFF}: 1 delivered run(s) compared, 1 drifted" in checked.stdout
        assert f"{drifted}: pos.guest_name (guest.name): copy 'Ada L.', source 'Ada'" in checked.stdout
        assert f"case held by drift run {drifted}/drift-1" in checked.stdout
        reported = await handoff(env, "report", "--app", f"{MODULE}:APP")
        assert f"{HANDOFF}: drift in pos: 1 case(s), 1 open" in reported.stdout, reported.stdout + reported.stderr

        await _listed(kit.client, SCHEDULE_ID)
        deleted = await handoff(env, "schedules", "sync", "--app", f"{MODULE}:UNCHECKED")
        assert f"deleted {SCHEDULE_ID}" in deleted.stdout, deleted.stdout + deleted.stderr
        with pytest.raises(RPCError) as gone:
            await kit.client.get_schedule_handle(SCHEDULE_ID).describe()
        assert RPCStatusCode.NOT_FOUND == gone.value.status


async def test_the_check_command_refuses_a_handoff_without_a_drift_check_or_unknown(
    client: Client, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Nothing to check is an error naming what to add; an unknown handoff is a usage error naming the known ones."""
    async with running_handoffs(client, UNCHECKED, tmp_path) as kit:
        env = cli_env(kit, temporal_env.client.service_client.config.target_host)
        unchecked = await handoff(env, "drift", "check", "--app", f"{MODULE}:UNCHECKED", "--handoff", HANDOFF)
        nothing = await handoff(env, "drift", "check", "--app", f"{MODULE}:UNCHECKED")
        unknown = await handoff(env, "drift", "check", "--app", f"{MODULE}:UNCHECKED", "--handoff", "nope")

    assert 1 == unchecked.exit_code and "declares no drift check" in unchecked.stderr
    assert 1 == nothing.exit_code and "No handoff of the app declares a drift check" in nothing.stderr
    assert 2 == unknown.exit_code and HANDOFF in unknown.stderr
