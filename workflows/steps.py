"""The steps of a handoff run: `HandoffWorkflow` (handoff.py) is this class with Temporal's entry points on it.

Everything a run does between its entry points lives here: validating, holding a case for its decision, delivering,
the exception budget, drift runs, and the bookkeeping (the ledger's record of each stage, the patches a run asks).
It is deterministic workflow code, run inside the workflow, and imported through the sandbox's passthrough
(`workflow.unsafe.imports_passed_through` in handoff.py), like `refusals.py` and `compensation.py`: the sandbox runs
the workflow's own module afresh for every run, so the less code that module holds, the less each run costs to start
and to replay, and the less memory each run in the worker's cache keeps (a copy of every function of that module).
The sandbox's restrictions (no `datetime.now`, no I/O) do not reach code passed through: every side effect here is an
activity, every clock read `workflow.now()`, every random id `workflow.uuid4()`; the replay tests hold it to that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence, Set
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import timedelta
from typing import Any, NoReturn

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

from handoff.schemas.activities import (
    DELIVER,
    NOTIFY_OWNERS,
    RECORD_ESCALATION,
    RECORD_FIRST_APPROVAL,
    RECORD_REFUSAL,
    RECORD_STAGE_CHANGE,
    RUN_LOOKUPS,
    VERIFY_DECISION,
    CaseNotice,
    DecisionCheck,
    DecisionVerdict,
    DeliveryRefusal,
    DeliveryRequest,
    DeliveryResult,
    EscalationRecord,
    FirstApprovalRecord,
    LookupCheck,
    LookupRequest,
    LookupResult,
    NoticeEvent,
    RefusalRecord,
    RunStamp,
    StageChange,
    SyncedField,
)
from handoff.schemas.budget import (
    CHECK_BUDGET,
    NOTIFY_BUDGET_HOLD,
    BudgetAnswer,
    BudgetCheck,
    Hold,
    HoldNotice,
    Verdict,
)
from handoff.schemas.cases import (
    CaseStatus,
    DecisionRecord,
    DecisionRequest,
    Escalation,
    ExceptionCase,
    Refusal,
    RefusalKind,
    RefusedDecision,
    Violation,
)
from handoff.schemas.contract import DecisionKind, ExceptionPolicy, HandoffContract, SyncTarget
from handoff.schemas.drift import DriftFinding, drift_violations
from handoff.schemas.paths import patched, value_at
from handoff.schemas.rules import Lookup
from handoff.schemas.runs import Delivery, HandoffInput, HandoffResult, Stage
from handoff.workflows import search_attributes as sa
from handoff.workflows.compensation import undo_in_reverse, with_compensation
from handoff.workflows.refusals import describe_errors, refusal_for
from handoff.workflows.refused_deliveries import (
    end_of_chain_decision,
    is_delivery_case,
    unanswered,
)
from handoff.workflows.registered import registered
from handoff.workflows.validation import condition_holds, evaluate, lookups_to_run

LEDGER_TIMEOUT = timedelta(seconds=30)
LEDGER_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), non_retryable_error_types=["LedgerError"])
LOOKUP_TIMEOUT = timedelta(seconds=30)
LOOKUP_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30), non_retryable_error_types=["UnknownName"])
DELIVERY_TIMEOUT = timedelta(minutes=2)
DELIVERY_HEARTBEAT = timedelta(seconds=10)
DELIVERY_NOT_RETRIED = ["DeliveryRefused", "UnknownField", "InvalidFieldValue", "UnknownName", "BadAdapter"]
"""Errors no retry can fix. Today's delivery answers refusals instead of raising them; runs from before still may."""

NOTIFY_TIMEOUT = timedelta(seconds=30)
NOTIFY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10)
SLA_WARNING_AT = 0.8
"""The share of a group's SLA after which it hears that the case still waits for it."""

BUDGET_RECHECK = timedelta(hours=1)
"""How often a held run asks the ledger again without being told: the safety net for a lost `budget-released`.
Each look costs the run a timer and an activity in its history (about 150 events a day of hold), hence not often."""
BUDGET_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), non_retryable_error_types=["UnknownHold"])

VERIFY_TIMEOUT = timedelta(seconds=10)
VERIFY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=5), maximum_attempts=5)

