"""Saved histories of every catalog handoff replay without non-determinism on today's workflow code.

This is how a change to a rule or to the workflow is checked against runs in flight: if a change would make an
old history take another path, the SDK's Replayer raises here. (Record with `python -m tests.histories.record`.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from handoff.schemas.activities import DELIVER
from handoff.workflows.catalog import CATALOG
from handoff.workflows.handoff import HandoffWorkflow

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_every_catalog_handoff_has_recorded_histories() -> None:
    """Each handoff in the catalog has at least one saved history, so none escapes the replay check."""
    recorded = {path.name.rsplit("-", 1)[0] for path in HISTORIES}
    assert all(any(name.startswith(c.name) for name in recorded) for c in CATALOG.contracts)


def _replayer() -> Replayer:
    return Replayer(workflows=[HandoffWorkflow], data_converter=pydantic_data_converter)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_without_non_determinism(path: Path) -> None:
    """The Replayer re-runs the recorded history against the current code and finds the same commands."""
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())

    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)

    assert None is result.replay_failure


async def test_history_that_took_another_path_is_non_deterministic() -> None:
    """A history whose delivery was scheduled as another activity no longer matches the code: the replay fails."""
    path = next(p for p in HISTORIES if p.stem.endswith("-delivered"))
    recorded = json.loads(path.read_text())
    deliver = next(
        event["activityTaskScheduledEventAttributes"]["activityType"]
        for event in recorded["events"]
        if DELIVER == event.get("activityTaskScheduledEventAttributes", {}).get("activityType", {}).get("name")
    )
    deliver["name"] = "deliver_by_fax"
    history = WorkflowHistory.from_json(f"replay-tampered-{path.stem}", json.dumps(recorded))

    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)

    assert isinstance(result.replay_failure, NondeterminismError)
    assert "deliver_by_fax" in str(result.replay_failure)
