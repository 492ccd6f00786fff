"""The workers' runner (`workers/sandbox.py`) asks the sandbox once per command for a serialization context, and
changes nothing a codec or converter sees: the same contexts, for the same payloads, as temporalio's runner alone;
every answer it remembers is the one the sandbox gives when asked again.

The runs are real (the session's dev server, temporalio's sandbox); the codec only records the context it is given
for each payload it encodes or decodes, and leaves the payloads as they are.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import CommandType
from temporalio.client import Client
from temporalio.converter import DataConverter, PayloadCodec, SerializationContext, WithSerializationContext
from temporalio.worker import (
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from examples.restaurant import RestaurantApp
from handoff.workers.client import with_data_converter
from handoff.workers.sandbox import (
    REMEMBERED,
    ContextCachingInstance,
    ContextCachingRunner,
    ContextCachingSandbox,
    _remembered,
    caching_contexts,
)
from tests.workers.sandbox_errand import Errand, ErrandChild, echo, echo_on_the_third_try

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
        recording,
        task_queue=task_queue,
        workflows=[Errand, ErrandChild],
        activities=[echo, echo_on_the_third_try],
        workflow_runner=runner,
    ):
        handle = await recording.start_workflow(Errand.run, "hi", id=workflow_id, task_queue=task_queue)
        assert await handle.execute_update(Errand.add_note, "done") == "done"
        assert await handle.result() == "hi hi HI! done"
    return sorted(
        (operation, context.replace(workflow_id, "<run>").replace(task_queue, "<queue>")) for operation, context in seen
    )


async def test_a_codec_sees_the_same_contexts_for_the_same_payloads_as_with_temporalios_runner(client: Client) -> None:
    plain = await run_errand(client, SandboxedWorkflowRunner())
    cached = await run_errand(client, ContextCachingSandbox())

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
    # The activity, the local activity's three attempts, the child, the signal to it: the sandbox is asked once each.
    assert len(targets) >= 6 and sum(by_the_sdk[c] for c in targets) >= 3 * len(targets)
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

    assert isinstance(runner, ContextCachingSandbox)  # temporalio's sandbox, its restrictions as they were
    assert caching_contexts(runner) is runner
    assert isinstance(caching_contexts(None), ContextCachingSandbox)


class ShadowRunner(WorkflowRunner):
    """Asks each question of the caching instance and, again, of the sandbox's own instance behind it: every pair of
    answers that differ is noted."""

    def __init__(self, differences: list[Any]) -> None:
        self.runner, self.differences = ContextCachingSandbox(), differences

    def prepare_workflow(self, defn: Any) -> None:
        self.runner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        instance = self.runner.create_instance(det)
        assert isinstance(instance, ContextCachingInstance)
        return ShadowInstance(instance, self.differences)


class ShadowInstance(AskedInstance):
    def __init__(self, instance: ContextCachingInstance, differences: list[Any]) -> None:
        super().__init__(instance, Counter())
        self.caching, self.differences = instance, differences

    def get_serialization_context(self, command_info: Any) -> Any:
        remembered = self.caching.get_serialization_context(command_info)
        if remembered != (asked := self.caching.instance.get_serialization_context(command_info)):
            self.differences.append((command_info, remembered, asked))
        return remembered

    def get_external_store_context(self, command_info: Any) -> Any:
        remembered = self.caching.get_external_store_context(command_info)
        if remembered != (asked := self.caching.instance.get_external_store_context(command_info)):
            self.differences.append((command_info, remembered, asked))
        return remembered


async def test_every_remembered_answer_is_what_the_sandbox_says_when_asked_again(client: Client) -> None:
    differences: list[Any] = []
    asked: Counter[Any] = Counter()

    await run_errand(client, AskedRunner(ShadowRunner(differences), asked))

    assert sum(asked.values()) > 20  # every question of the run, its child's, its retries', was compared
    assert [] == differences


def test_the_wrappers_answer_everything_temporalio_asks_of_a_runner_and_an_instance() -> None:
    """A method temporalio adds to either interface would otherwise fall back to the base class's default."""
    asked_of_instances = {name for name in dir(WorkflowInstance) if not name.startswith("_")}
    asked_of_runners = {name for name in dir(WorkflowRunner) if not name.startswith("_")}

    assert asked_of_instances <= set(vars(ContextCachingInstance))
    assert asked_of_runners <= set(vars(ContextCachingRunner))


def test_temporalios_sandbox_stays_a_sandbox_when_debug_mode_or_a_plugin_changes_it() -> None:
    """Debug mode and OpenTelemetry's plugin add passthrough modules to a `SandboxedWorkflowRunner` with
    `dataclasses.replace`: the caching sandbox is one, and stays caching."""
    given = SandboxedWorkflowRunner(restrictions=SandboxedWorkflowRunner().restrictions.with_passthrough_modules("x"))
    runner = caching_contexts(given)

    assert isinstance(runner, ContextCachingSandbox) and runner.restrictions == given.restrictions
    changed = dataclasses.replace(runner, restrictions=runner.restrictions.with_passthrough_modules("_pydevd_bundle"))
    assert type(changed) is ContextCachingSandbox
    assert isinstance(caching_contexts(UnsandboxedWorkflowRunner()), ContextCachingRunner)


def test_a_run_with_more_commands_than_are_remembered_starts_again_from_none() -> None:
    """Past `REMEMBERED` answers a run's cache is emptied (but for the run's own), and answers stay right."""
    asked: Counter[Any] = Counter()

    def ask(command: Any) -> str:
        asked[command] += 1
        return "the run's" if command is None else f"target {command}"

    answers: dict[Any, str] = {}
    for command in range(REMEMBERED + 10):
        assert _remembered(answers, command, ask) == f"target {command}"
    assert len(answers) <= REMEMBERED and answers[None] == "the run's" and asked[None] == 1
    assert _remembered(answers, 0, ask) == "target 0" and asked[0] == 2  # forgotten, so asked again
    assert _remembered(answers, REMEMBERED + 9, ask) == f"target {REMEMBERED + 9}" and asked[REMEMBERED + 9] == 1