LOOKUPS_WHERE_THEY_APPLY = "lookups-where-they-apply"
"""Patch: look-ups inside a `When` are asked (where its condition holds), absent values are not asked at all."""
REFUSED_DELIVERIES_OPEN_CASES = "refused-deliveries-open-cases"
"""Patch: a delivery the target refuses, or that exhausts its attempts, opens an exception case; the run no longer
fails. Runs from before replay as they were: the first delivery error failed them."""
NOTIFY_OWNER_GROUPS = "notify-owner-groups"
"""Patch: a case's owner group is notified when it opens, escalates, and when a fifth of its SLA is left (the wait is
cut in two there). Runs from before wait in one piece and notify nobody."""
AUTHORISED_DECISIONS = "authorised-decisions"
"""Patch: a decision is authorised (attestation, the ledger's groups) and every refusal recorded. One marker per
decision message (`authorised-decisions`, then `-2`, `-3`...), because the SDK memoises a patch for the whole run:
with one id, a run that took a message before the deploy would replay it unpatched and trust every later one too."""
LEDGER_WRITES_RIDE_ALONG = "ledger-writes-ride-along"
"""Patch: a stage change that records nothing but the stage (and the run's stamp) rides with the activity that
follows it, instead of costing an activity and a workflow task of its own: `validating` with the look-ups, `delivering`
with the deliveries (each records it first; the ledger applies it once, by step); when no activity follows, the next
stage change carries the stamp. And a case's owner group and id are set and unset in the same upsert as the stage
they go with. A change that holds a case or a decision is still written before the run waits or `decide` returns.
Asked once, first of all patches: runs from before replay with a ledger activity per change.

A run started with this patch has every patch before it, so it asks none of them (`_patched`): each asked patch costs
a marker and an upsert of `TemporalChangeVersion` in the history. A patch added after this one is asked as usual."""
LOCAL_ACTIVITIES = "local-activities"
"""Patch: the look-ups (with the stage change riding with them) and the ledger's stage changes run as local activities,
in the workflow task that needs them: a marker in the history each, instead of an activity task and a workflow task
of their own. A decision is then verified, recorded and answered in the workflow task that took it. Same timeouts,
retry policies and at-least-once execution; the ledger applies each stage change once, by step, and still holds the
case before the run waits and the decision before `decide` returns. Deliveries, undos, escalations, refusals, budget
checks and notices stay regular activities: other systems, or rare.

The SDK resumes local activities that finish together in their order of completion, but replays them in the order
they were scheduled (temporalio/sdk-python#1578): two in flight at once (a stage change, and a decision's
`verify_decision` arriving meanwhile) could replay in another order than they ran. So a run with this patch runs its
local activities one at a time (`_locally`).

Asked first of all, instead of `LEDGER_WRITES_RIDE_ALONG`, which it implies (with every patch before that one): one
marker, one `TemporalChangeVersion` upsert, as before. Runs from before ask `LEDGER_WRITES_RIDE_ALONG` as they did."""
DECISIONS_RECORDED_WHEN_VERIFIED = "decisions-recorded-when-verified"
"""Patch: a decision is recorded in the ledger by its verification, one local activity instead of two.

The run judges the decision first on everything but the operator's groups (the case, the decisions allowed, four eyes,
the correction), builds the stage change it will enter once the decision is taken, and hands both the change and the
case's owner group to `verify_decision`. Verified, and in that group, the operator's decision is recorded there; the
run then takes it, and enters the stage without writing it again. Otherwise nothing is recorded and the run judges the
decision on the ledger's groups, as before; a write that failed is the run's to make, as any stage change.

A decision is judged, verified and taken (or refused) in its turn (`_decision_turn`): a second decision, an escalation
or the end of the chain waits for the one being verified, so the stage change the ledger holds is the one the run
enters. So a decision that arrived before its case's SLA passed is taken, even when its verification ends after it.
A refusal is written to the ledger after the turn: it holds up nothing (but for the rare one below).

A change handed to the verification and not confirmed written (the verification failed, refused, or found the step
holding another change) may have been written all the same, by an attempt whose answer was lost: its step is never
used again. A refusal then writes the run's stage and open case again at the next step (`RefusalRecord.reopened`), in
the turn, before any later decision or escalation; a decision taken after all is written by the run at the next step.
Both set the ledger's override and finish outright (`StageChange.restates`), undoing what such a write set.

A refusal's record is a regular activity: during a rolling deploy, a worker from before this patch may take it, and
ignore `reopened` (pydantic drops fields a model does not have), leaving such a write as it is.

Asked first of all, instead of `LOCAL_ACTIVITIES`, which it implies (with every patch before it): one marker, as
before. Runs from before ask `LOCAL_ACTIVITIES` as they did, and verify and record in two local activities."""


class MissingContract(RuntimeError):
    """This worker's app has no such contract version; the workflow task is retried, the run does not fail."""


NEXT_STAGE = {
    DecisionKind.APPROVE: Stage.DELIVERING,
    DecisionKind.REJECT: Stage.REJECTED,
    DecisionKind.CORRECT: Stage.VALIDATING,
    DecisionKind.RETRY: Stage.VALIDATING,
}


