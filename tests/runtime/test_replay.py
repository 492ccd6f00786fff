"""Saved histories of every handoff of the restaurant app replay without non-determinism on today's workflow code.

This is how a change to a rule or to the workflow is checked against runs in flight: if a change would make an
old history take another path, the SDK's Replayer raises here. (Record with `python -m tests.histories.record`.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from examples.restaurant import RestaurantApp, build_app, reservation_to_pos
from examples.restaurant.app import CONTRACTS, LOCK_FILE
from handoff import Max
from handoff.activities.ledger.database import make_engine
from handoff.schemas.activities import DELIVER

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_every_handoff_of_the_app_has_recorded_histories(restaurant: RestaurantApp) -> None:
    """Each handoff of the restaurant app has at least one saved history, so none escapes the replay check."""
    recorded = {path.name.rsplit("-", 1)[0] for path in HISTORIES}
    assert all(any(name.startswith(c.name) for name in recorded) for c in restaurant.catalog.contracts)


@pytest.fixture
def replayer(restaurant: RestaurantApp, tmp_path: Path) -> Iterator[Replayer]:
    """A Replayer with the app's plugin, as a worker has it: the workflow, the converter, the app's contracts."""
    # A replay runs no activity, so the ledger stays empty; it is given so the plugin opens none of its own.
    ledger = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        yield Replayer(workflows=[], plugins=[restaurant.plugin(ledger=ledger)])  # the plugin adds the workflow
    finally:
        ledger.dispose()


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_without_non_determinism(path: Path, replayer: Replayer) -> None:
    """The Replayer re-runs the recorded history against the current code and finds the same commands."""
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert None is result.replay_failure


async def test_history_that_took_another_path_is_non_deterministic(replayer: Replayer) -> None:
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

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert isinstance(result.replay_failure, NondeterminismError)
    assert "deliver_by_fax" in str(result.replay_failure)


# Recorded while the example's reservation-to-pos was at v1: the untagged files (tagged ones came later, at v2).
RESERVATION_HISTORIES = [p for p in HISTORIES if p.stem.startswith("reservation-to-pos") and len(p.suffixes) == 1]


def _moved_on(lock_file: Path | None, tmp_path: Path) -> RestaurantApp:
    """The restaurant app after a rule change shipped as v2 (parties up to 14); v1 lives only in `lock_file`."""
    v1 = reservation_to_pos.CONTRACT
    rules = tuple(
        Max(field=rule.field, value=14, reason="Parties over 14 are events.")
        if isinstance(rule, Max) and rule.field == "reservation.party_size"
        else rule
        for rule in v1.rules
    )
    v2 = v1.model_copy(update={"version": 2, "rules": rules})
    contracts = [v2, *(contract for contract in CONTRACTS if contract.name != v1.name)]
    return build_app(f"sqlite:///{tmp_path / 'restaurant.db'}", contracts=contracts, lock_file=lock_file)


@pytest.mark.parametrize("path", RESERVATION_HISTORIES, ids=[p.stem for p in RESERVATION_HISTORIES])
async def test_histories_replay_after_a_rule_change_shipped_as_a_new_version(path: Path, tmp_path: Path) -> None:
    """The example's v1 runs replay under v1, rebuilt from the lock file, though the app's code now says v2."""
    ledger = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    history = WorkflowHistory.from_json(f"replay-v2-{path.stem}", path.read_text())
    try:
        with_lock = Replayer(workflows=[], plugins=[_moved_on(LOCK_FILE, tmp_path).plugin(ledger=ledger)])
        without = Replayer(workflows=[], plugins=[_moved_on(None, tmp_path).plugin(ledger=ledger)])
        kept = await with_lock.replay_workflow(history, raise_on_replay_failure=False)
        lost = await without.replay_workflow(history, raise_on_replay_failure=False)
    finally:
        ledger.dispose()

    assert None is kept.replay_failure
    assert lost.replay_failure is not None  # without v1, the run cannot be replayed as it ran
