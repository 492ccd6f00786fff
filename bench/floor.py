"""What an update costs on this server, whatever the workflow: the floor under latency's round trips.

`Floor` waits, like a parked run; its `decide` update returns at once (`nothing`), or after one local activity that
does nothing (`one local activity`: the least a workflow can do before answering if the answer must wait for
something outside it, as a decision waits for the ledger). On a cached run, sandboxed, temporalio's default
converter, a worker of its own on the same kind of embedded server as the flavours'. latency.py prints it beside the
round trips: a round-trip goal below the floor is out of reach for any workflow on this machine.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():  # the sandbox imports this module afresh for every run
    from figures import percentile

KINDS = {"nothing": 0, "one local activity": 1}


@activity.defn
async def nothing() -> None:
    """The local activity's work: none."""


@workflow.defn
class Floor:
    def __init__(self) -> None:
        self.decided = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.decided)

    @workflow.update
    async def decide(self, local_activities: int) -> None:
        for _ in range(local_activities):
            await workflow.execute_local_activity(nothing, start_to_close_timeout=timedelta(seconds=10))
        self.decided = True


async def measure_floor(client: Client, n: int) -> dict[str, dict[int, float]]:
    """p50 / p90 / p99 of the update's round trip (ms), per kind, over `n` parked runs each, alternating kinds."""
    task_queue = f"floor-{uuid.uuid4()}"
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    async with Worker(client, task_queue=task_queue, workflows=[Floor], activities=[nothing]):
        handles = {
            kind: [
                await client.start_workflow(Floor.run, id=f"floor-{uuid.uuid4()}", task_queue=task_queue)
                for _ in range(n)
            ]
            for kind in KINDS
        }
        await asyncio.sleep(1)  # every run has taken its first workflow task: parked, and in the worker's cache
        for index in range(n):
            for kind, local_activities in KINDS.items():
                handle = handles[kind][index]
                sent = time.perf_counter()
                await handle.execute_update(Floor.decide, local_activities)
                samples[kind].append((time.perf_counter() - sent) * 1000)
                await handle.result()
    return {kind: {q: percentile(mine, q) for q in (50, 90, 99)} for kind, mine in samples.items()}
