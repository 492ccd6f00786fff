"""The best hand-written workflow: reservation-to-pos on temporalio with the cheapest correct patterns we know.

The same business handoff as `bare.py` (the samples-style baseline): the same input and payload, the same
validation (`bare.reservation_violations`, the same function), the same look-up, the same delivery to the POS with
its idempotency (`BareActivities.deliver_to_pos`: the POS write keyed by workflow id, then `writes.record_delivery`,
which keeps the first record), the same ledger writes (`BareActivities.record_stage` = `writes.record_stage_change`:
one per stage change, the run stamp first, the case when it opens, the decision when it is taken), the same
timeouts and retry policies, the same `decide` update with the same validator, the same SLA timer. The sandbox is on
(the default runner); everything below is deterministic (`workflow.now`, `workflow.uuid4`, no I/O in the workflow).

What it does differently, and why each keeps the guarantees:

- **Ledger writes and the table look-up are local activities.** A local activity runs in the worker that runs the
  workflow task and is recorded as one `MarkerRecorded` event when the task completes, instead of an activity task
  round trip through the server (scheduled, started, completed, and a new workflow task: six events and two
  matching hops per write). The guarantees are those of a regular activity: at least once, retried with the same
  `RetryPolicy` (`LedgerError`/`KeyError` not retried), until it succeeds or fails the run; a retry that outlasts
  the SDK's local retry threshold (1 minute) is slept on a durable timer. If the worker dies mid-write, the workflow
  task times out and the next worker replays to the same point and runs the write again: the write is idempotent by
  `(workflow_id, step)` (`record_stage_change` returns False for a step it already holds), and the look-up is a
  read. Nothing reads the ledger before the workflow has moved on: a case is in the ledger before the run waits on
  it (the operator finds it there), the decision is in the ledger before `decide` returns. They are short (one
  SQLite transaction), far under the workflow task timeout (the SDK heartbeats the task if one is slow anyway).
- **The delivery stays a regular activity.** It calls another system, may take up to its 2-minute start-to-close
  and retry for longer: a regular activity's retries are server-driven and do not hold a workflow task open.
- **The look-up runs beside the run stamp** (`asyncio.gather`): it is a read that does not depend on the stamp; the
  ledger writes stay strictly in step order (a later step before the stamp would find no run).
- **Search attributes: set at start, then at most one upsert per workflow task.** Handoff keeps `HandoffStage`,
  `HandoffOwnerGroup` and `HandoffCaseId` current so runs can be listed by stage and owner; `best` keeps the same
  listing, but upserts once at the point where a workflow task ends (the run waits on its case, on the delivery,
  or ends) with the stage it rests in, and sets or unsets owner and case in the same call. Visibility only sees a
  task's upserts once the task completes, so several upserts in one task show nothing the last one does not: one
  event and one visibility write instead of two or three. `HandoffName` and the first stage are set at start
  (part of `WorkflowExecutionStarted`: no event of their own).
- **No query and no memo**: the ledger is the record the operator reads; the update's result is the case id and
  next stage, not the whole case (a small `WorkflowExecutionUpdateCompleted`).
- **The workflow module is small**: the rules, the retry policies and the models come from modules imported passed
  through the sandbox (`bare`, `bare_activities`, Handoff's `schemas/`), so the per-run re-import of this module
  builds only the workflow class.

Plain pydantic data converter (no encryption), as a hand-written app would: `best_worker.py`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from temporalio.client import Client

    from examples.restaurant.reservation_to_pos import ReservationConfirmed
    from handoff.schemas.activities import RunStamp, StageChange
    from handoff.schemas.cases import CaseStatus, DecisionRecord, DecisionRequest, ExceptionCase, RefusalKind
    from handoff.schemas.contract import DecisionKind
    from handoff.schemas.runs import Stage
    from handoff.workflows import search_attributes as sa

    from bare import DELIVERY, LEDGER, LOOKUP, OWNER, SLA, pos_fields, reservation_violations
    from bare_activities import (
        BareActivities,
        DecisionAccepted,
        PosDeliveryInput,
        ReservationInput,
        ReservationResult,
        TableLookupInput,
    )

NAME = "best-reservation-to-pos"


@workflow.defn
class BestReservationToPos:
    """A confirmed booking opens a table in the POS; bad data waits for a front-of-house decision."""

    def __init__(self) -> None:
        self._case: ExceptionCase | None = None
        self._decision: DecisionRecord | None = None
        self._decision_recorded = False
        self._step = 0

    @workflow.run
    async def run(self, input: ReservationInput) -> ReservationResult:
        payload = input.payload.model_dump(mode="json")
        workflow_id = workflow.info().workflow_id
        stamp = RunStamp(
            handoff=NAME,
            event="reservation.confirmed",
            dedupe_key=input.payload.reservation.id,
            contract_version=1,
            contract_hash="best",
            payload=payload,
            received_at=input.received_at,
        )
        lookup = TableLookupInput(workflow_id=workflow_id, table_number=input.payload.reservation.table_number)
        _, table_exists = await asyncio.gather(
            self._record(Stage.VALIDATING, run=stamp),
            workflow.execute_local_activity_method(BareActivities.look_up_table, lookup, **LOOKUP),
        )
        violations = reservation_violations(input.payload, table_exists=table_exists)
        if violations:
            now = workflow.now()
            case = self._case = ExceptionCase(
                id=f"C-{workflow.uuid4().hex[:12]}",
                handoff=NAME,
                workflow_id=workflow_id,
                violations=violations,
                payload=payload,
                owner_group=OWNER,
                opened_at=now,
                sla_deadline=now + SLA,
                allowed=[DecisionKind.APPROVE, DecisionKind.REJECT],
            )
            await self._record(Stage.AWAITING_DECISION, case=case)
            _show(Stage.AWAITING_DECISION, sa.OWNER_GROUP.value_set(OWNER), sa.CASE_ID.value_set(case.id))
            try:
                await workflow.wait_condition(lambda: self._decision is not None, timeout=SLA * input.sla_scale)
            except TimeoutError:
                self._decision = DecisionRecord(
                    case_id=case.id,
                    decision=DecisionKind.REJECT,
                    operator="sla",
                    group=None,
                    reason="No decision within the SLA.",
                    decided_at=workflow.now(),
                    by_timeout=True,
                )
            decision = self._decision
            assert decision is not None
            case.decision, case.status = decision, CaseStatus.DECIDED
            unset = (sa.OWNER_GROUP.value_unset(), sa.CASE_ID.value_unset())
            if decision.decision is DecisionKind.REJECT:
                await self._record(Stage.REJECTED, case=case, decision=decision)
                self._decision_recorded = True
                _show(Stage.REJECTED, *unset)
                await workflow.wait_condition(workflow.all_handlers_finished)
                return ReservationResult(stage=Stage.REJECTED, case_id=case.id)
            await self._record(Stage.DELIVERING, case=case, decision=decision, override=True)
            self._decision_recorded = True
            _show(Stage.DELIVERING, *unset)
        else:
            await self._record(Stage.DELIVERING)
            _show(Stage.DELIVERING)
        delivered = await workflow.execute_activity_method(
            BareActivities.deliver_to_pos,
            PosDeliveryInput(workflow_id=workflow_id, fields=pos_fields(payload)),
            **DELIVERY,
        )
        await self._record(Stage.DELIVERED)
        _show(Stage.DELIVERED)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ReservationResult(
            stage=Stage.DELIVERED,
            case_id=self._case.id if self._case else None,
            delivered_at=delivered.delivery.delivered_at,
        )

    @workflow.update
    async def decide(self, request: DecisionRequest) -> DecisionAccepted:
        """A front-of-house decision on the open case; returns once the ledger holds it."""
        self._decision = DecisionRecord(
            case_id=request.case_id,
            decision=request.decision,
            operator=request.operator,
            group=OWNER,
            reason=request.reason,
            decided_at=workflow.now(),
        )
        await workflow.wait_condition(lambda: self._decision_recorded)
        next_stage = Stage.REJECTED if request.decision is DecisionKind.REJECT else Stage.DELIVERING
        return DecisionAccepted(case_id=request.case_id, next_stage=next_stage)

    @decide.validator
    def validate_decide(self, request: DecisionRequest) -> None:
        """bare's validator, word for word: a refused update leaves no event in the history."""
        if self._case is None or request.case_id != self._case.id:
            raise ApplicationError(f"No open case {request.case_id!r}", type=RefusalKind.UNKNOWN_CASE.value)
        if self._decision is not None:
            raise ApplicationError(f"Case {request.case_id} is already decided", type=RefusalKind.ALREADY_DECIDED.value)
        if request.decision not in (DecisionKind.APPROVE, DecisionKind.REJECT):
            raise ApplicationError("Only approve or reject", type=RefusalKind.NOT_ALLOWED.value)
        if OWNER not in request.operator_groups:
            raise ApplicationError(f"Only {OWNER} decides this case", type=RefusalKind.NOT_OWNER.value)

    async def _record(
        self,
        stage: Stage,
        *,
        run: RunStamp | None = None,
        case: ExceptionCase | None = None,
        decision: DecisionRecord | None = None,
        override: bool = False,
    ) -> None:
        """One stage change to the ledger, as a local activity (idempotent by step: see the module's docstring)."""
        self._step += 1
        change = StageChange(
            workflow_id=workflow.info().workflow_id,
            step=self._step,
            stage=stage,
            at=workflow.now(),
            run=run,
            case=case,
            decision=decision,
            override=override,
        )
        await workflow.execute_local_activity_method(BareActivities.record_stage, change, **LEDGER)


def _show(stage: Stage, *more: SearchAttributeUpdate) -> None:
    """The task's one upsert: the stage the run rests in, with any owner/case change in the same call."""
    workflow.upsert_search_attributes([sa.HANDOFF_STAGE.value_set(stage.value), *more])


async def start_best(client: Client, payload: dict[str, Any], *, task_queue: str, sla_scale: float = 1.0) -> str:
    """Start the best workflow for one event, its name and first stage set at start; returns its workflow id."""
    event = ReservationConfirmed.model_validate(payload)
    handle = await client.start_workflow(
        BestReservationToPos.run,
        ReservationInput(payload=event, received_at=datetime.now(UTC), sla_scale=sla_scale),
        id=f"{NAME}/{event.reservation.id}",
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(sa.HANDOFF_NAME, NAME), SearchAttributePair(sa.HANDOFF_STAGE, Stage.RECEIVED.value)]
        ),
    )
    return handle.id
