"""The workflow runner of Handoff's workers: the one the worker was given (temporalio's sandbox by default), asked
once per command for the command's serialization context instead of once per payload pass.

Why: before the SDK decodes a workflow task's activation, and again before it encodes the completion, it walks every
payload three times (codec, external storage, references), and for each payload sequence it asks the run's instance
which serialization context applies. temporalio's sandbox answers by executing a code string inside the sandbox: about
0.2 ms a question on the machine `bench/` runs on, 13 ms of the 79 ms a resumed run cost its worker (bench/README.md).
The answer never changes for a run: without a command it is the run's own context (namespace and workflow id), and a
command's sequence number names one activity, child workflow or external signal for the run's whole life. So each
answer is remembered after the first time the sandbox gives it, per run.

Only answers that name a command's own target are remembered. A command the instance no longer knows (none pending
under that number) gets the run's context, which is asked again the next time: the sandbox stays the judge of
anything this module has not seen it say. Restrictions, passthrough modules and the runs' isolation are the runner's
own, untouched. temporalio's sandbox is wrapped as a subclass of itself (`ContextCachingSandbox`), so that what
temporalio and its plugins do to a sandbox (debug mode's and OpenTelemetry's passthrough modules, by
`dataclasses.replace`) still finds one, and keeps the caching; any other runner is wrapped as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from temporalio.converter import SerializationContext, StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.workflow import Info

_Answer = TypeVar("_Answer")

REMEMBERED = 1024
"""Answers kept per run at most (a run with more commands starts again from none: the sandbox is asked again)."""


@dataclasses.dataclass(frozen=True)
class ContextCachingSandbox(SandboxedWorkflowRunner):
    """temporalio's sandbox, every instance it creates remembering its serialization and store contexts."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return ContextCachingInstance(super().create_instance(det))


class ContextCachingRunner(WorkflowRunner):
    """Any other `runner`, every instance it creates remembering its serialization and store contexts."""

    def __init__(self, runner: WorkflowRunner) -> None:
        self.runner = runner

    def prepare_workflow(self, defn: Any) -> None:
        self.runner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return ContextCachingInstance(self.runner.create_instance(det))

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self.runner.set_worker_level_failure_exception_types(types)


def caching_contexts(runner: WorkflowRunner | None) -> WorkflowRunner:
    """The plugin's `workflow_runner`: the worker's or replayer's runner, remembering contexts; wrapped once (a plugin
    applied twice, or a runner the user wrapped already, is kept). temporalio's sandbox becomes the same sandbox (same
    restrictions, same inner runner) as a `ContextCachingSandbox`. A worker always has a runner; None only if a
    caller removed it, and then temporalio's default sandbox is what the worker would have run."""
    if runner is None:
        return ContextCachingSandbox()
    if isinstance(runner, ContextCachingSandbox | ContextCachingRunner):
        return runner
    if type(runner) is SandboxedWorkflowRunner:
        given = {field.name: getattr(runner, field.name) for field in dataclasses.fields(runner) if field.init}
        return ContextCachingSandbox(**given)
    return ContextCachingRunner(runner)


class ContextCachingInstance(WorkflowInstance):
    """One run's instance; activations go straight through, contexts are asked once per command."""

    def __init__(self, instance: WorkflowInstance) -> None:
        self.instance = instance
        self._serialization: dict[Any, SerializationContext | None] = {}
        self._store: dict[Any, StorageDriverStoreContext] = {}

    def activate(self, act: Any) -> Any:
        return self.instance.activate(act)

    def get_info(self) -> Info:
        return self.instance.get_info()

    def get_thread_id(self) -> int | None:
        return self.instance.get_thread_id()

    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        return _remembered(self._serialization, command_info, self.instance.get_serialization_context)

    def get_external_store_context(self, command_info: Any) -> StorageDriverStoreContext:
        return _remembered(self._store, command_info, self.instance.get_external_store_context)


def _remembered(answers: dict[Any, _Answer], command_info: Any, ask: Callable[[Any], _Answer]) -> _Answer:
    """The answer for `command_info` (a frozen, hashable `CommandInfo`; None for the run itself): remembered, or asked.
    An answer is kept when it is the run's own (None), or when it names the command's target (differs from the run's)."""
    if command_info in answers:
        return answers[command_info]
    if None not in answers:
        answers[None] = ask(None)
    if command_info is None:
        return answers[None]
    answer = ask(command_info)
    if answer != answers[None]:
        if len(answers) >= REMEMBERED:
            run_own = answers[None]
            answers.clear()
            answers[None] = run_own
        answers[command_info] = answer
    return answer