class HandoffSteps:
    """A run's state and the steps it takes; `HandoffWorkflow` adds the entry points (run, query, update, signals)."""

    def __init__(self, args: Sequence[RawValue]) -> None:
        self._input = workflow.payload_converter().from_payload(args[0].payload, HandoffInput)
        self._handoff = workflow.info().workflow_type
        # Pinned: the version the trigger checked the payload against, for the whole run, replays included. Runs
        # started before the input carried it have it in their memo (stamped at start from the first release until
        # the input carried it; the hash is a search attribute).
        self._version: int | None = self._input.contract_version or workflow.memo_value(
            "contract_version", None, type_hint=int
        )
        self._contract = registered(workflow.info().task_queue, self._handoff, self._version)
        self._payload = dict(self._input.payload)
        self._stage = Stage.RECEIVED
        self._cases: list[ExceptionCase] = []
        self._deliveries: list[Delivery] = []
        self._unmatched_refusals: list[RefusedDecision] = []
        self._recorded_decisions: set[str] = set()
        self._decision_messages = 0
        self._step = 0
        self._refusal_count = 0
        self._override = False
        self._failure: str | None = None
        self._ride_along_run: bool | None = None  # see LEDGER_WRITES_RIDE_ALONG; asked before any other patch
        self._local_activities = False  # see LOCAL_ACTIVITIES; asked with the above, first
        self._local_turn = asyncio.Lock()  # one local activity at a time, in runs with LOCAL_ACTIVITIES
        self._decisions_recorded_when_verified = False  # see DECISIONS_RECORDED_WHEN_VERIFIED; asked first
        self._deciding = asyncio.Lock()  # one decision at a time, in runs with DECISIONS_RECORDED_WHEN_VERIFIED
        self._recorded_with_decision: StageChange | None = None  # the decision's stage change its verification recorded
        self._reopen_with_refusal: StageChange | None = None  # see `_judge`: written with the refusal it goes with
        self._restate_next = False  # see `_judge`: the next stage change sets the ledger's override and finish outright
        self._unrecorded: StageChange | None = None  # the stage change riding with the next activity
        self._finish_recorded: StageChange | None = None  # the last stage change, recorded by the last delivery
        self._pending_attributes: list[SearchAttributeUpdate[Any]] = []  # upserted with the next stage
        self._budget_cleared = False  # passed the exception budget once: a second delivery is not held again
        self._budget_nudged = False  # a `budget-released` signal came since the run last asked the ledger
        # The stage visibility shows: the trigger starts a run as validating, which it then need not upsert.
        self._visible_stage = workflow.info().typed_search_attributes.get(sa.HANDOFF_STAGE)

    # -- the stages ---------------------------------------------------------------------------------------------------

    async def _validate(self, contract: HandoffContract) -> list[Violation]:
        """Every violation in one pass: the declarative rules inline, the look-ups in one activity."""
        assert contract.trigger is not None
        typed = contract.trigger.payload.model_validate(self._payload).model_dump()
        if self._patched(LOOKUPS_WHERE_THEY_APPLY):
            lookups = list(lookups_to_run(contract.rules, typed))
        else:  # runs that started before: every look-up of the contract itself, none inside a When
            lookups = [(rule, False) for rule in contract.rules if isinstance(rule, Lookup)]
        checks = [
            LookupCheck(
                check=rule.check,
                rule=rule.label,
                field=rule.field,
                value=value_at(self._payload, rule.field),
                reason=rule.reason,
                nested=nested,
            )
            for rule, nested in lookups
        ]
        looked_up = LookupResult()
        if checks:
            request = LookupRequest(
                workflow_id=workflow.info().workflow_id,
                handoff=self._handoff,
                checks=checks,
                stage_change=self._unrecorded,
            )
            try:
                if self._local_activities:
                    looked_up = await self._locally(
                        RUN_LOOKUPS, request, LookupResult, timeout=LOOKUP_TIMEOUT, retry=LOOKUP_RETRY
                    )
                else:
                    looked_up = await workflow.execute_activity(
                        RUN_LOOKUPS,
                        request,
                        result_type=LookupResult,
                        start_to_close_timeout=LOOKUP_TIMEOUT,
                        retry_policy=LOOKUP_RETRY,
                    )
            except ActivityError as error:
                await self._fail(f"The look-ups could not be run: {error.cause or error}")
            self._unrecorded = None  # the look-ups recorded it
        return evaluate(contract.rules, typed, looked_up.failed) + looked_up.violations

    async def _hold_for_decision(
        self, contract: HandoffContract, violations: list[Violation], *, allowed: Set[DecisionKind] | None = None
    ) -> tuple[ExceptionCase, DecisionRecord]:
        """Open a case and wait for its decision, escalating along the chain each time the SLA passes. `allowed`
        narrows the contract's decisions for this case (a drift case is approved or rejected)."""
        policy = contract.exceptions
        assert policy is not None and policy.owner is not None and policy.on_timeout is not None
        sla = policy.sla * self._input.sla_scale
        chain = policy.chain
        now = workflow.now()
        case = ExceptionCase(
            id=f"C-{workflow.uuid4().hex[:12]}",
            handoff=self._handoff,
            workflow_id=workflow.info().workflow_id,
            violations=violations,
            payload=self._payload,
            owner_group=chain[0],
            opened_at=now,
            sla_deadline=now + sla,
            allowed=sorted(policy.allowed if allowed is None else policy.allowed & allowed),
        )
        self._cases.append(case)
        self._upsert_with_next_stage([sa.OWNER_GROUP.value_set(case.owner_group), sa.CASE_ID.value_set(case.id)])
        # New runs queue the notices of a case opening or escalating in the ledger's outbox, with the write that
        # records it: no activity of their own (see activities/outbox.py).
        outbox = self._is_ride_along_run()
        await self._enter(
            Stage.AWAITING_DECISION, case=case, notice=self._notice(case, NoticeEvent.OPENED) if outbox else None
        )
        notify = self._patched(NOTIFY_OWNER_GROUPS)
        self._notify(case, NoticeEvent.OPENED, when=notify and not outbox)
        for index, group in enumerate(chain):
            if index > 0:
                await self._escalate(case, group, sla, queue_notice=outbox)
                self._notify(case, NoticeEvent.ESCALATED, when=notify and not outbox)
            if await self._decided_within(case, sla, warn=notify):
                break
        if case.decision is None:
            case.decision = self._end_of_chain_decision(case, policy)
            case.status = CaseStatus.DECIDED
        # Every caller enters the next stage at once, in this workflow task: the unset goes with that upsert.
        self._upsert_with_next_stage([sa.OWNER_GROUP.value_unset(), sa.CASE_ID.value_unset()])
        return case, case.decision

    async def _decided_within(self, case: ExceptionCase, sla: timedelta, *, warn: bool) -> bool:
        """Wait up to `sla` for the case's decision; with `warn`, the owner group hears when a fifth is left."""
        decided = lambda: case.decision is not None  # noqa: E731 - one condition, waited on twice
        first = sla * SLA_WARNING_AT if warn else sla
        try:
            await workflow.wait_condition(decided, timeout=first)
            return True
        except TimeoutError:
            if not warn:
                return await self._decided_in_turn(case)
        self._notify(case, NoticeEvent.SLA_WARNING)
        try:
            await workflow.wait_condition(decided, timeout=sla - first)
            return True
        except TimeoutError:
            return await self._decided_in_turn(case)

    async def _decided_in_turn(self, case: ExceptionCase) -> bool:
        """The SLA passed: whether a decision being verified then was taken (`DECISIONS_RECORDED_WHEN_VERIFIED`).
        Runs from before escalate at once, and judge that decision after its verdict."""
        if not self._decisions_recorded_when_verified:
            return False
        async with self._deciding:
            return case.decision is not None

    def _notify(self, case: ExceptionCase, event: NoticeEvent, *, when: bool = True) -> None:
        """Tell the owner group, without waiting: a notifier that is down is retried and never holds the run up."""
        if not when:
            return
        sending = workflow.start_activity(
            NOTIFY_OWNERS, self._notice(case, event), start_to_close_timeout=NOTIFY_TIMEOUT, retry_policy=NOTIFY_RETRY
        )
        sending.add_done_callback(_forget_notice)

    def _notice(self, case: ExceptionCase, event: NoticeEvent) -> CaseNotice:
        return CaseNotice(
            workflow_id=workflow.info().workflow_id,
            handoff=self._handoff,
            case_id=case.id,
            event=event,
            owner_group=case.owner_group,
            sla_deadline=case.sla_deadline,
            reasons=[violation.reason for violation in case.violations],
            at=workflow.now(),
        )

    async def _escalate(self, case: ExceptionCase, group: str, sla: timedelta, *, queue_notice: bool) -> None:
        now = workflow.now()
        escalation = Escalation(from_group=case.owner_group, to_group=group, at=now)
        case.owner_group = group
        case.sla_deadline = now + sla
        case.escalations.append(escalation)
        case.first_approval = None  # four eyes within the group that owns the case: the new group starts afresh
        workflow.upsert_search_attributes([sa.OWNER_GROUP.value_set(group)])
        workflow.logger.info("Case %s escalated from %s to %s", case.id, escalation.from_group, group)
        await workflow.execute_activity(
            RECORD_ESCALATION,
            EscalationRecord(
                workflow_id=workflow.info().workflow_id,
                case_id=case.id,
                escalation=escalation,
                sla_deadline=case.sla_deadline,
                notice=self._notice(case, NoticeEvent.ESCALATED) if queue_notice else None,
            ),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
        )

    def _end_of_chain_decision(self, case: ExceptionCase, policy: ExceptionPolicy) -> DecisionRecord:
        decision, reason = end_of_chain_decision(policy, delivery=is_delivery_case(case))
        return DecisionRecord(
            case_id=case.id,
            decision=decision,
            operator="contract",
            group=None,
            reason=reason,
            decided_at=workflow.now(),
            by_timeout=True,
        )

    def _next_stage(self, case: ExceptionCase) -> Stage:
        """Where a decided case sends the run. After a refused delivery, approving or retrying delivers again as it
        is; a correction is validated again first (unless the run's rules were already overridden)."""
        assert case.decision is not None
        decision = case.decision.decision
        if self._input.drift is not None:  # a drift run ends with its case's decision
            return Stage.DELIVERED if decision is DecisionKind.APPROVE else Stage.REJECTED
        if is_delivery_case(case) and decision is not DecisionKind.REJECT:
            if decision is DecisionKind.CORRECT and not self._override:
                return Stage.VALIDATING
            return Stage.DELIVERING
        return NEXT_STAGE[decision]

    async def _deliver(self, contract: HandoffContract) -> list[DeliveryRefusal]:
        """Write each target system's fields, all targets at once; each write happens once, whatever retries.

        Targets that took the record earlier in the run are not written again. Returns the refusals: the systems
        that refused the record, or did not answer within their `attempts`.
        """
        assert contract.sync is not None
        delivered = {delivery.system for delivery in self._deliveries}
        targets = [target for target in contract.sync.targets if target.system not in delivered]
        requests = [
            DeliveryRequest(
                workflow_id=workflow.info().workflow_id,
                handoff=self._handoff,
                system=target.system,
                fields=[
                    SyncedField(
                        path=path,
                        name=target.target_name(path),
                        value=value_at(self._payload, path),
                        transform=target.transforms.get(path),
                    )
                    for path in target.fields
                ],
                source_of_truth=contract.source_of_truth,
                stage_change=self._unrecorded,
            )
            for target in targets
        ]
        if contract.sync.ordered:  # a field no run before it had: no patch needed
            return await self._deliver_in_order(contract, targets, requests)
        finish = self._finish_riding_with(requests)
        # Runs from before refused deliveries opened cases failed on the first error, without waiting for the rest.
        refusals_open_cases = self._patched(REFUSED_DELIVERIES_OPEN_CASES)
        results = await asyncio.gather(
            *(
                workflow.execute_activity(
                    DELIVER,
                    request,
                    result_type=DeliveryResult,
                    start_to_close_timeout=DELIVERY_TIMEOUT,
                    heartbeat_timeout=DELIVERY_HEARTBEAT,
                    retry_policy=_delivery_retry(target.attempts),
                )
                for request, target in zip(requests, targets, strict=True)
            ),
            return_exceptions=refusals_open_cases,
        )
        refusals: list[DeliveryRefusal] = []
        for result, target in zip(results, targets, strict=True):
            if isinstance(result, ActivityError):
                refusals.append(unanswered(target.system, target.attempts, result))
            elif isinstance(result, BaseException):
                raise result
            elif result.refusal is not None:
                refusals.append(result.refusal)
            elif result.delivery is not None:
                self._deliveries.append(result.delivery)
                self._finish_recorded = finish
            if not isinstance(result, BaseException):
                self._unrecorded = None  # recorded by this delivery (`LEDGER_WRITES_RIDE_ALONG`)
        return refusals

    def _finish_riding_with(self, requests: list[DeliveryRequest]) -> StageChange | None:
        """When one write is left and its success ends the run (`LEDGER_WRITES_RIDE_ALONG`): the run's last stage
        change, given to that write to record once it is done; `_finish` then writes nothing more."""
        if len(requests) != 1 or not self._is_ride_along_run():
            return None
        finish = StageChange(
            workflow_id=workflow.info().workflow_id, step=self._step + 1, stage=Stage.DELIVERED, at=workflow.now()
        )
        requests[0] = requests[0].model_copy(update={"finish": finish})
        return finish

    async def _deliver_in_order(
        self, contract: HandoffContract, targets: Sequence[SyncTarget], requests: Sequence[DeliveryRequest]
    ) -> list[DeliveryRefusal]:
        """Write the targets one at a time, in the contract's order. At the first that does not take the record, undo
        what this delivery wrote, last first (`compensation.py`); its refusal says what was undone and what stayed."""
        assert contract.sync is not None
        written_before = [delivery.system for delivery in self._deliveries]
        written: list[Delivery] = []
        for request, target in zip(requests, targets, strict=True):
            try:
                result = await workflow.execute_activity(
                    DELIVER,
                    request,
                    result_type=DeliveryResult,
                    start_to_close_timeout=DELIVERY_TIMEOUT,
                    heartbeat_timeout=DELIVERY_HEARTBEAT,
                    retry_policy=_delivery_retry(target.attempts),
                )
            except ActivityError as error:
                refusal = unanswered(target.system, target.attempts, error)
            else:
                self._unrecorded = None  # recorded by this delivery (`LEDGER_WRITES_RIDE_ALONG`)
                if result.delivery is not None:
                    self._deliveries.append(result.delivery)
                    written.append(result.delivery)
                    continue
                assert result.refusal is not None
                refusal = result.refusal
            compensation = await undo_in_reverse(
                written,
                {target.system: target for target in contract.sync.targets},
                written_before=written_before,
                workflow_id=workflow.info().workflow_id,
                handoff=self._handoff,
            )
            self._deliveries = [delivery for delivery in self._deliveries if delivery.system not in compensation.undone]
            return [with_compensation(refusal, compensation)]
        return []

    async def _finish(
        self, stage: Stage, *, case: ExceptionCase | None = None, decision: DecisionRecord | None = None
    ) -> HandoffResult:
        recorded = self._finish_recorded
        already = recorded is not None and (recorded.stage, recorded.step) == (stage, self._step + 1)
        await self._enter(stage, case=case, decision=decision, failure=self._failure, recorded=already)
        if case is not None:
            self._recorded_decisions.add(case.id)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return HandoffResult(stage=stage, deliveries=self._deliveries, cases=self._cases)

    async def _fail(self, failure: str) -> NoReturn:
        """End the run as failed: recorded in the ledger, then a non-retryable error so Temporal shows it failed."""
        self._failure = failure
        await self._finish(Stage.FAILED)
        raise ApplicationError(failure, non_retryable=True)

    # -- bookkeeping --------------------------------------------------------------------------------------------------

    async def _enter(
        self,
        stage: Stage,
        *,
        run: RunStamp | None = None,
        case: ExceptionCase | None = None,
        decision: DecisionRecord | None = None,
        override: bool = False,
        failure: str | None = None,
        ride_along: bool = False,
        notice: CaseNotice | None = None,
        recorded: bool = False,
    ) -> None:
        """Move to `stage`: the query and the search attribute change now, the ledger records it (idempotently).

        With `ride_along` (a change that holds no case or decision), in runs with `LEDGER_WRITES_RIDE_ALONG`, the
        ledger records it with the next activity that carries it, or with the next stage change.
        """
        riding = self._is_ride_along_run() and ride_along  # the first stage change asks it, before any command
        self._stage = stage
        updates, self._pending_attributes = self._pending_attributes, []
        if not (self._is_ride_along_run() and self._visible_stage == stage.value):
            updates = [*updates, sa.HANDOFF_STAGE.value_set(stage.value)]
            self._visible_stage = stage.value
        if updates:
            workflow.upsert_search_attributes(updates)
        self._step += 1
        earlier, self._unrecorded = self._unrecorded, None
        restates, self._restate_next = self._restate_next, False
        change = StageChange(
            workflow_id=workflow.info().workflow_id,
            step=self._step,
            stage=stage,
            at=workflow.now(),
            run=run or (earlier.run if earlier else None),
            case=case if case is None or decision is None else _decided_case_for_the_ledger(case),
            decision=decision,
            override=(self._override or override) if restates else override,
            failure=failure,
            notice=notice,
            restates=restates,
        )
        if riding:
            self._unrecorded = change
            return
        if recorded:  # the delivery that ended the run recorded it (`_finish_riding_with`)
            return
        if self._taken_as_recorded(change):
            return
        if self._local_activities:
            await self._locally(RECORD_STAGE_CHANGE, change, None, timeout=LEDGER_TIMEOUT, retry=LEDGER_RETRY)
        else:
            await workflow.execute_activity(
                RECORD_STAGE_CHANGE, change, start_to_close_timeout=LEDGER_TIMEOUT, retry_policy=LEDGER_RETRY
            )

    def _taken_as_recorded(self, change: StageChange) -> bool:
        """Whether `change` is the decision's stage change that its verification recorded (then kept until now)."""
        ahead, self._recorded_with_decision = self._recorded_with_decision, None
        if ahead is None:
            return False
        if ahead.model_copy(update={"at": change.at}) == change:
            return True
        # A bug, never seen: the ledger holds another change at this step than the one the run enters. The workflow
        # task fails (and is retried) so that it shows, rather than the ledger telling another story than the run.
        raise RuntimeError(f"Step {change.step}: the decision's verification recorded {ahead}, the run enters {change}")

    def _is_ride_along_run(self) -> bool:
        """Whether this run started with `LEDGER_WRITES_RIDE_ALONG` (or a later patch asked first, which implies it:
        `LOCAL_ACTIVITIES`, `DECISIONS_RECORDED_WHEN_VERIFIED`): asked once, before any other patch, and kept."""
        if self._ride_along_run is None:
            self._decisions_recorded_when_verified = workflow.patched(DECISIONS_RECORDED_WHEN_VERIFIED)
            self._local_activities = self._decisions_recorded_when_verified or workflow.patched(LOCAL_ACTIVITIES)
            self._ride_along_run = self._local_activities or workflow.patched(LEDGER_WRITES_RIDE_ALONG)
        return self._ride_along_run

    async def _locally(
        self, activity: str, argument: Any, result_type: type[Any] | None, *, timeout: timedelta, retry: RetryPolicy
    ) -> Any:
        """A local activity; in runs with `LOCAL_ACTIVITIES`, after the one in flight has finished (see there), and
        failing with an `ActivityError` whose cause is the activity's error, as a regular activity does (the SDK hands
        a local activity's error over as it is)."""
        if not self._local_activities:  # runs from before: as they ran
            return await workflow.execute_local_activity(
                activity, argument, result_type=result_type, start_to_close_timeout=timeout, retry_policy=retry
            )
        async with self._local_turn:
            try:
                return await workflow.execute_local_activity(
                    activity, argument, result_type=result_type, start_to_close_timeout=timeout, retry_policy=retry
                )
            except (ActivityError, CancelledError):
                raise
            except FailureError as error:
                raise ActivityError(
                    f"Local activity {activity} failed",
                    scheduled_event_id=0,
                    started_event_id=0,
                    identity="",
                    activity_type=activity,
                    activity_id="",
                    retry_state=None,
                ) from error

    def _patched(self, patch: str) -> bool:
        """`workflow.patched` for the patches older than `LEDGER_WRITES_RIDE_ALONG`, which a run started with it has
        all of: it asks none of them (each would cost a marker and a search-attribute upsert in its history)."""
        return self._is_ride_along_run() or workflow.patched(patch)

    def _upsert_with_next_stage(self, updates: list[SearchAttributeUpdate[Any]]) -> None:
        """Search attributes that change with the stage the run enters next, in this workflow task: in the same
        upsert as that stage (`LEDGER_WRITES_RIDE_ALONG`), or in one of their own in runs from before."""
        if self._is_ride_along_run():
            self._pending_attributes.extend(updates)
        else:
            workflow.upsert_search_attributes(updates)

    def _stamp(self, contract: HandoffContract) -> RunStamp:
        assert contract.trigger is not None and contract.trigger.dedupe_key is not None
        return RunStamp(
            handoff=contract.name,
            event=self._input.event,
            dedupe_key=str(value_at(self._payload, contract.trigger.dedupe_key)),
            contract_version=contract.version,
            contract_hash=contract.content_hash(),
            payload=self._payload,
            received_at=self._input.received_at,
        )

    def _case(self, case_id: str) -> ExceptionCase | None:
        return next((case for case in self._cases if case.id == case_id), None)

    def _authorised_decisions(self) -> bool:
        """Whether this decision message is authorised and its refusal recorded (see `AUTHORISED_DECISIONS`)."""
        self._decision_messages += 1
        count = self._decision_messages
        return self._patched(AUTHORISED_DECISIONS if count == 1 else f"{AUTHORISED_DECISIONS}-{count}")

    def _decision_turn(self) -> AbstractAsyncContextManager[Any]:
        """The turn a decision message takes to be judged, verified and taken or refused, one at a time (runs with
        `DECISIONS_RECORDED_WHEN_VERIFIED`); runs from before take none, as they ran."""
        if self._is_ride_along_run() and self._decisions_recorded_when_verified:
            return self._deciding
        return nullcontext()

    async def _judge(self, request: DecisionRequest) -> Refusal | None:
        """Authorise the decision (the edge's attestation; the operator and their groups in the ledger), then judge
        it on those groups. In runs from before, judged after the verdict: meanwhile the case may have been decided or
        escalated. New runs judge in their turn, and their verification records the decision it authorises."""
        ahead = self._decision_stage_change(request)
        check = DecisionCheck(
            workflow_id=workflow.info().workflow_id,
            request=request,
            at=workflow.now(),
            owner_group=ahead.case.owner_group if ahead is not None and ahead.case is not None else None,
            stage_change=ahead,
        )
        try:
            verdict: DecisionVerdict = await self._locally(
                VERIFY_DECISION, check, DecisionVerdict, timeout=VERIFY_TIMEOUT, retry=VERIFY_RETRY
            )
        except ActivityError as error:
            refusal: Refusal | None = Refusal(
                kind=RefusalKind.UNAUTHORISED,
                message=f"The decision on case {request.case_id} by {request.operator!r} could not be verified "
                f"({error.cause or error}); the run did not take it: send it again.",
            )
        else:
            if verdict.recorded:  # the operator is in the owner group, the one rule left: judged in this turn
                self._recorded_with_decision = ahead
                return None
            if verdict.problem is not None:
                refusal = Refusal(kind=RefusalKind.UNAUTHORISED, message=verdict.problem)
            else:
                refusal = self._refusal(request, verdict.operator_groups)
        if ahead is not None:
            # Handed to the verification and not confirmed: an attempt that failed (or whose answer was lost) may have
            # written it all the same. Its step is never used again; a refusal puts the stage and the case back at
            # the next (`_reopened`), a decision taken after all is written at it (and replaces it in the ledger).
            self._step += 1
            if refusal is not None:
                self._reopen_with_refusal = self._reopened(request.case_id)
            else:  # taken after all: recorded by the run, at the next step, restating what such a write may have set
                self._restate_next = True
        return refusal

    def _reopened(self, case_id: str) -> StageChange:
        """The run's stage and its open case as a stage change of their own, written with a refusal."""
        case = self._case(case_id)
        assert case is not None and case.decision is None
        self._step += 1
        return StageChange(
            workflow_id=workflow.info().workflow_id,
            step=self._step,
            stage=self._stage,
            at=workflow.now(),
            case=_decided_case_for_the_ledger(case),
            override=self._override,
            restates=True,
        )

    def _decision_stage_change(self, request: DecisionRequest) -> StageChange | None:
        """The stage change the run enters once it takes `request`, for its verification to record: in runs with
        `DECISIONS_RECORDED_WHEN_VERIFIED`, when nothing but the operator's groups could refuse the decision and it
        decides the case now (not a four-eyes first approval). None otherwise: recorded as before, if taken."""
        case = self._case(request.case_id)
        if not self._decisions_recorded_when_verified or case is None or self._unrecorded is not None:
            return None
        if self._refusal(request, [case.owner_group]) is not None or self._needs_second_approval(request):
            return None
        decision = _record_of(case, request)
        decided = case.model_copy(update={"decision": decision, "status": CaseStatus.DECIDED})
        stage = self._next_stage(decided)
        return StageChange(
            workflow_id=workflow.info().workflow_id,
            step=self._step + 1,
            stage=stage,
            at=workflow.now(),
            case=_decided_case_for_the_ledger(decided),
            decision=decision,
            override=self._override_after(decided, stage),
        )

    def _override_after(self, case: ExceptionCase, stage: Stage) -> bool:
        """The run's override once it enters `stage` on the case's decision, as the run's course sets it."""
        assert case.decision is not None
        if stage.is_final:  # rejected, or a drift run's end: `_finish` records no override
            return False
        if is_delivery_case(case):  # after a refused delivery, the override stays as it was
            return self._override
        return case.decision.decision is DecisionKind.APPROVE  # bad data: approving overrides the rules

    def _refusal(self, request: DecisionRequest, operator_groups: Sequence[str]) -> Refusal | None:
        assert self._contract is not None
        return refusal_for(
            request,
            self._cases,
            self._contract,
            self._payload,
            workflow.info().workflow_id,
            operator_groups=operator_groups,
        )

    async def _keep_refusal(self, request: DecisionRequest, refusal: Refusal) -> RefusalRecord | None:
        """Keep a refused decision in its case's history (the run's, for no known case), and return the ledger's
        record of it for `_record_refusal` after the decision's turn: refusals hold up nothing. One that reopens the
        case (see `_judge`) is recorded at once, in the turn, so no later decision or escalation is written first."""
        refused = RefusedDecision(request=request, refusal=refusal.message, kind=refusal.kind, at=workflow.now())
        case = self._case(request.case_id)
        (case.refused if case else self._unmatched_refusals).append(refused)
        self._refusal_count += 1
        reopened, self._reopen_with_refusal = self._reopen_with_refusal, None
        record = RefusalRecord(
            workflow_id=workflow.info().workflow_id,
            handoff=self._handoff,
            sequence=self._refusal_count,
            refused=refused,
            reopened=reopened,
        )
        if reopened is None:
            return record
        await self._record_refusal(record)
        return None

    async def _record_refusal(self, record: RefusalRecord) -> None:
        await workflow.execute_activity(
            RECORD_REFUSAL, record, start_to_close_timeout=LEDGER_TIMEOUT, retry_policy=LEDGER_RETRY
        )

    def _needs_second_approval(self, request: DecisionRequest) -> bool:
        """Four eyes: this decision is the first of two the contract asks for on this case (judged already)."""
        assert self._contract is not None and self._contract.exceptions is not None
        four_eyes = self._contract.exceptions.four_eyes
        case = self._case(request.case_id)
        if four_eyes is None or case is None or case.first_approval is not None:
            return False
        if request.decision not in four_eyes.decisions:
            return False
        if four_eyes.when is None:
            return True
        assert self._contract.trigger is not None
        typed = self._contract.trigger.payload.model_validate(self._payload).model_dump()
        return condition_holds(four_eyes.when, typed)

    async def _hold_first_approval(self, request: DecisionRequest) -> ExceptionCase:
        """Keep the first of two approvals in the case, which stays open, and in the ledger's case history."""
        case = self._case(request.case_id)
        assert case is not None
        case.first_approval = _record_of(case, request)
        workflow.logger.info("Case %s: first approval by %s, waiting for a second", case.id, request.operator)
        await workflow.execute_activity(
            RECORD_FIRST_APPROVAL,
            FirstApprovalRecord(workflow_id=workflow.info().workflow_id, approval=case.first_approval),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
        )
        return case

    def _apply(self, request: DecisionRequest) -> ExceptionCase:
        case = self._case(request.case_id)
        assert case is not None
        if request.decision is DecisionKind.CORRECT:
            self._payload = patched(self._payload, request.patch)
        recorded = self._recorded_with_decision
        case.decision = recorded.decision if recorded and recorded.decision else _record_of(case, request)
        case.status = CaseStatus.DECIDED
        workflow.logger.info("Case %s decided: %s by %s", case.id, request.decision.value, request.operator)
        return case

    # -- the exception budget (only for contracts that declare one) ---------------------------------------------------

    async def _within_budget(self, contract: HandoffContract) -> HandoffResult | None:
        """Before delivering: go on, or wait in stage held until the hold is decided; the run's result when an
        operator rejected the held runs."""
        if self._budget_cleared:
            return None
        answer = await self._ask_budget(contract, hold_id=None)
        if answer.verdict is Verdict.HELD:
            assert answer.hold is not None
            hold = answer.hold
            workflow.logger.warning("Held by the exception budget of %s (hold %s)", self._handoff, hold.id)
            await self._enter(Stage.HELD)
            self._notify_hold(hold)
            answer = await self._wait_for_hold(contract, hold)
        self._budget_cleared = True
        if answer.verdict is Verdict.REJECTED:
            assert answer.hold is not None
            self._failure = (
                f"Held by the exception budget (hold {answer.hold.id}) and rejected by {answer.hold.decided_by}: "
                f"{answer.hold.reason}"
            )
            return await self._finish(Stage.REJECTED)
        return None

    async def _wait_for_hold(self, contract: HandoffContract, hold: Hold) -> BudgetAnswer:
        """Ask the ledger about `hold` until it is decided: at once (a resume may have come before the run showed
        held), then each time a `budget-released` signal comes, and every `BUDGET_RECHECK` in any case."""
        while True:
            self._budget_nudged = False  # before asking: a signal that comes while the ledger answers counts
            answer = await self._ask_budget(contract, hold_id=hold.id)
            if answer.verdict is not Verdict.HELD:
                return answer
            try:
                await workflow.wait_condition(lambda: self._budget_nudged, timeout=BUDGET_RECHECK)
            except TimeoutError:
                continue  # nobody told the run: it asks anyway, in case the signal was lost

    async def _ask_budget(self, contract: HandoffContract, *, hold_id: int | None) -> BudgetAnswer:
        assert contract.exceptions is not None and contract.exceptions.budget is not None
        check = BudgetCheck(
            workflow_id=workflow.info().workflow_id,
            handoff=self._handoff,
            budget=contract.exceptions.budget,
            owner_group=contract.exceptions.owner,
            hold_id=hold_id,
            at=workflow.now(),
        )
        try:
            answer: BudgetAnswer = await workflow.execute_activity(
                CHECK_BUDGET,
                check,
                result_type=BudgetAnswer,
                start_to_close_timeout=LEDGER_TIMEOUT,
                retry_policy=BUDGET_RETRY,
            )
        except ActivityError as error:
            await self._fail(f"The exception budget could not be checked: {error.cause or error}")
        return answer

    def _notify_hold(self, hold: Hold) -> None:
        """Tell the owner group, without waiting; the ledger keeps it to once per hold, however many runs it holds."""
        sending = workflow.start_activity(
            NOTIFY_BUDGET_HOLD,
            HoldNotice(workflow_id=workflow.info().workflow_id, hold=hold),
            start_to_close_timeout=NOTIFY_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
        )
        sending.add_done_callback(_forget_notice)

    # -- drift runs (started by a drift check with `HandoffInput.drift`) ----------------------------------------------

    async def _resolve_drift(self, contract: HandoffContract, finding: DriftFinding) -> HandoffResult:
        """Hold a drift case, one violation per differing field, for the exception owner as any case is held, and end
        the run with its decision: approve (resolved or accepted) -> delivered, anything else -> rejected (dismissed).
        Nothing is written to any system: making the copies right again is the owner's call, outside the run."""
        await self._enter(Stage.RECEIVED, run=self._drift_stamp(contract, finding), ride_along=True)
        case, decision = await self._hold_for_decision(
            contract,
            drift_violations(finding, personal=contract.personal),
            allowed={DecisionKind.APPROVE, DecisionKind.REJECT},
        )
        stage = Stage.DELIVERED if decision.decision is DecisionKind.APPROVE else Stage.REJECTED
        return await self._finish(stage, case=case, decision=decision)

    def _drift_stamp(self, contract: HandoffContract, finding: DriftFinding) -> RunStamp:
        """The drift run's ledger record: the drifted run's dedupe key, whatever the payload holds (or lacks) now."""
        return RunStamp(
            handoff=contract.name,
            event=self._input.event,
            dedupe_key=finding.dedupe_key,
            contract_version=contract.version,
            contract_hash=contract.content_hash(),
            payload=self._payload,
            received_at=self._input.received_at,
        )


