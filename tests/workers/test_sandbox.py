"""The workers' runner (`workers/sandbox.py`) asks the sandbox once per command for a serialization context, and
changes nothing a codec or converter sees: the same contexts, for the same payloads, as temporalio's runner alone.

The runs are real (the session's dev server, temporalio's sandbox); the codec only records the context it is given
for each payload it encodes or decodes, and leaves the payloads as they are.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import CommandType
from temporalio.client import Client
from temporalio.converter import DataConverter, PayloadCodec, SerializationContext, WithSerializationContext
from temporalio.worker import Worker, WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from examples.restaurant import RestaurantApp
from handoff.workers.client import with_data_converter
from handoff.workers.sandbox import ContextCachingRunner, caching_contexts
from tests.workers.sandbox_errand import Errand, ErrandChild, echo

COMPLETE = CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION


class RecordingCodec(PayloadCodec, WithSerializationContext):
    """Notes (operation, context) for every payload; changes none."""

    def __init__(self, seen: list[tuple[str, str]], context: SerializationContext | None = None) -> None:
        self.seen = seen
        self.context = context

    def with_context(self, context: SerializationContext) -> RecordingCodec:
        return RecordingCodec(self.seen, context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.seen.extend(("encode", repr(self.context)) for _ in payloads)
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.seen.extend(("decode", repr(self.context)) for _ in payloads)
        return list(payloads)


class AskedRunner(WorkflowRunner):
    """Counts the context questions its instances are asked, by command (None: the run itself)."""

    def __init__(self, runner: WorkflowRunner, asked: Counter[Any]) -> None:
        self.runner, self.asked = runner, asked

    def prepare_workflow(self, defn: Any) -> None:
        self.runner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return AskedInstance(self.runner.create_instance(det), self.asked)


class AskedInstance(WorkflowInstance):
    def __init__(self, instance: WorkflowInstance, asked: Counter[Any]) -> None:
        self.instance, self.asked = instance, asked

    def activate(self, act: Any) -> Any:
        return self.instance.activate(act)

    def get_info(self) -> Any:
        return self.instance.get_info()

    def get_thread_id(self) -> int | None:
        return self.instance.get_thread_id()

    def get_serialization_context(self, command_info: Any) -> Any:
        self.asked[command_info] += 1
        return self.instance.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self.instance.get_external_store_context(command_info)


async def run_errand(client: Client, runner: WorkflowRunner) -> list[tuple[str, str]]:
    """One errand run on a worker with `runner`; what the codec saw, with the run's ids and task queue made generic."""
    seen: list[tuple[str, str]] = []
    recording = with_data_converter(client, DataConverter(payload_codec=RecordingCodec(seen)))
    task_queue, workflow_id = f"errand-{uuid.uuid4()}", f"errand-{uuid.uuid4()}"
    async with Worker(
        recording, task_queue=task_queue, workflows=[Errand, ErrandChild], activities=[echo], workflow_runner=runner
    ):
        handle = await recording.start_workflow(Errand.run, "hi", id=workflow_id, task_queue=task_queue)
        assert await handle.execute_update(Errand.add_note, "done") == "done"
        assert await handle.result() == "hi hi HI done"
    return sorted(
        (operation, context.replace(workflow_id, "<run>").replace(task_queue, "<queue>")) for operation, context in seen
    )


async def test_a_codec_sees_the_same_contexts_for_the_same_payloads_as_with_temporalios_runner(client: Client) -> None:
    plain = await run_errand(client, SandboxedWorkflowRunner())
    cached = await run_errand(client, ContextCachingRunner(SandboxedWorkflowRunner()))

    assert cached == plain
    # The errand's commands each had their own context: an activity's, a local activity's, the child's.
    contexts = {context for _, context in plain}
    assert any("is_local=False" in c for c in contexts) and any("is_local=True" in c for c in contexts)
    assert any("<run>-child" in c for c in contexts)


async def test_the_sandbox_is_asked_once_per_command_and_once_per_run(client: Client) -> None:
    by_the_sdk: Counter[Any] = Counter()
    of_the_sandbox: Counter[Any] = Counter()
    runner = AskedRunner(ContextCachingRunner(AskedRunner(SandboxedWorkflowRunner(), of_the_sandbox)), by_the_sdk)

    await run_errand(client, runner)

    completions = {c for c in by_the_sdk if c is not None and c.command_type == COMPLETE}
    targets = {c for c in by_the_sdk if c is not None} - completions
    # The activity, the local activity, the child: the SDK asks about each several times, the sandbox once.
    assert len(targets) == 3 and all(by_the_sdk[c] > 1 for c in targets)
    assert {c: of_the_sandbox[c] for c in targets} == dict.fromkeys(targets, 1)
    assert of_the_sandbox[None] == 2  # the errand and its child, once each
    # A completion's answer is the run's own, which is not remembered for a command: asked each time.
    assert completions and all(of_the_sandbox[c] == by_the_sdk[c] for c in completions)


async def test_the_plugin_keeps_the_workers_sandbox_and_wraps_it_once(
    client: Client, restaurant: RestaurantApp
) -> None:
    plugin = restaurant.plugin(ledger="sqlite://", decision_key=b"k" * 32)
    worker = Worker(client, task_queue=f"runner-{uuid.uuid4()}", plugins=[plugin])
    runner = worker.config(active_config=True).get("workflow_runner")

    assert isinstance(runner, ContextCachingRunner) and isinstance(runner.runner, SandboxedWorkflowRunner)
    assert caching_contexts(runner) is runner
    assert isinstance(caching_contexts(None), ContextCachingRunner)
