"""The handoff workflow: one durable run of a contract, from event to delivery, with bad data held for a decision.

    received -> validating -+-> [held] -> delivering -+-> delivered
                            |                  ^      | the target refuses the record, or does not answer
                            v                  |      v (ordered targets: the earlier writes are undone first)
                     awaiting-decision <-------+------+      approve / correct (validate again) / retry
                            | reject -> rejected
                            | SLA passes -> next group of the chain -> end of chain -> the contract's decision

`held`: the handoff spent its exception budget; the run waits until an operator resumes the handoff or rejects its
held runs. A drift run (started by a drift check) holds one drift case and ends with its decision.

One dynamic workflow serves every contract: the workflow type is the contract's name (`reservation-to-pos`), so
each handoff is its own workflow type in Temporal, and adding a handoff is adding a contract to the app. The run
finds its contract among those the app's plugin registered (`registered.py`), at the version it was started with.
Everything here is deterministic; every side effect (look-ups, deliveries, the ledger) is an activity.

Decisions are authorised where they are applied. Anyone who can reach Temporal can send the `decide` Update or the
`decision` signal with any operator name and groups, so neither is trusted: the edge (API, CLI) that authenticated the
operator attests the request with a key only Handoff's processes hold, and each handler asks the local activity
`verify_decision` (it holds the key; its verdict is recorded in history, so replays and key rotations stay
deterministic) for the attestation's check and the operator's groups in the ledger. The judge (`refusals.py`) runs
on those groups. New runs judge each decision in its turn: all but the operator's groups first, then the verification
checks that the operator is in the case's owner group and records the decision in the ledger, in one local activity
(`DECISIONS_RECORDED_WHEN_VERIFIED` in steps.py); a second decision, an escalation or the end of the chain waits for
it. Runs from before judged after the verdict, so a decision, an escalation or the end of the chain that came
meanwhile counted.

Every refusal is audited, through the Update path too: it is kept in the case's history and recorded in the ledger
(`record_refusal`) before the Update fails with the reason. That is why the Update has no validator: a validator's
rejection leaves no trace in history and cannot write to the ledger, so only the edge could audit it, and only for
requests the edge sent; a request sent straight to Temporal, the one that most needs auditing, would leave none.
Judging in the handler costs a refused Update a few history events: the audit trail itself.

Runs whose decisions were taken before this check replay as they were (`AUTHORISED_DECISIONS`).

This module holds the entry points (run, query, update, signals) and the run's course; the steps and the patches live
in `steps.py`, passed through the sandbox, which runs this module afresh for every run.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from handoff.schemas.budget import BUDGET_RELEASED
    from handoff.schemas.cases import DecisionRequest, DecisionResult
    from handoff.schemas.contract import DecisionKind, HandoffContract
    from handoff.schemas.runs import HandoffResult, HandoffStatus, Stage
    from handoff.workflows.refused_deliveries import delivery_violations
    from handoff.workflows.steps import HandoffSteps, MissingContract, payload_misfit


@workflow.defn(dynamic=True, sandboxed=True)
class HandoffWorkflow(HandoffSteps):
    """Runs the contract named by the workflow type on the payload of one event."""

    @workflow.init
    def __init__(self, args: Sequence[RawValue]) -> None:
        super().__init__(args)

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> HandoffResult:
        contract = self._contract
        if contract is None:
            # Not this run's fault: a worker without its contract version (mid-deploy, or a misrouted start). The
            # workflow task fails and Temporal retries it until a worker whose app has that version takes it.
            version = f" v{self._version}" if self._version else ""
            raise MissingContract(
                f"No handoff {self._handoff!r}{version} in the app of this worker (task queue "
                f"{workflow.info().task_queue!r}): add that version to the app, or keep it in the app's lock file, "
                "until its runs have ended."
            )
        if self._input.drift is not None:  # a drift run: only runs started with a finding take this branch
            return await self._resolve_drift(contract, self._input.drift)
        await self._enter(Stage.VALIDATING, run=self._stamp(contract), ride_along=True)
        misfit = payload_misfit(contract, self._payload)
        if misfit is not None:  # only a start that bypassed the edge's check gets here
            await self._fail(misfit)
        while True:
            if not self._override:
                rejected = await self._validate_until_clean(contract)
                if rejected is not None:
                    return rejected
            if contract.exceptions is not None and contract.exceptions.budget is not None:
                rejected_by_hold = await self._within_budget(contract)
                if rejected_by_hold is not None:
                    return rejected_by_hold
            if self._stage is not Stage.DELIVERING:
                await self._enter(Stage.DELIVERING, ride_along=True)
            refusals = await self._deliver(contract)
            if not refusals:
                return await self._finish(Stage.DELIVERED)
            # The target refused the record, or never answered: its owner decides, as for bad data.
            case, decision = await self._hold_for_decision(contract, delivery_violations(refusals))
            next_stage = self._next_stage(case)
            if next_stage is Stage.REJECTED:
                return await self._finish(Stage.REJECTED, case=case, decision=decision)
            await self._enter(next_stage, case=case, decision=decision, override=self._override)
            self._recorded_decisions.add(case.id)

    async def _validate_until_clean(self, contract: HandoffContract) -> HandoffResult | None:
        """Validate, and hold each set of violations for a decision, until the payload passes or is approved;
        the run's result when a decision rejects it."""
        while violations := await self._validate(contract):
            case, decision = await self._hold_for_decision(contract, violations)
            next_stage = self._next_stage(case)
            if next_stage is Stage.REJECTED:
                return await self._finish(Stage.REJECTED, case=case, decision=decision)
            self._override = decision.decision is DecisionKind.APPROVE
            await self._enter(next_stage, case=case, decision=decision, override=self._override)
            self._recorded_decisions.add(case.id)
            if self._override:
                break
        return None

    # -- messages ---------------------------------------------------------------------------------------------------

    @workflow.query
    def status(self) -> HandoffStatus:
        """The run as it is now: stage, payload, cases with their history, deliveries."""
        return HandoffStatus(
            handoff=self._handoff,
            workflow_id=workflow.info().workflow_id,
            contract_version=self._contract.version if self._contract else 0,
            contract_hash=self._contract.content_hash() if self._contract else "",
            stage=self._stage,
            payload=self._payload,
            cases=self._cases,
            deliveries=self._deliveries,
            override=self._override,
            failure=self._failure,
            unmatched_refusals=self._unmatched_refusals,
        )

    @workflow.update
    async def decide(self, request: DecisionRequest) -> DecisionResult:
        """An operator's decision on the open case. Returns once the ledger holds it; a refused one fails the Update
        with the reason (its type the `RefusalKind`), once the case's history and the ledger hold the refusal."""
        async with self._decision_turn():
            # An Update taken before decisions were authorised was judged by its validator.
            refusal = await self._judge(request) if self._authorised_decisions() else None
            if refusal is not None:
                unrecorded = await self._keep_refusal(request, refusal)
            elif self._needs_second_approval(request):
                case = await self._hold_first_approval(request)
                return DecisionResult(case=case, next_stage=Stage.AWAITING_DECISION.value)
            else:
                case = self._apply(request)
        if refusal is not None:
            if unrecorded is not None:  # recorded after the turn: most refusals hold up no decision nor escalation
                await self._record_refusal(unrecorded)
            raise ApplicationError(refusal.message, type=refusal.kind.value, non_retryable=True)
        await workflow.wait_condition(lambda: case.id in self._recorded_decisions)
        return DecisionResult(case=case, next_stage=self._next_stage(case).value)

    @workflow.signal(name="decision")
    async def decide_by_signal(self, request: DecisionRequest) -> None:
        """The same decision for callers that can only signal. A refused one is recorded, and changes nothing."""
        async with self._decision_turn():
            if self._authorised_decisions():
                refusal = await self._judge(request)
            else:  # a signal taken before decisions were authorised: judged on the groups it claimed, as it was then
                refusal = self._refusal(request, request.operator_groups)
            if refusal is not None:
                unrecorded = await self._keep_refusal(request, refusal)
            elif self._needs_second_approval(request):
                await self._hold_first_approval(request)
            else:
                self._apply(request)
        if refusal is not None and unrecorded is not None:
            await self._record_refusal(unrecorded)

    @workflow.signal(name=BUDGET_RELEASED)
    def budget_released(self) -> None:
        """The handoff's hold was resumed or rejected: ask the ledger again. It carries nothing and proves nothing:
        only the hold's state in the ledger releases the run, so a forged signal costs one look and changes nothing."""
        self._budget_nudged = True
