"""Saved histories of every catalog handoff replay without non-determinism on today's workflow code.

This is how a change to a rule or to the workflow is checked against runs in flight: if a change would make an
old history take another path, the SDK's Replayer raises here. (Record with `python -m tests.histories.record`.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.catalog import CATALOG
from workflows.handoff import HandoffWorkflow

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_every_catalog_handoff_has_recorded_histories() -> None:
    """Each handoff in the catalog has at least one saved history, so none escapes the replay check."""
    recorded = {path.name.rsplit("-", 1)[0] for path in HISTORIES}
    assert all(any(name.startswith(c.name) for name in recorded) for c in CATALOG.contracts)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_without_non_determinism(path: Path) -> None:
    """The Replayer re-runs the recorded history against the current code and finds the same commands."""
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[HandoffWorkflow], data_converter=pydantic_data_converter)

    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)

    assert result.replay_failure is None
