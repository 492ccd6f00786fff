"""The best hand-written workflow's worker (bench/best.py): built in process by the harness, or run as its own process
for bench/parked.py, exactly as `bare_worker.py` runs the bare one (same settings, ledger, systems, plain pydantic
client).

    HANDOFF_TEMPORAL_ADDRESS=... HANDOFF_TASK_QUEUE=... HANDOFF_HOME=... .venv/bin/python bench/best_worker.py

The same activities as bare's (`BareActivities`, deliveries recorded under best's name); the ledger writes and the
look-up are called as local activities by the workflow, the delivery as a regular one. A local activity must still be
registered on the worker: the worker runs it.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

# The restaurant is a user package at the repository's root, not installed with Handoff (see harness.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from examples.restaurant.systems import RestaurantSystems
from handoff.workers.settings import Settings

from bare_activities import BareActivities
from bare_worker import serve_process


def build_best_worker(
    client: Client, settings: Settings, *, ledger: Engine, systems: RestaurantSystems, task_queue: str | None = None
) -> Worker:
    """The best worker, with the same concurrency, cache and shutdown settings as Handoff's and bare's."""
    from best import NAME, BestReservationToPos  # the workflow module imports bare_activities: import it late

    acts = BareActivities(ledger, systems, handoff=NAME)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[BestReservationToPos],
        activities=[acts.record_stage, acts.look_up_table, acts.deliver_to_pos],
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
    )


if __name__ == "__main__":
    serve_process(build_best_worker)
