"""Worker metrics: `handoff worker` with HANDOFF_METRICS_PORT serves the Temporal SDK's Prometheus metrics.

The worker runs as its own process (as in production): the SDK allows one Runtime per process, and the test
session's client already made one without metrics.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from examples.restaurant import app as restaurant_app
from handoff.schemas.runs import HandoffResult, Stage
from handoff.workers.trigger import trigger
from tests.runtime import payloads
from tests.runtime.processes import free_port, handoff_env, handoff_process, wait_for_port


async def test_worker_serves_prometheus_metrics_and_stops_cleanly(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """After a handoff ran through it, the worker's /metrics shows the SDK's counters; SIGTERM exits 0."""
    client = temporal_env.client
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = handoff_env(tmp_path, client.service_client.config.target_host, queue, metrics_port=str(port))

    with handoff_process(["worker"], env, tmp_path / "worker.log") as worker:
        await asyncio.to_thread(wait_for_port, port)
        accepted = await trigger(client, restaurant_app.catalog, "order.placed", payloads.order(), task_queue=queue)
        handle = client.get_workflow_handle(accepted.workflow_id, result_type=HandoffResult)
        result = await asyncio.wait_for(handle.result(), timeout=15)
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 15)

    assert Stage.DELIVERED == result.stage
    assert 200 == response.status_code
    samples = _samples(response.text)
    # Names as the SDK's Prometheus exporter writes them (checked against its output): a completed workflow and
    # the activities of the run were counted on this task queue, and the worker reports its free slots.
    # The workflow type is the handoff's name.
    assert 1 == samples[("temporal_workflow_completed", f'task_queue="{queue}"', 'workflow_type="order-to-kitchen"')]
    assert {"deliver"} <= _activity_types(samples, queue)
    assert {"run_lookups", "record_stage_change"} <= _activity_types(samples, queue, local=True)  # `local-activities`
    assert 0 < samples[("temporal_worker_task_slots_available", f'task_queue="{queue}"')]
    assert 0 == code, (tmp_path / "worker.log").read_text()


def _samples(text: str) -> dict[tuple[str, ...], float]:
    """Prometheus text: (metric name, the labels this test looks at...) -> value, summed over the other labels."""
    samples: dict[tuple[str, ...], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        wanted = sorted(
            label
            for label in labels.rstrip("}").split(",")
            if label.startswith(("task_queue=", "workflow_type=", "activity_type="))
        )
        key = (name, *wanted)
        samples[key] = samples.get(key, 0) + float(value)
    return samples


def _activity_types(samples: dict[tuple[str, ...], float], queue: str, *, local: bool = False) -> set[str]:
    metric = "temporal_local_activity_execution_latency_count" if local else "temporal_activity_execution_latency_count"
    return {
        label.split("=", 1)[1].strip('"')
        for name, *labels in samples
        if name == metric and f'task_queue="{queue}"' in labels
        for label in labels
        if label.startswith("activity_type=")
    }
