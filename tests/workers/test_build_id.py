"""A worker built with Handoff's plugin names its build from its workflows' code and contracts (`build_id.py`), the
id Temporal records on every workflow task it completes, instead of temporalio's default (a hash of every loaded
module's bytecode: 0.2 s of a worker's start)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from examples.restaurant import RestaurantApp, reservation_to_pos
from handoff.workers.build_id import build_id
from handoff.workers.testkit import HandoffKit
from handoff.workflows.handoff import HandoffWorkflow
from tests.runtime import payloads

KEY = b"k" * 32


def built(client: Client, app: RestaurantApp, tmp_path: Path, **options: object) -> str:
    worker = Worker(
        client,
        task_queue=f"build-id-{uuid4()}",  # the SDK allows one worker per task queue in a process
        plugins=[app.plugin(ledger=f"sqlite:///{tmp_path / 'ledger.db'}", decision_key=KEY)],
        **options,  # type: ignore[arg-type]
    )
    return str(worker.config(active_config=True).get("build_id"))


async def test_the_plugin_names_the_build_and_the_same_app_gets_the_same_name(
    client: Client, restaurant: RestaurantApp, tmp_path: Path
) -> None:
    first, again = built(client, restaurant, tmp_path), built(client, restaurant, tmp_path)

    assert (first, True) == (again, first.startswith("handoff-"))


async def test_a_new_contract_version_is_a_new_build(client: Client, restaurant: RestaurantApp, tmp_path: Path) -> None:
    before = built(client, restaurant, tmp_path)
    current = reservation_to_pos.CONTRACT
    restaurant.add(current.model_copy(update={"version": current.version + 1}))

    assert before != built(client, restaurant, tmp_path)


async def test_a_build_id_given_to_the_worker_is_kept(
    client: Client, restaurant: RestaurantApp, tmp_path: Path
) -> None:
    assert "ci-1234" == built(client, restaurant, tmp_path, build_id="ci-1234")


def test_a_change_to_another_workflow_module_is_a_new_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's own workflow in the same worker counts too."""
    module = tmp_path / "their_workflow.py"

    def name_with(body: str) -> str:
        module.write_text(f"class TheirWorkflow:\n    {body}\n")
        spec = importlib.util.spec_from_file_location("their_workflow", module)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "their_workflow", loaded)
        spec.loader.exec_module(loaded)
        return build_id([HandoffWorkflow, loaded.TheirWorkflow], [reservation_to_pos.CONTRACT])

    assert name_with("step = 1") != name_with("step = 2")
    assert name_with("step = 1") == name_with("step = 1")


async def test_temporal_records_the_build_on_each_workflow_task(kit: HandoffKit) -> None:
    accepted = await kit.send("reservation.confirmed", payloads.reservation())
    await kit.result(accepted.workflow_id)

    history = await kit.client.get_workflow_handle(accepted.workflow_id).fetch_history()
    recorded = {
        event.workflow_task_completed_event_attributes.worker_version.build_id
        for event in history.events
        if event.HasField("workflow_task_completed_event_attributes")
    }

    assert {build_id([HandoffWorkflow], kit.app.every_version())} == recorded
