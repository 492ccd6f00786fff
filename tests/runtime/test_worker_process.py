"""The worker process: it refuses an unready app, and on SIGTERM lets in-flight activities finish."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from examples.restaurant import RestaurantApp, build_app
from examples.restaurant import app as restaurant_app
from handoff import AppNotReady, HandoffContract
from handoff.activities.ledger.database import make_engine
from handoff.workers.trigger import trigger
from tests.runtime import payloads
from tests.runtime.processes import handoff_env, handoff_process, restaurant_systems
from tests.runtime.test_durability import _deliveries


@pytest.fixture
def unready(tmp_path: Path) -> Iterator[RestaurantApp]:
    """The restaurant app with one more contract that answers nothing: no trigger, no rules, no owner."""
    app = build_app(f"sqlite:///{tmp_path / 'restaurant.db'}")
    app.add(HandoffContract(name="guesswork"))
    try:
        yield app
    finally:
        app.systems.dispose()


def test_the_gate_refuses_an_app_with_an_unready_contract(unready: RestaurantApp) -> None:
    """A contract without its answers makes the app unready, with the gate's findings in the error."""
    with pytest.raises(AppNotReady) as refused:
        unready.raise_unless_ready()

    assert {"guesswork"} == {finding.contract for finding in refused.value.readiness.findings}
    assert "guesswork: [no-trigger]" in str(refused.value)


async def test_the_plugin_refuses_to_build_a_worker_for_an_unready_app(
    client: Client, unready: RestaurantApp, tmp_path: Path
) -> None:
    """Any Worker given the app's plugin refuses to be built, so an unready app never polls."""
    ledger = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with pytest.raises(AppNotReady) as refused:
            Worker(client, task_queue=f"unready-{uuid.uuid4().hex[:8]}", plugins=[unready.plugin(ledger=ledger)])
    finally:
        ledger.dispose()

    assert {"guesswork"} == {finding.contract for finding in refused.value.readiness.findings}
    assert "guesswork: [no-trigger]" in str(refused.value)


def test_the_gate_lets_the_restaurant_app_through(restaurant: RestaurantApp) -> None:
    """The restaurant app passes the gate with the look-ups and systems it registers."""
    restaurant.raise_unless_ready()


async def test_a_worker_process_for_an_unready_app_exits_2_with_the_findings(
    temporal_env: WorkflowEnvironment, unready: RestaurantApp, tmp_path: Path
) -> None:
    """`handoff worker` with an unready app prints the gate's findings and exits 2, before it polls."""
    (tmp_path / "unready_app.py").write_text(
        textwrap.dedent(
            """
            from examples.restaurant import build_app
            from handoff import HandoffContract

            app = build_app()
            app.add(HandoffContract(name="guesswork"))
            """
        )
    )
    queue = f"unready-{uuid.uuid4().hex[:8]}"
    env = handoff_env(tmp_path, temporal_env.client.service_client.config.target_host, queue, app="unready_app:app")
    # `handoff` imports the app from the current directory (the repository, for `examples`), and this one from here.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))

    with handoff_process(["worker"], env, tmp_path / "worker.log") as worker:
        code = await asyncio.to_thread(worker.wait, 30)

    log = (tmp_path / "worker.log").read_text()
    printed = " ".join(log.split())  # the console wraps long lines
    findings = unready.readiness().findings
    assert 2 == code, log
    assert "The app is not ready; the worker refuses to start:" in printed
    assert {"guesswork"} == {finding.contract for finding in findings}
    assert [] == [
        f.message
        for f in findings
        if f"guesswork: [{f.kind.value}] {f.subject}: {' '.join(f.message.split())}" not in printed
    ], log


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
    accepted = await trigger(client, restaurant_app.catalog, "order.placed", payloads.order(), task_queue=queue)

    with (
        handoff_process(["worker"], env, tmp_path / "worker.log") as worker,
        restaurant_systems(tmp_path) as systems,
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
