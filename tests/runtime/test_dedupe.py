"""One event, one run: the same event delivered again finds the existing run, open or finished."""

from __future__ import annotations

import asyncio

from examples.restaurant import RestaurantApp
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit
from tests.runtime import payloads
from tests.runtime.test_cases import bad_reservation


async def test_the_same_event_ten_times_gives_one_run(kit: HandoffKit) -> None:
    """Ten concurrent sends of one event answer with one workflow id and one run id; nine say duplicate."""
    body = bad_reservation()  # stays open (awaiting a decision) while the repeats arrive

    answers = await asyncio.gather(*(kit.send("reservation.confirmed", body) for _ in range(10)))

    assert 1 == len({(a.workflow_id, a.run_id) for a in answers})
    assert 9 == sum(a.duplicate for a in answers)
    runs: list[object] = []
    for _ in range(50):  # visibility is eventually consistent
        runs = [w async for w in kit.client.list_workflows(f'WorkflowId = "{answers[0].workflow_id}"')]
        if runs:
            break
        await asyncio.sleep(0.1)
    assert 1 == len(runs)


async def test_a_repeat_after_the_run_finished_returns_the_finished_run(
    kit: HandoffKit, restaurant: RestaurantApp
) -> None:
    """After the run finished, the repeated event returns that run (reuse is rejected), never a second run."""
    body = payloads.order()
    first = await kit.send("order.placed", body)
    assert Stage.DELIVERED == (await kit.result(first.workflow_id)).stage

    again = await kit.send("order.placed", body)

    assert (first.workflow_id, first.run_id, True) == (again.workflow_id, again.run_id, again.duplicate)
    assert 1 == len(restaurant.systems.rows("kitchen"))
