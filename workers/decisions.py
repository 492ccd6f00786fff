"""Deciding a case from the edge (CLI, API, test kit): find the case's run, attest the decision, send it as an Update.

The edge has authenticated the operator (the API's bearer token, the CLI's operator token); it attests the request
with the decision key (`HANDOFF_DECISION_KEY`), which only Handoff's processes hold, and the run takes only attested
decisions (`activities/authorisation.py`). The workflow is the one judge of a decision (who sent it, owner group,
allowed decisions, already decided): a refused decision comes back as `DecisionRefused` with the workflow's own words
and its `RefusalKind`, and the run has recorded the refusal in the case's history and in the ledger.

The key: `HANDOFF_DECISION_KEY`, the same on every worker, API and CLI host; it is required with a shared ledger (not
SQLite). Without it, on one machine, a key is made once in `<HANDOFF_HOME>/decision.key` (mode 0600) and read by every
process of that home: fine for development, not for a deployment whose processes do not share a disk.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import structlog
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from handoff.activities.authorisation import attest
from handoff.activities.ledger.case_history import PlannedDecision
from handoff.activities.ledger.tables import CaseRow
from handoff.schemas.api import BulkDecisionResult, BulkOutcome
from handoff.schemas.cases import DecisionRequest, DecisionResult, Refusal, RefusalKind
from handoff.workers.edge import value_problems
from handoff.workers.settings import MIN_DECISION_KEY_LENGTH, Settings, load_settings
from handoff.workflows.handoff import HandoffWorkflow

log = structlog.get_logger(__name__)

DEVELOPMENT_KEY_FILE = "decision.key"
"""The development key's file in HANDOFF_HOME, made on first use when HANDOFF_DECISION_KEY is unset."""


BULK_AT_ONCE = 8
"""Decisions of one bulk request in flight together: each waits for its run and the ledger, and a hundred at once
would crowd out every other operator's single decision."""


