"""New runs write the ledger with local activities, and set the case's search attributes with the stage they go with.

Runs from before (regular-activity ledger writes, an upsert each) replay unchanged: `test_replay.py` checks that on
the saved histories.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from examples.restaurant import RestaurantApp
from handoff.schemas.activities import RECORD_STAGE_CHANGE
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit
from handoff.workflows import search_attributes as sa
from tests.runtime import payloads

FRONT_OF_HOUSE = ("front-of-house",)
UPSERT = EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES


async def _history(kit: HandoffKit, workflow_id: str) -> WorkflowHistory:
    return await kit.client.get_workflow_handle(workflow_id).fetch_history()


def _scheduled(history: WorkflowHistory) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def _markers(history: WorkflowHistory) -> list[str]:
    return [
        event.marker_recorded_event_attributes.marker_name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


def _upserted(event: HistoryEvent) -> set[str]:
    return set(event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)


async def test_a_happy_run_writes_its_stage_changes_as_local_activities(kit: HandoffKit) -> None:
    """The three stage changes are local-activity markers; only the look-ups and the delivery are activities."""
    accepted = await kit.send("reservation.confirmed", payloads.reservation())
    result = await kit.result(accepted.workflow_id)
    history = await _history(kit, accepted.workflow_id)

    assert Stage.DELIVERED == result.stage
    assert RECORD_STAGE_CHANGE not in _scheduled(history)
    assert 3 == _markers(history).count("core_local_activity")


async def test_a_case_sets_and_unsets_its_owner_and_id_in_the_stage_upserts(
    kit: HandoffKit, restaurant: RestaurantApp
) -> None:
    """The case's owner group and id go in the same upsert as awaiting-decision, and leave with the next stage; the
    run's history replays on the same code."""
    accepted = await kit.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    case = await kit.open_case(accepted.workflow_id)
    await kit.decide(
        accepted.workflow_id, case.id, DecisionKind.REJECT, operator="hana", groups=FRONT_OF_HOUSE, reason="no"
    )
    result = await kit.result(accepted.workflow_id)
    history = await _history(kit, accepted.workflow_id)

    upserts = [_upserted(event) for event in history.events if event.event_type == UPSERT]
    with_case = [names for names in upserts if {sa.OWNER_GROUP.name, sa.CASE_ID.name} & names]
    assert Stage.REJECTED == result.stage
    assert [] == [name for name in _scheduled(history) if name.startswith("record_")]
    assert 2 == len(with_case)
    assert all({sa.OWNER_GROUP.name, sa.CASE_ID.name, sa.HANDOFF_STAGE.name} <= names for names in with_case)
    replayed = await Replayer(
        workflows=[], plugins=[restaurant.plugin(ledger=kit.ledger, decision_key=kit.decision_key)]
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert None is replayed.replay_failure
