"""Record the histories that tests/runtime/test_replay.py replays: `python -m tests.histories.record [TAG]`.

Each catalog handoff runs on a fresh dev server through its happy path and through a case; each history is saved
as JSON beside this file. Re-record after an intended change to the workflow, and keep the old files too while
runs recorded with them may still be in flight: the replay test is how a change is checked against them. With a TAG
(the patch the code asks first, say), files are named `<name>.<TAG>.json`, beside the older ones.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from examples.restaurant import build_app
from handoff.schemas.cases import DecisionRequest
from handoff.schemas.contract import DecisionKind
from handoff.workers.codec import decoded_history
from handoff.workers.server import temporal_binary
from handoff.workers.testkit import HandoffKit, running_handoffs
from handoff.workflows.search_attributes import ALL
from tests.runtime import payloads
from tests.runtime.test_cases import bad_reservation

HERE = Path(__file__).parent


TAG = sys.argv[1] if len(sys.argv) > 1 else None


async def _save(kit: HandoffKit, workflow_id: str, name: str) -> None:
    await kit.result(workflow_id)
    history = await kit.client.get_workflow_handle(workflow_id).fetch_history()
    # Saved decrypted: the stored histories replay without any key (plain payloads pass through the codec).
    codec = kit.client.data_converter.payload_codec
    assert codec is not None
    history = await decoded_history(history, codec)
    file = f"{name}.{TAG}.json" if TAG else f"{name}.json"
    (HERE / file).write_text(history.to_json())
    print(f"recorded {file} ({len(history.events)} events)")


async def record() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=pydantic_data_converter,
        search_attributes=ALL,
        ui=False,
    )
    try:
        with tempfile.TemporaryDirectory() as directory:
            app = build_app(f"sqlite:///{Path(directory) / 'restaurant.db'}")
            async with running_handoffs(env.client, app, Path(directory), sla_scale=1 / 1800) as kit:
                for event, build, name in (
                    ("reservation.confirmed", payloads.reservation, "reservation-to-pos-delivered"),
                    ("deal.won", payloads.deal, "lead-to-invoice-delivered"),
                    ("order.placed", payloads.order, "order-to-kitchen-delivered"),
                ):
                    accepted = await kit.send(event, build())
                    await _save(kit, accepted.workflow_id, name)

                accepted = await kit.send("reservation.confirmed", bad_reservation())
                case = await kit.open_case(accepted.workflow_id)
                await kit.decide(
                    accepted.workflow_id,
                    case.id,
                    DecisionKind.CORRECT,
                    operator="hana",
                    groups=("front-of-house",),
                    patch={
                        "reservation.party_size": 6,
                        "guest.name": "Ada",
                        "reservation.channel": "web",
                        "reservation.table_number": "T2",
                    },
                )
                await _save(kit, accepted.workflow_id, "reservation-to-pos-corrected")

                accepted = await kit.send("reservation.confirmed", bad_reservation())
                await _save(kit, accepted.workflow_id, "reservation-to-pos-escalated-then-rejected")

                accepted = await kit.send("deal.won", payloads.deal(account__id="ACC-BLOCKED-1"))
                case = await kit.open_case(accepted.workflow_id)
                handle = kit.client.get_workflow_handle(accepted.workflow_id)
                await handle.signal(
                    "decision",
                    DecisionRequest(
                        case_id=case.id,
                        decision=DecisionKind.APPROVE,
                        operator="sam",
                        operator_groups=("sales-ops",),
                        reason="refused: approve is not allowed",
                    ),
                )
                await kit.decide(
                    accepted.workflow_id, case.id, DecisionKind.REJECT, operator="sam", groups=("sales-ops",)
                )
                await _save(kit, accepted.workflow_id, "lead-to-invoice-refused-signal-then-rejected")

                accepted = await kit.send("order.placed", payloads.order(order__fulfilment="delivery"))
                case = await kit.open_case(accepted.workflow_id)
                await kit.decide(
                    accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="kai", groups=("kitchen-leads",)
                )
                await _save(kit, accepted.workflow_id, "order-to-kitchen-approved")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
    sys.stdout.flush()
    os._exit(0)  # the SDK's core can abort at interpreter exit (temporal-notes.md)