class DecisionRefused(Exception):
    """The workflow refused the decision; nothing changed. `refusal.kind` says why, `refusal.message` in words."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(refusal.message)


class MissingDecisionKey(RuntimeError):
    """No decision key where one is required; the message says what to set."""


def decision_key(settings: Settings) -> bytes:
    """The key decisions are attested and verified with: HANDOFF_DECISION_KEY, else (SQLite ledger only) the
    development key under HANDOFF_HOME; `MissingDecisionKey` for a shared ledger without one."""
    if settings.decision_key is not None:
        return settings.decision_key.get_secret_value().encode()
    if not settings.ledger_url.startswith("sqlite"):
        raise MissingDecisionKey(
            "HANDOFF_DECISION_KEY is not set, and this ledger is shared (not SQLite): every worker, API and CLI "
            "host needs the same secret to attest and verify decisions. Make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'` and set it on each of them."
        )
    return _development_key(settings.home / DEVELOPMENT_KEY_FILE)


def workflow_of_case(ledger: Engine, case_id: str) -> str:
    """The workflow id of the run a case belongs to, from the ledger; `DecisionRefused(UNKNOWN_CASE)` if none."""
    with Session(ledger) as session:
        case = session.get(CaseRow, case_id)
    if case is None:
        raise DecisionRefused(Refusal(kind=RefusalKind.UNKNOWN_CASE, message=f"No case {case_id!r} in the ledger."))
    return case.workflow_id


async def decide(
    client: Client, workflow_id: str, request: DecisionRequest, *, key: bytes | None = None
) -> DecisionResult:
    """Attest the decision of an authenticated operator with `key` (default: the settings' `decision_key`) and send
    it to the run as an Update; returns once the workflow applied it and the ledger holds it."""
    problems = value_problems({"reason": request.reason}) + value_problems(request.patch)
    if problems:
        # What no run could carry (NaN, a lone surrogate, a NUL) is refused here, as an event's payload is: sent on,
        # it would break the Update's encoding, or reach a target system through the correction.
        described = "; ".join(f"{problem.field}: {problem.message}" for problem in problems)
        raise DecisionRefused(Refusal(kind=RefusalKind.INVALID_CORRECTION, message=f"Nothing changed: {described}."))
    attested = attest(request, key if key is not None else decision_key(load_settings()))
    handle = client.get_workflow_handle(workflow_id)
    try:
        return await handle.execute_update(HandoffWorkflow.decide, attested)
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            # The run has ended (its cases were decided) or never existed.
            raise DecisionRefused(
                Refusal(
                    kind=RefusalKind.ALREADY_DECIDED,
                    message=f"Run {workflow_id} has ended or does not exist; case {request.case_id} cannot be "
                    f"decided any more ({error.message}).",
                )
            ) from None
        raise
    except WorkflowUpdateFailedError as failed:
        cause = failed.cause
        if isinstance(cause, ApplicationError) and cause.type and cause.type in RefusalKind._value2member_map_:
            raise DecisionRefused(Refusal(kind=RefusalKind(cause.type), message=cause.message)) from None
        raise


async def decide_planned(
    client: Client, planned: Sequence[PlannedDecision], *, key: bytes, at_once: int = BULK_AT_ONCE
) -> BulkDecisionResult:
    """Send each planned decision to its run through `decisions.decide`, `at_once` at a time, and collect every
    outcome in the plan's order: decided, a first approval (four eyes), refused (by the plan, or by the run, which
    keeps the refused attempt), or failed (Temporal did not take it). The bulk route and `handoff decide-many` share
    this: it lives beside `decide`, so the CLI need not load the API to use it."""
    gate = asyncio.Semaphore(at_once)

    async def send(item: PlannedDecision) -> BulkOutcome:
        async with gate:
            outcome = await _outcome(item)
        log.info("decisions.bulk_case", case_id=item.case_id, outcome=outcome.outcome, kind=outcome.kind)
        return outcome

    async def _outcome(item: PlannedDecision) -> BulkOutcome:
        if item.refused is not None:
            return item.refused
        assert item.workflow_id is not None and item.request is not None
        try:
            result = await decide(client, item.workflow_id, item.request, key=key)
        except DecisionRefused as refused:
            kind, words = refused.refusal.kind.value, refused.refusal.message
            return BulkOutcome(case_id=item.case_id, outcome="refused", kind=kind, detail=words)
        except (RPCError, WorkflowUpdateFailedError) as error:
            words = f"Temporal did not take the decision ({error}); read the case before sending it again."
            return BulkOutcome(case_id=item.case_id, outcome="failed", kind="temporal-error", detail=words)
        if result.case.decision is None:  # four eyes: the first of two approvals, kept in the open case
            return BulkOutcome(
                case_id=item.case_id,
                outcome="first-approval",
                detail="Kept as the first approval: another operator of the group must agree.",
                decision=result.case.first_approval,
                next_stage=result.next_stage,
            )
        return BulkOutcome(
            case_id=item.case_id, outcome="decided", decision=result.case.decision, next_stage=result.next_stage
        )

    outcomes = list(await asyncio.gather(*(send(item) for item in planned)))
    return BulkDecisionResult(
        decided=sum(outcome.outcome == "decided" for outcome in outcomes),
        first_approvals=sum(outcome.outcome == "first-approval" for outcome in outcomes),
        refused=sum(outcome.outcome == "refused" for outcome in outcomes),
        failed=sum(outcome.outcome == "failed" for outcome in outcomes),
        outcomes=outcomes,
    )


def _development_key(path: Path) -> bytes:
    """The key in `path`, made there first if absent: readable by its owner only, made once even by racing processes."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(draft, path)  # atomic, and fails if another process made the key first: theirs is kept
            log.warning("decisions.development_key", path=str(path), hint="set HANDOFF_DECISION_KEY in production")
        except FileExistsError:
            pass
        finally:
            with suppress(FileNotFoundError):
                draft.unlink()
    key = path.read_text().strip()
    if len(key) < MIN_DECISION_KEY_LENGTH:
        raise MissingDecisionKey(f"{path} holds no usable decision key: delete it, and a new one is made.")
    return key.encode()
