"""The test kit: a real worker for a user's app on a fresh task queue with a throwaway ledger, and short-cuts to
send events, decide cases and wait for stages. Handoff's own tests use it, and so do users' (the pytest plugin,
`handoff.workers.pytest_plugin`, gives it as the `handoff_kit` fixture).

    async with running_handoffs(client, app, tmp_path, sla_scale=0.001) as kit:
        accepted = await kit.send("reservation.confirmed", payload)
        status = await kit.wait_for_stage(accepted.workflow_id, Stage.DELIVERED)

The kit's worker and every edge in its process (`kit.decide`, an API served over the kit) share a fixed decision key,
`TEST_DECISION_KEY`, unless `decision_key=` is given: tests need no HANDOFF_DECISION_KEY. Payloads are encrypted with
the key derived from it, as in production; `kit.client` (the client given, with the kit's key) reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError

from handoff.activities.ledger.operators import DuplicateOperator, UnknownOperator, add_operator, operator_named
from handoff.activities.ledger.tables import CaseRow
from handoff.schemas.cases import DecisionRequest, DecisionResult, ExceptionCase
from handoff.schemas.contract import DecisionKind
from handoff.schemas.operators import Operator
from handoff.schemas.runs import HandoffResult, HandoffStatus, Stage, TriggerAccepted
from handoff.workers.app import Handoffs
from handoff.workers.client import keyring_for, with_data_converter
from handoff.workers.codec import handoff_data_converter
from handoff.workers.decisions import decide, decision_key
from handoff.workers.settings import Settings
from handoff.workers.trigger import trigger
from handoff.workers.worker import build_worker, open_ledger

TEST_DECISION_KEY = "handoff-test-kit-decision-key-not-a-secret"
"""The decision key of a kit (its worker and the edges in its process) unless it is given another: no secret."""


class HandoffKit:
    """A running worker for an app, plus the ledger it writes to."""

    def __init__(self, client: Client, settings: Settings, app: Handoffs, ledger: Engine) -> None:
        self.client = client
        self.settings = settings
        self.app = app
        self.ledger = ledger
        self.decision_key = decision_key(settings)
        """The key the kit's worker verifies decisions with, and `decide` attests them with."""

    async def send(self, event: str, payload: Mapping[str, Any]) -> TriggerAccepted:
        """Trigger the event on this kit's task queue."""
        return await trigger(
            self.client,
            self.app.catalog,
            event,
            payload,
            task_queue=self.settings.task_queue,
            sla_scale=self.settings.sla_scale,
        )

    async def status(self, workflow_id: str) -> HandoffStatus:
        status: HandoffStatus = await self.client.get_workflow_handle(workflow_id).query(
            "status", result_type=HandoffStatus
        )
        return status

    async def result(self, workflow_id: str) -> HandoffResult:
        result: HandoffResult = await self.client.get_workflow_handle(workflow_id, result_type=HandoffResult).result()
        return result

    async def wait_for(
        self, workflow_id: str, predicate: Callable[[HandoffStatus], bool], *, what: str, timeout: float = 15
    ) -> HandoffStatus:
        """Poll the status query until `predicate` holds; TimeoutError saying `what` did not happen, and where."""
        deadline = asyncio.get_running_loop().time() + timeout
        status: HandoffStatus | None = None
        while asyncio.get_running_loop().time() < deadline:
            try:
                status = await self.status(workflow_id)
            except RPCError:
                status = None  # the run's first workflow task has not completed yet
            if status is not None and predicate(status):
                return status
            await asyncio.sleep(0.05)
        seen = status.stage.value if status else "no answer"
        raise TimeoutError(f"{workflow_id}: {what} did not happen within {timeout}s (stage: {seen})")

    async def wait_for_stage(self, workflow_id: str, *stages: Stage, timeout: float = 15) -> HandoffStatus:
        """Poll the status query until the run is in one of `stages`."""
        return await self.wait_for(
            workflow_id, lambda s: s.stage in stages, what=f"stage {[s.value for s in stages]}", timeout=timeout
        )

    async def open_case(self, workflow_id: str, timeout: float = 15) -> ExceptionCase:
        """Wait until the run holds an open case and the ledger shows it (as operators see it), and return it."""
        status = await self.wait_for_stage(workflow_id, Stage.AWAITING_DECISION, timeout=timeout)
        case = next(case for case in status.cases if case.decision is None)
        deadline = asyncio.get_running_loop().time() + timeout
        while not await asyncio.to_thread(self._in_ledger, case.id):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"case {case.id} of {workflow_id} did not reach the ledger within {timeout}s")
            await asyncio.sleep(0.05)
        return case

    def _in_ledger(self, case_id: str) -> bool:
        with Session(self.ledger) as session:
            return session.get(CaseRow, case_id) is not None

    async def decide(
        self,
        workflow_id: str,
        case_id: str,
        decision: DecisionKind,
        *,
        operator: str,
        groups: tuple[str, ...],
        reason: str = "checked with the guest",
        patch: Mapping[str, Any] | None = None,
    ) -> DecisionResult:
        """Decide as `operator`, through the edge as the API and the CLI do (attested with the kit's key).

        An operator the ledger does not have yet is added first, with `groups` (declared in the app's catalog); one
        it has decides with the groups it has there, as in life: the run takes the ledger's groups, not `groups`.
        """
        known = await asyncio.to_thread(self.operator, operator, groups)
        request = DecisionRequest(
            case_id=case_id,
            decision=decision,
            operator=known.name,
            operator_groups=known.groups,
            reason=reason,
            patch=dict(patch or {}),
        )
        return await decide(self.client, workflow_id, request, key=self.decision_key)

    def operator(self, name: str, groups: tuple[str, ...]) -> Operator:
        """The operator `name` from the ledger, added with `groups` if the ledger does not have them yet."""
        try:
            return operator_named(self.ledger, name)
        except UnknownOperator:
            pass
        with contextlib.suppress(DuplicateOperator):  # added meanwhile, by a decision sent at the same time
            add_operator(self.ledger, name, groups, declared_groups=self.app.catalog.group_names)
        return operator_named(self.ledger, name)


@asynccontextmanager
async def running_handoffs(
    client: Client, app: Handoffs, directory: Path, *, sla_scale: float = 1.0, **settings: Any
) -> AsyncIterator[HandoffKit]:
    """Run a worker for `app` on a fresh task queue (or `task_queue=`), with its ledger under `directory`, and the
    decision key `TEST_DECISION_KEY` (or `decision_key=`); the kit's client is `client` converting with that key."""
    config = Settings(
        home=directory,
        task_queue=settings.pop("task_queue", None) or f"handoff-test-{uuid.uuid4().hex[:8]}",
        sla_scale=sla_scale,
        graceful_shutdown_seconds=settings.pop("graceful_shutdown_seconds", 1),
        decision_key=settings.pop("decision_key", TEST_DECISION_KEY),
        **settings,
    )
    client = with_data_converter(client, handoff_data_converter(keyring_for(config), client.data_converter))
    ledger = open_ledger(config)
    try:
        async with build_worker(client, config, app, ledger=ledger):
            yield HandoffKit(client, config, app, ledger)
    finally:
        ledger.dispose()
