"""Nothing is lost when a process dies: a killed worker or a restarted server leaves every run to finish, and every
target row written exactly once."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from examples.restaurant import app as restaurant_app
from handoff.activities.ledger.database import make_engine
from handoff.activities.ledger.operators import add_operator
from handoff.activities.ledger.tables import DeliveryRow
from handoff.schemas.cases import DecisionRequest
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import HandoffResult, HandoffStatus, Stage
from handoff.workers.codec import Keyring, handoff_data_converter
from handoff.workers.decisions import decide
from handoff.workers.testkit import TEST_DECISION_KEY
from handoff.workers.trigger import trigger
from tests.runtime import payloads
from tests.runtime.processes import (
    connect_when_healthy,
    free_port,
    handoff_env,
    handoff_process,
    restaurant_systems,
    wait_for_port,
)
from tests.runtime.test_cases import bad_reservation

HANDOFF_CONVERTER = handoff_data_converter(Keyring.of(TEST_DECISION_KEY.encode()))
"""What the workers here (started with TEST_DECISION_KEY) encrypt payloads with: a plain client cannot read them."""


async def _status(client: Client, workflow_id: str) -> HandoffStatus:
    return await client.get_workflow_handle(workflow_id).query("status", result_type=HandoffStatus)


async def _wait_for_stage(client: Client, workflow_id: str, stage: Stage, timeout: float = 30) -> HandoffStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            status = await _status(client, workflow_id)
            if status.stage is stage:
                return status
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{workflow_id} did not reach {stage.value}")
        await asyncio.sleep(0.1)


def _result(client: Client, workflow_id: str) -> asyncio.Future[HandoffResult]:
    handle = client.get_workflow_handle(workflow_id, result_type=HandoffResult)
    return asyncio.ensure_future(asyncio.wait_for(handle.result(), timeout=60))


def _add_host(home: Path) -> None:
    """hana, of front-of-house, in the ledger of the `handoff` processes run with `home` (their worker made it)."""
    ledger = make_engine(f"sqlite:///{home / 'ledger.db'}")
    add_operator(ledger, "hana", ["front-of-house"], declared_groups=restaurant_app.catalog.group_names)
    ledger.dispose()


def _deliveries(home: Path, workflow_id: str) -> list[str]:
    ledger = make_engine(f"sqlite:///{home / 'ledger.db'}")
    with Session(ledger) as session:
        rows = session.exec(select(DeliveryRow).where(DeliveryRow.workflow_id == workflow_id)).all()
    ledger.dispose()
    return sorted(row.system for row in rows)


async def test_a_worker_killed_while_a_case_is_open_leaves_the_run_to_the_next(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """SIGKILL a worker holding an open case; a new worker takes the decision and delivers once."""
    client = temporal_env.client
    queue = f"durability-{uuid.uuid4().hex[:8]}"
    env = handoff_env(tmp_path, client.service_client.config.target_host, queue, sla_scale="1000")
    accepted = await trigger(
        client, restaurant_app.catalog, "reservation.confirmed", bad_reservation(), task_queue=queue
    )

    with handoff_process(["worker"], env, tmp_path / "worker-1.log") as first:
        status = await _wait_for_stage(client, accepted.workflow_id, Stage.AWAITING_DECISION)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    _add_host(tmp_path)
    with handoff_process(["worker"], env, tmp_path / "worker-2.log"):
        await decide(
            client,
            accepted.workflow_id,
            DecisionRequest(
                case_id=status.cases[0].id,
                decision=DecisionKind.APPROVE,
                operator="hana",
                operator_groups=("front-of-house",),
                reason="confirmed by phone",
            ),
            key=TEST_DECISION_KEY.encode(),
        )
        result = await _result(client, accepted.workflow_id)

    assert Stage.DELIVERED == result.stage
    with restaurant_systems(tmp_path) as systems:
        assert [accepted.workflow_id] == [row["record_key"] for row in systems.rows("pos")]
    assert ["pos"] == _deliveries(tmp_path, accepted.workflow_id)


async def test_a_worker_killed_in_the_middle_of_delivery_writes_nothing_twice(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """SIGKILL the worker after it wrote to the systems but before it acknowledged; the retry writes nothing again."""
    client = temporal_env.client
    queue = f"durability-{uuid.uuid4().hex[:8]}"
    home = tmp_path
    slow = handoff_env(home, client.service_client.config.target_host, queue, delivery_pause_seconds="30")
    accepted = await trigger(client, restaurant_app.catalog, "order.placed", payloads.order(), task_queue=queue)

    with (
        handoff_process(["worker"], slow, tmp_path / "worker-1.log") as first,
        restaurant_systems(home) as systems,
    ):
        for _ in range(300):
            if systems.rows("kitchen") and systems.rows("payments"):
                break
            await asyncio.sleep(0.1)
        assert Stage.DELIVERING == (await _status(client, accepted.workflow_id)).stage
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    fast = handoff_env(home, client.service_client.config.target_host, queue)
    with handoff_process(["worker"], fast, tmp_path / "worker-2.log"):
        result = await _result(client, accepted.workflow_id)

    assert Stage.DELIVERED == result.stage
    with restaurant_systems(home) as systems:
        assert 1 == len(systems.rows("kitchen"))
        assert 1 == len(systems.rows("payments"))
    assert ["kitchen", "payments"] == _deliveries(home, accepted.workflow_id)


async def test_runs_survive_a_server_restart_on_the_same_database(tmp_path: Path) -> None:
    """Stop the embedded server while a case is open, start it again on the same file: the run completes."""
    port = free_port()
    server_env = handoff_env(tmp_path, f"127.0.0.1:{port}", "restart", server_port=str(port), server_ui="false")
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    worker_env = handoff_env(tmp_path, f"127.0.0.1:{port}", queue, sla_scale="1000")

    with handoff_process(["server"], server_env, tmp_path / "server-1.log") as server:
        wait_for_port(port)
        client = await connect_when_healthy(f"127.0.0.1:{port}", data_converter=HANDOFF_CONVERTER)
        accepted = await trigger(
            client, restaurant_app.catalog, "reservation.confirmed", bad_reservation(), task_queue=queue
        )
        with handoff_process(["worker"], worker_env, tmp_path / "worker-1.log"):
            status = await _wait_for_stage(client, accepted.workflow_id, Stage.AWAITING_DECISION)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    with handoff_process(["server"], server_env, tmp_path / "server-2.log"):
        wait_for_port(port)
        client = await connect_when_healthy(f"127.0.0.1:{port}", data_converter=HANDOFF_CONVERTER)
        with handoff_process(["worker"], worker_env, tmp_path / "worker-2.log"):
            await _wait_for_stage(client, accepted.workflow_id, Stage.AWAITING_DECISION)
            _add_host(tmp_path)
            await decide(
                client,
                accepted.workflow_id,
                DecisionRequest(
                    case_id=status.cases[0].id,
                    decision=DecisionKind.CORRECT,
                    operator="hana",
                    operator_groups=("front-of-house",),
                    reason="fixed after the restart",
                    patch={
                        "reservation.party_size": 4,
                        "guest.name": "Ada",
                        "reservation.channel": "web",
                        "reservation.table_number": "T3",
                    },
                ),
                key=TEST_DECISION_KEY.encode(),
            )
            result = await _result(client, accepted.workflow_id)

    assert Stage.DELIVERED == result.stage
    assert ["pos"] == _deliveries(tmp_path, accepted.workflow_id)
