"""A small workflow for the runner's tests (`test_sandbox.py`), in a module of its own: the sandbox imports it afresh
for every run, so it imports nothing but temporalio. It has a command of each kind whose payloads carry a context of
their own: an activity, a local activity and a child workflow, then an Update (the run's own context) and a result."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def echo(text: str) -> str:
    return text


@workflow.defn
class ErrandChild:
    @workflow.run
    async def run(self, text: str) -> str:
        return text.upper()


@workflow.defn
class Errand:
    def __init__(self) -> None:
        self.note: str | None = None

    @workflow.run
    async def run(self, text: str) -> str:
        remote = await workflow.execute_activity(echo, text, start_to_close_timeout=timedelta(seconds=30))
        local = await workflow.execute_local_activity(echo, text, start_to_close_timeout=timedelta(seconds=30))
        child = await workflow.execute_child_workflow(ErrandChild.run, text, id=f"{workflow.info().workflow_id}-child")
        await workflow.wait_condition(lambda: self.note is not None)
        return f"{remote} {local} {child} {self.note}"

    @workflow.update
    async def add_note(self, note: str) -> str:
        self.note = note
        return note
