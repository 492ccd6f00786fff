"""A small workflow for the runner's tests (`test_sandbox.py`), in a module of its own: the sandbox imports it afresh
for every run, so it imports nothing but temporalio. It has a command of each kind whose payloads carry a context of
their own: an activity; a local activity that fails twice and is retried after a timer (each retry a new command
number); a child workflow, signalled by the parent as an external workflow; then an Update (the run's own context)
and a result."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@activity.defn
async def echo(text: str) -> str:
    return text


@activity.defn
async def echo_on_the_third_try(text: str) -> str:
    if activity.info().attempt < 3:
        raise RuntimeError(f"attempt {activity.info().attempt}: not yet")
    return text


@workflow.defn
class ErrandChild:
    def __init__(self) -> None:
        self.word: str | None = None

    @workflow.run
    async def run(self, text: str) -> str:
        await workflow.wait_condition(lambda: self.word is not None)
        return f"{text.upper()}{self.word}"

    @workflow.signal
    def proceed(self, word: str) -> None:
        self.word = word


@workflow.defn
class Errand:
    def __init__(self) -> None:
        self.note: str | None = None

    @workflow.run
    async def run(self, text: str) -> str:
        remote = await workflow.execute_activity(echo, text, start_to_close_timeout=timedelta(seconds=30))
        local = await workflow.execute_local_activity(
            echo_on_the_third_try,
            text,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50), backoff_coefficient=1),
            local_retry_threshold=timedelta(milliseconds=10),  # each retry after a timer, as a new local activity
        )
        child_id = f"{workflow.info().workflow_id}-child"
        child = await workflow.start_child_workflow(ErrandChild.run, text, id=child_id)
        await workflow.get_external_workflow_handle(child_id).signal(ErrandChild.proceed, "!")
        from_child = await child
        await workflow.wait_condition(lambda: self.note is not None)
        return f"{remote} {local} {from_child} {self.note}"

    @workflow.update
    async def add_note(self, note: str) -> str:
        self.note = note
        return note
