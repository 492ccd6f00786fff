"""The bare workflow: reservation-to-pos written by hand on temporalio, as temporalio/samples-python writes workflows.

It does what Handoff's run of the reservation-to-pos contract does, with nothing generic: the contract's rules
are `if`s, the stage changes go to the same ledger through the same write, one look-up activity, one delivery to
the POS, and the same `decide` update (with a validator) for bad data. It has the SLA timer on the wait for a
decision (ending in a reject, as the contract does at the end of its chain) but no escalation step, and it takes
approve and reject only: the benchmarks exercise neither escalation nor correct/retry. No search attributes, no
query, no contract stamp: that is what "bare" leaves out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from temporalio.client import Client

    from examples.restaurant.reservation_to_pos import ReservationConfirmed
    from handoff.schemas.activities import RunStamp, StageChange
    from handoff.schemas.cases import CaseStatus, DecisionRecord, DecisionRequest, ExceptionCase, RefusalKind, Violation
    from handoff.schemas.contract import DecisionKind
    from handoff.schemas.runs import Stage

    from bare_activities import (
        BareActivities,
        DecisionAccepted,
        PosDeliveryInput,
        ReservationInput,
        ReservationResult,
        TableLookupInput,
    )

NAME = "bare-reservation-to-pos"
OWNER = "front-of-house"
SLA = timedelta(minutes=30)
CHANNELS = ("web", "phone", "walk-in", "partner")
TABLE = re.compile(r"T\d{1,3}")

# The same timeouts and retries as Handoff's activities.
LEDGER = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=10), non_retryable_error_types=["LedgerError"]),
}
LOOKUP = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30), non_retryable_error_types=["KeyError"]),
}
DELIVERY = {
    "start_to_close_timeout": timedelta(minutes=2),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(seconds=30), non_retryable_error_types=["UnknownField", "InvalidFieldValue"]
    ),
}


@workflow.defn
class ReservationToPos:
    """A confirmed booking opens a table in the POS; bad data waits for a front-of-house decision."""

    def __init__(self) -> None:
        self._case: ExceptionCase | None = None
        self._decision: DecisionRecord | None = None
        self._decision_recorded = False
        self._step = 0

    @workflow.run
    async def run(self, input: ReservationInput) -> ReservationResult:
        payload = input.payload.model_dump(mode="json")
        info = workflow.info()
        await self._record(
            Stage.VALIDATING,
            run=RunStamp(
                handoff=NAME,
                event="reservation.confirmed",
                dedupe_key=input.payload.reservation.id,
                contract_version=1,
                contract_hash="bare",
                payload=payload,
                received_at=input.received_at,
            ),
        )
        table_exists = await workflow.execute_activity_method(
            BareActivities.look_up_table,
            TableLookupInput(workflow_id=info.workflow_id, table_number=input.payload.reservation.table_number),
            **LOOKUP,
        )
        violations = reservation_violations(input.payload, table_exists=table_exists)
        if violations:
            case = self._open_case(violations, payload)
            await self._record(Stage.AWAITING_DECISION, case=case)
            try:
                await workflow.wait_condition(lambda: self._decision is not None, timeout=SLA * input.sla_scale)
            except TimeoutError:
                self._decision = self._timed_out(case)
            case.decision, case.status = self._decision, CaseStatus.DECIDED
            assert self._decision is not None
            if self._decision.decision is DecisionKind.REJECT:
                await self._record(Stage.REJECTED, case=case, decision=self._decision)
                self._decision_recorded = True
                await workflow.wait_condition(workflow.all_handlers_finished)
                return ReservationResult(stage=Stage.REJECTED, case_id=case.id)
            await self._record(Stage.DELIVERING, case=case, decision=self._decision, override=True)
            self._decision_recorded = True
        else:
            await self._record(Stage.DELIVERING)
        delivered = await workflow.execute_activity_method(
            BareActivities.deliver_to_pos,
            PosDeliveryInput(workflow_id=info.workflow_id, fields=pos_fields(payload)),
            **DELIVERY,
        )
        await self._record(Stage.DELIVERED)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ReservationResult(
            stage=Stage.DELIVERED,
            case_id=self._case.id if self._case else None,
            delivered_at=delivered.delivery.delivered_at,
        )

    @workflow.update
    async def decide(self, request: DecisionRequest) -> DecisionAccepted:
        """A front-of-house decision on the open case; returns once the ledger holds it."""
        assert self._case is not None
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
        if self._case is None or request.case_id != self._case.id:
            raise ApplicationError(f"No open case {request.case_id!r}", type=RefusalKind.UNKNOWN_CASE.value)
        if self._decision is not None:
            raise ApplicationError(f"Case {request.case_id} is already decided", type=RefusalKind.ALREADY_DECIDED.value)
        if request.decision not in (DecisionKind.APPROVE, DecisionKind.REJECT):
            raise ApplicationError("Only approve or reject", type=RefusalKind.NOT_ALLOWED.value)
        if OWNER not in request.operator_groups:
            raise ApplicationError(f"Only {OWNER} decides this case", type=RefusalKind.NOT_OWNER.value)

    def _open_case(self, violations: list[Violation], payload: dict[str, Any]) -> ExceptionCase:
        now = workflow.now()
        self._case = ExceptionCase(
            id=f"C-{workflow.uuid4().hex[:12]}",
            handoff=NAME,
            workflow_id=workflow.info().workflow_id,
            violations=violations,
            payload=payload,
            owner_group=OWNER,
            opened_at=now,
            sla_deadline=now + SLA,
            allowed=[DecisionKind.APPROVE, DecisionKind.REJECT],
        )
        return self._case

    def _timed_out(self, case: ExceptionCase) -> DecisionRecord:
        return DecisionRecord(
            case_id=case.id,
            decision=DecisionKind.REJECT,
            operator="sla",
            group=None,
            reason="No decision within the SLA.",
            decided_at=workflow.now(),
            by_timeout=True,
        )

    async def _record(
        self,
        stage: Stage,
        *,
        run: RunStamp | None = None,
        case: ExceptionCase | None = None,
        decision: DecisionRecord | None = None,
        override: bool = False,
    ) -> None:
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
        await workflow.execute_activity_method(BareActivities.record_stage, change, **LEDGER)


def reservation_violations(event: ReservationConfirmed, *, table_exists: bool) -> list[Violation]:
    """The reservation-to-pos contract's rules, written out by hand."""
    r, guest = event.reservation, event.guest
    found: list[Violation] = []

    def broken(rule: str, kind: str, field: str, value: Any, reason: str) -> None:
        found.append(Violation(rule=rule, kind=kind, field=field, value=value, reason=reason))

    if r.party_size is None:
        broken("party size required", "required", "reservation.party_size", None, "The POS sizes the table.")
    elif r.party_size < 1:
        broken("party size >= 1", "min", "reservation.party_size", r.party_size, "At least one guest.")
    elif r.party_size > 12:
        broken("party size <= 12", "max", "reservation.party_size", r.party_size, "Over 12 is an event.")
    if r.starts_at is None:
        broken("starts_at required", "required", "reservation.starts_at", None, "The table needs a time.")
    if not guest.name:
        broken("guest name required", "required", "guest.name", guest.name, "The host greets the party by name.")
    if r.starts_at and r.ends_at and not r.ends_at > r.starts_at:
        broken("ends after start", "compare", "reservation.ends_at", str(r.ends_at), "End after start.")
    if r.table_number and not TABLE.fullmatch(r.table_number):
        broken("table name", "pattern", "reservation.table_number", r.table_number, "Tables are T1, T2, ...")
    if not table_exists:
        broken("table exists", "lookup", "reservation.table_number", r.table_number, "The table must exist.")
    if r.channel and r.channel not in CHANNELS:
        broken("known channel", "one_of", "reservation.channel", r.channel, "Known channels.")
    if r.party_size is not None and r.party_size >= 8 and r.deposit_cents < 1:
        broken("deposit for 8+", "when", "reservation.deposit_cents", r.deposit_cents, "Parties of 8+ pay a deposit.")
    return found


def pos_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The fields the POS receives, under its own names."""
    r, guest = payload["reservation"], payload["guest"]
    fields = {
        "booking_ref": r["id"],
        "reservation_party_size": r.get("party_size"),
        "reservation_starts_at": r.get("starts_at"),
        "reservation_table_number": r.get("table_number"),
        "guest_name": guest.get("name"),
        "guest_allergies": guest.get("allergies"),
    }
    return {name: value for name, value in fields.items() if value is not None}


async def start_reservation(client: Client, payload: dict[str, Any], *, task_queue: str, sla_scale: float = 1.0) -> str:
    """Start the bare workflow for one event; returns its workflow id."""
    event = ReservationConfirmed.model_validate(payload)
    handle = await client.start_workflow(
        ReservationToPos.run,
        ReservationInput(payload=event, received_at=datetime.now(UTC), sla_scale=sla_scale),
        id=f"{NAME}/{event.reservation.id}",
        task_queue=task_queue,
    )
    return handle.id