def _record_of(case: ExceptionCase, request: DecisionRequest) -> DecisionRecord:
    """The decision as the case keeps it: by whom, for which group (the owner now), why, when."""
    return DecisionRecord(
        case_id=case.id,
        decision=request.decision,
        operator=request.operator,
        group=case.owner_group,
        reason=request.reason,
        patch=request.patch,
        decided_at=workflow.now(),
    )


def _decided_case_for_the_ledger(case: ExceptionCase) -> ExceptionCase:
    """The case as its decision's stage change carries it: without its payload snapshot and violations, which the
    ledger holds since the case opened (they are written only then), so the history does not hold them twice."""
    return case.model_copy(update={"payload": {}, "violations": [], "refused": []})


def _forget_notice(sending: asyncio.Future[Any]) -> None:
    """A notification that failed every attempt is logged, and the run goes on: its case is in the inbox anyway."""
    if not sending.cancelled() and sending.exception() is not None:
        workflow.logger.warning("A notification could not be sent: %s", sending.exception())


def _delivery_retry(attempts: int) -> RetryPolicy:
    """Retries for a write the system did not answer, bounded by the target's `attempts`: then a case opens."""
    return RetryPolicy(
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=attempts,
        non_retryable_error_types=DELIVERY_NOT_RETRIED,
    )


def payload_misfit(contract: HandoffContract, payload: dict[str, Any]) -> str | None:
    """Why the payload does not fit the trigger's model, or None when it does."""
    assert contract.trigger is not None
    try:
        contract.trigger.payload.model_validate(payload)
    except ValidationError as error:
        return f"The payload does not fit {contract.trigger.payload.__name__}: {describe_errors(error)}."
    return None
