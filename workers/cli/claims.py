"""`handoff claim`, `release`, `reassign`, `comment` and `decide-many`: working cases together from the command line.

Each acts as the operator whose token the CLI holds (`HANDOFF_TOKEN`, else `handoff login`), by the ledger's rules
(`activities.ledger.case_history`), the same the API and the inbox follow. `decide-many` decides several open cases
of one handoff with one decision and reason: each case goes to its run on its own, as `handoff decide` sends it,
with its own refusal check and audit row, and the command prints every case's outcome.

Exit codes: 0 done; 1 refused (another holds the case, it is decided, not your group's, no such case), or, for
`decide-many`, any case not decided; 2 bad input (a comment that cannot be kept, no operator of that name to hand
the case to, a bulk request that cannot be sent) or no operator token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine

from handoff.activities.ledger.case_history import (
    BulkDecisionProblem,
    CaseActionRefused,
    PlannedDecision,
    claim_case,
    comment_on_case,
    plan_decisions,
    reassign_case,
    release_case,
)
from handoff.schemas.api import BulkDecisionBody, BulkDecisionResult
from handoff.schemas.case_history import CaseActionRefusalKind, CaseClaim, CaseEvent
from handoff.schemas.contract import DecisionKind
from handoff.schemas.operators import Operator
from handoff.workers.cli.app import app
from handoff.workers.cli.cases import (
    AsJson,
    cli_settings,
    console,
    errors,
    print_json,
    temporal_client,
    token_operator,
)
from handoff.workers.decisions import MissingDecisionKey, decide_planned, decision_key
from handoff.workers.edge import value_problems
from handoff.workers.settings import Settings
from handoff.workers.worker import opened_ledger

T = TypeVar("T")

BAD_INPUT = frozenset({CaseActionRefusalKind.INVALID_COMMENT, CaseActionRefusalKind.BAD_ASSIGNEE})
"""Refusals of what was typed rather than of the case's state: they exit 2, like other bad input."""

CaseArgument = Annotated[str, typer.Argument(help="The case id, e.g. C-1a2b3c4d5e6f.")]


@app.command()
def claim(case_id: CaseArgument, as_json: AsJson = False) -> None:
    """Claim a case, so your group sees you hold it; only you then decide it. Claiming one you hold changes nothing."""
    held = _act(lambda ledger, operator: claim_case(ledger, case_id, operator, at=datetime.now(UTC)))
    _show_claim(held, as_json, f"Case {held.case_id} is yours: {held.owner_group} sees you hold it.")


@app.command()
def release(case_id: CaseArgument, as_json: AsJson = False) -> None:
    """Release a case you hold: anyone of its group may take it then."""
    held = _act(lambda ledger, operator: release_case(ledger, case_id, operator, at=datetime.now(UTC)))
    _show_claim(held, as_json, f"Case {held.case_id} released: nobody holds it.")


@app.command()
def reassign(
    case_id: CaseArgument,
    to: Annotated[str, typer.Option("--to", help="The operator of the case's group who holds it from now on.")],
    as_json: AsJson = False,
) -> None:
    """Hand a case you hold (or that nobody holds) to another operator of its group."""
    held = _act(lambda ledger, operator: reassign_case(ledger, case_id, operator, to.strip(), at=datetime.now(UTC)))
    _show_claim(held, as_json, f"Case {held.case_id} is held by {held.claimed_by} now.")


@app.command()
def comment(
    case_id: CaseArgument,
    text: Annotated[str, typer.Argument(help="The note, 1 to 2000 characters (quote it).")],
    as_json: AsJson = False,
) -> None:
    """Add a note to a case's history, for your group (open or decided cases)."""
    event = _act(lambda ledger, operator: comment_on_case(ledger, case_id, operator, text, at=datetime.now(UTC)))
    if as_json:
        print_json(TypeAdapter(CaseEvent), event)
        return
    console.print(f"Comment added to case {case_id}.")


@app.command(name="decide-many")
def decide_many(
    case_ids: Annotated[list[str], typer.Argument(help="The cases, all open and of one handoff (at most 100).")],
    handoff: Annotated[str, typer.Option("--handoff", help="The handoff every case must be of.")],
    decision: Annotated[DecisionKind, typer.Option("--decision", help="approve, reject or retry.")],
    reason: Annotated[str, typer.Option("--reason", help="Why: kept in each case's audit trail.")],
    as_json: AsJson = False,
) -> None:
    """Decide several open cases of one handoff alike; each is decided on its own, with its own refusal check and
    audit row. Prints every case's outcome; exits 1 unless every case was decided."""
    try:
        body = BulkDecisionBody(case_ids=case_ids, decision=decision, reason=reason, handoff=handoff)
    except ValidationError as invalid:
        for error in invalid.errors():
            field = ".".join(str(part) for part in error["loc"]) or "request"
            errors.print(f"{field}: {error.get('ctx', {}).get('error') or error['msg']}")
        raise typer.Exit(2) from None
    problems = value_problems({"reason": body.reason})
    if problems:
        errors.print("; ".join(f"--reason: {problem.message}" for problem in problems))
        raise typer.Exit(2)
    settings = cli_settings()

    def plan(ledger: Engine, operator: Operator) -> list[PlannedDecision]:
        try:
            return plan_decisions(ledger, body, operator)
        except BulkDecisionProblem as problem:
            errors.print(f"Refused ({problem.kind}): {problem}")
            raise typer.Exit(2) from None

    planned = _act(plan, settings)
    try:
        key = decision_key(settings)
    except MissingDecisionKey as missing:
        errors.print(str(missing))
        raise typer.Exit(2) from None
    result = asyncio.run(_decide_planned(settings, planned, key))
    if as_json:
        print_json(TypeAdapter(BulkDecisionResult), result)
    else:
        for outcome in result.outcomes:
            if outcome.outcome in ("decided", "first-approval") and outcome.decision is not None:
                what = "decided" if outcome.outcome == "decided" else "first approval kept"
                console.print(
                    f"{outcome.case_id}: {what}, {outcome.decision.decision.value}; run -> {outcome.next_stage}"
                )
            else:
                console.print(f"{outcome.case_id}: {outcome.outcome} ({outcome.kind}): {outcome.detail}")
        console.print(
            f"{result.decided} decided, {result.first_approvals} first approval(s), {result.refused} refused, "
            f"{result.failed} failed."
        )
    if result.decided + result.first_approvals < len(result.outcomes):
        raise typer.Exit(1)


# -- plumbing ---------------------------------------------------------------------------------------------------------


def _act(action: Callable[[Engine, Operator], T], settings: Settings | None = None) -> T:
    """Run `action` as the CLI's operator on the ledger; a refusal printed, exit 1 (2 for bad input)."""
    with opened_ledger(settings or cli_settings()) as ledger:
        operator = token_operator(ledger)
        try:
            return action(ledger, operator)
        except CaseActionRefused as refused:
            errors.print(f"Refused ({refused.kind.value}): {refused.message}")
            raise typer.Exit(2 if refused.kind in BAD_INPUT else 1) from None


def _show_claim(held: CaseClaim, as_json: bool, done: str) -> None:
    if as_json:
        print_json(TypeAdapter(CaseClaim), held)
    elif held.changed:
        console.print(done)
    else:
        holder = f"held by {held.claimed_by}" if held.claimed_by else "held by nobody"
        console.print(f"Case {held.case_id} is {holder} already; nothing changed.")


async def _decide_planned(settings: Settings, planned: list[PlannedDecision], key: bytes) -> BulkDecisionResult:
    return await decide_planned(await temporal_client(settings), planned, key=key)
