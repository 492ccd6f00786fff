"""The worker process: it refuses unready contracts, and on SIGTERM lets in-flight activities finish."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from handoff.activities.systems import DemoSystems
from handoff.schemas.contract import Catalog, HandoffContract
from handoff.workers.trigger import trigger
from handoff.workers.worker import CatalogNotReady, gate
from handoff.workflows.catalog import CATALOG
from tests.runtime import payloads
from tests.runtime.processes import handoff_env, handoff_process
from tests.runtime.test_durability import _deliveries


def test_the_gate_refuses_a_catalog_with_an_unready_contract(tmp_path: Path) -> None:
    """A contract without its answers stops the worker before it polls, with the gate's findings in the error."""
    unready = Catalog(groups=CATALOG.groups, contracts=(*CATALOG.contracts, HandoffContract(name="guesswork")))

    with DemoSystems(f"sqlite:///{tmp_path / 'systems.db'}") as systems, pytest.raises(CatalogNotReady) as refused:
        gate(unready, systems)

    assert {"guesswork"} == {finding.contract for finding in refused.value.readiness.findings}
    assert "guesswork: [no-trigger]" in str(refused.value)


def test_the_gate_lets_the_catalog_through(tmp_path: Path) -> None:
    """The shipped catalog passes the gate with the demo systems' checks and systems."""
    with DemoSystems(f"sqlite:///{tmp_path / 'systems.db'}") as systems:
        gate(CATALOG, systems)


async def test_sigterm_lets_an_in_flight_delivery_finish(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """SIGTERM during a delivery: the worker stops polling, the activity completes and is recorded, exit code 0."""
    client = temporal_env.client
    queue = f"graceful-{uuid.uuid4().hex[:8]}"
    env = handoff_env(
        tmp_path,
        client.service_client.config.target_host,
        queue,
        delivery_pause_seconds="2",
        graceful_shutdown_seconds="20",
    )
    accepted = await trigger(client, CATALOG, "order.placed", payloads.order(), task_queue=queue)

    with (
        handoff_process(["worker"], env, tmp_path / "worker.log") as worker,
        DemoSystems(f"sqlite:///{tmp_path / 'systems.db'}") as systems,
    ):
        for _ in range(300):
            if systems.rows("kitchen"):
                break
            await asyncio.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 30)

    assert 0 == code
    assert ["kitchen", "payments"] == _deliveries(tmp_path, accepted.workflow_id)
    assert b"worker.stopped" in (tmp_path / "worker.log").read_bytes()
