"""A run keeps the contract version it started under, through a deploy of the next version and a worker restart.

The example's reservation-to-pos (OLD, its current version) refuses parties over 12; NEW, the next version, takes up
to 14. A party of 13 waits on a case under OLD when the worker is replaced by one whose app has moved on to NEW (OLD
lives on only in the lock file): the old run is replayed and judged under OLD, a new party of 13 starts under NEW and
goes straight through.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from examples.restaurant import build_app, reservation_to_pos
from examples.restaurant.app import CONTRACTS
from handoff import DecisionKind, Max, Stage
from handoff.schemas.runs import HandoffInput
from handoff.workers.lock import LockFile, write_lock
from handoff.workers.testkit import running_handoffs
from tests.runtime import payloads

OLD = reservation_to_pos.CONTRACT
NEW = OLD.model_copy(
    update={
        "version": OLD.version + 1,
        "rules": tuple(
            Max(field=rule.field, value=14, reason="Parties over 14 are events, booked by a manager.")
            if isinstance(rule, Max) and rule.field == "reservation.party_size"
            else rule
            for rule in OLD.rules
        ),
    }
)


def party_of_13() -> dict[str, object]:
    return payloads.reservation(reservation__party_size=13, reservation__deposit_cents=5000)


async def test_a_run_finishes_under_the_version_it_started_with(client: Client, tmp_path: Path) -> None:
    lock_file = tmp_path / "handoff.lock"
    v1_app = build_app(f"sqlite:///{tmp_path / 'restaurant.db'}", lock_file=lock_file)
    write_lock(lock_file, LockFile().with_contracts(v1_app.every_version()))  # `handoff lock`, at OLD
    queue = "pinned-versions"

    async with running_handoffs(client, v1_app, tmp_path, sla_scale=1, task_queue=queue) as kit:
        old = await kit.send("reservation.confirmed", party_of_13())
        first_case = await kit.open_case(old.workflow_id)

    moved_on = [NEW, *(contract for contract in CONTRACTS if contract.name != NEW.name)]
    v2_app = build_app(f"sqlite:///{tmp_path / 'restaurant.db'}", lock_file=lock_file, contracts=moved_on)
    assert [NEW.version, NEW.version, OLD.version] == [
        v2_app.catalog.contracts[0].version,
        *sorted((c.version for c in v2_app.every_version() if c.name == OLD.name), reverse=True),
    ]
    async with running_handoffs(client, v2_app, tmp_path, sla_scale=1, task_queue=queue) as kit:
        # Retry re-validates: under OLD the party is still too large, so a second case opens (NEW would deliver).
        await kit.decide(
            old.workflow_id, first_case.id, DecisionKind.RETRY, operator="hana", groups=("front-of-house",)
        )
        status = await kit.wait_for(old.workflow_id, lambda s: len(s.cases) == 2, what="a second case")
        second_case = status.cases[1]
        await kit.decide(
            old.workflow_id, second_case.id, DecisionKind.APPROVE, operator="hana", groups=("front-of-house",)
        )
        old_result = await kit.result(old.workflow_id)
        old_status = await kit.status(old.workflow_id)

        new = await kit.send("reservation.confirmed", party_of_13())
        new_result = await kit.result(new.workflow_id)
        new_status = await kit.status(new.workflow_id)

    assert ["reservation.party_size <= 12"] == [v.rule for v in second_case.violations]
    assert (Stage.DELIVERED, OLD.version, OLD.content_hash()) == (
        old_result.stage,
        old_status.contract_version,
        old_status.contract_hash,
    )
    assert (Stage.DELIVERED, [], NEW.version, NEW.content_hash()) == (
        new_result.stage,
        new_result.cases,
        new_status.contract_version,
        new_status.contract_hash,
    )


async def _first_task_failure(client: Client, workflow_id: str, timeout: float = 15) -> str:
    """The message of the run's first failed workflow task (it is retried; the run itself does not fail)."""
    handle = client.get_workflow_handle(workflow_id)
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for event in (await handle.fetch_history()).events:
            if event.HasField("workflow_task_failed_event_attributes"):
                failure = event.workflow_task_failed_event_attributes.failure
                return str(await client.data_converter.decode_failure(failure))  # its message is encrypted
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id}: no workflow task failed within {timeout}s")


@pytest.mark.parametrize(
    ("handoff", "version", "missing"),
    [
        ("reservation-to-pos", 99, "'reservation-to-pos' v99"),  # a version the app does not have
        ("lead-to-invoice", 1, "'lead-to-invoice' v1"),  # a handoff of another app in this very process
    ],
)
async def test_a_run_this_workers_app_cannot_serve_waits_for_one_that_can(
    client: Client, tmp_path: Path, handoff: str, version: int, missing: str
) -> None:
    """The workflow task fails and is retried (the run stays open, nothing is decided or written) until a worker
    whose app has that contract version takes it."""
    other = build_app(f"sqlite:///{tmp_path / 'other.db'}")  # registers lead-to-invoice on its own task queue
    only_reservations = build_app(f"sqlite:///{tmp_path / 'restaurant.db'}", contracts=[OLD])
    async with (
        running_handoffs(client, other, tmp_path / "other"),
        running_handoffs(client, only_reservations, tmp_path) as kit,
    ):
        handle = await client.start_workflow(
            handoff,
            HandoffInput(event="any", payload=party_of_13(), received_at=datetime.now(UTC), contract_version=version),
            id=f"{handoff}/missing-{uuid.uuid4().hex[:8]}",
            task_queue=kit.settings.task_queue,
        )
        try:
            failure = await _first_task_failure(client, handle.id)
            status = (await handle.describe()).status
        finally:
            await handle.terminate("test over")

    assert f"No handoff {missing} in the app of this worker" in failure
    assert WorkflowExecutionStatus.RUNNING == status
