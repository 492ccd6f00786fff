"""The inbox's reading pages: "My cases" (most urgent first, filtered by handoff and rule), a run with its stages
and deliveries, and the stylesheet.

An operator's list holds the open cases their groups own now; a viewer or an administrator, who owns none, sees every
open case (read-only). A run reads as the API reads it (`run_detail`, then `shown_run`: personal fields masked for
whoever is not deciding its cases).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from handoff.activities.budget import release_held_runs
from handoff.activities.ledger.budget import HoldRefused, active_holds, decide_hold, may_decide_hold
from handoff.activities.ledger.purge import purged_on
from handoff.activities.ledger.reads import case_detail, open_cases
from handoff.schemas.api import CaseDetail, CaseSummary, RunSummary
from handoff.schemas.budget import Hold, HoldState
from handoff.schemas.operators import Role
from handoff.schemas.runs import HandoffStatus, Stage
from handoff.workers.api.budget import REFUSAL_STATUS
from handoff.workers.api.context import Ready, api_context
from handoff.workers.edge import value_problems
from handoff.workers.inbox.case_page import waiting_first_approval
from handoff.workers.inbox.web import (
    SECURITY_HEADERS,
    STATIC_DIRECTORY,
    current_visitor,
    message_page,
    page,
    refused_forgery,
    to_sign_in,
)
from handoff.workers.links import INBOX_PATH
from handoff.workers.masking import PersonalData, shown_run
from handoff.workers.run_detail import run_detail

log = structlog.get_logger(__name__)

router = APIRouter(prefix=INBOX_PATH)

Context = Annotated[Ready, Depends(api_context)]

STATIC_FILES = frozenset(path.name for path in STATIC_DIRECTORY.iterdir() if path.is_file())
"""The files served under /inbox/static: only these names, so no request can reach another file."""

HAPPY_PATH = (Stage.RECEIVED, Stage.VALIDATING, Stage.AWAITING_DECISION, Stage.DELIVERING, Stage.DELIVERED)
"""The stages a run goes through when all goes well; rejected and failed end it elsewhere."""


@router.get("")
async def my_cases(request: Request, context: Context) -> Response:
    """The open cases of the visitor's groups (all open cases for a viewer), most urgent first, with filters."""
    visitor = await current_visitor(request, context)
    if visitor is None:
        return to_sign_in(request)
    handoff = request.query_params.get("handoff") or None
    rule = request.query_params.get("rule") or None
    mine = visitor.operator.role is Role.OPERATOR
    groups = visitor.operator.groups if mine else (None,)

    def read() -> tuple[list[CaseSummary], CaseDetail | None, list[Hold]]:
        now = datetime.now(UTC)
        found = [case for group in groups for case in open_cases(context.ledger, now=now, group=group, handoff=handoff)]
        decided_id = request.query_params.get("decided")
        decided = case_detail(context.ledger, decided_id, now=now) if decided_id else None
        return sorted(found, key=lambda case: (case.sla_deadline, case.id)), decided, active_holds(context.ledger)

    cases, decided, holds = await asyncio.to_thread(read)
    rules = sorted({label for case in cases for label in case.violations})
    shown = [case for case in cases if rule is None or rule in case.violations]
    return page(
        request,
        "inbox.html",
        {
            "visitor": visitor,
            "mine": mine,
            "cases": shown,
            "handoffs": sorted(contract.name for contract in context.app.catalog.contracts),
            "rules": rules,
            "chosen_handoff": handoff,
            "chosen_rule": rule,
            "decided": decided if decided is not None and decided.decision is not None else None,
            "first_approval": waiting_first_approval(decided),
            "holds": [(hold, may_decide_hold(visitor.operator, hold)) for hold in holds],
        },
    )


@router.post("/handoffs/{name}/resume")
async def resume_held(name: str, request: Request, context: Context) -> Response:
    """Resume a handoff held by its exception budget: its held runs deliver (as `POST /handoffs/{name}/resume`)."""
    return await _decide_hold(request, context, name, HoldState.RESUMED)


@router.post("/handoffs/{name}/reject-held")
async def reject_held(name: str, request: Request, context: Context) -> Response:
    """Reject the held runs of a handoff: they end rejected (as `POST /handoffs/{name}/reject-held`)."""
    return await _decide_hold(request, context, name, HoldState.REJECTED)


async def _decide_hold(request: Request, context: Ready, handoff: str, state: HoldState) -> Response:
    """Check the session and CSRF token, record the decision with the form's reason, tell the held runs."""
    visitor = await current_visitor(request, context)
    if visitor is None:
        return to_sign_in(request)
    refused = await refused_forgery(request, visitor, context)
    if refused is not None:
        return refused
    reason = (await request.form()).get("reason")
    words = reason.strip() if isinstance(reason, str) else ""
    problems = value_problems({"reason": words})
    if not words or problems:
        detail = problems[0].message if problems else "Say why: the reason is kept with the hold."
        return message_page(request, 422, "No reason given", detail, visitor)
    try:
        await asyncio.to_thread(
            decide_hold, context.ledger, handoff, state, visitor.operator, words, at=datetime.now(UTC)
        )
    except HoldRefused as refusal:
        return message_page(request, REFUSAL_STATUS[refusal.kind], "Not decided", refusal.message, visitor)
    await release_held_runs(context.client, context.ledger, handoff)
    log.info("inbox.hold_decided", handoff=handoff, state=state.value, operator=visitor.operator.name)
    response = RedirectResponse(INBOX_PATH, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


@dataclass(frozen=True)
class Moment:
    """One line of a run's timeline."""

    at: datetime
    what: str


@router.get("/runs/{workflow_id:path}")
async def run_page(workflow_id: str, request: Request, context: Context) -> Response:
    """One run: where it is on its way, what happened when, its cases and what was delivered where."""
    visitor = await current_visitor(request, context)
    if visitor is None:
        return to_sign_in(request)
    detail = await run_detail(context.client, context.ledger, workflow_id)
    if detail is None:
        return message_page(
            request, 404, "No such run", f"No run {workflow_id!r}: neither Temporal nor the ledger knows it.", visitor
        )

    def read() -> tuple[datetime | None, PersonalData]:
        return purged_on(context.ledger, workflow_id), PersonalData(context.app.every_version())

    purged_at, personal = await asyncio.to_thread(read)
    shown = shown_run(detail, caller=visitor.operator, personal=personal, purged_at=purged_at)
    status = shown.status
    return page(
        request,
        "run.html",
        {
            "visitor": visitor,
            "detail": shown,
            "status": status,
            "summary": shown.run,
            "path": _stages(status.stage),
            "timeline": _timeline(status, shown.run),
            "purged_at": purged_at,
        },
    )


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    """The inbox's stylesheet (and any other file of its static folder); no session needed, nothing personal."""
    if name not in STATIC_FILES:
        return Response("Not found", status_code=404, media_type="text/plain")
    return FileResponse(STATIC_DIRECTORY / name, headers={"Cache-Control": "public, max-age=3600"})


def _stages(stage: Stage) -> list[tuple[str, str]]:
    """The run's way as (stage, 'done' | 'now' | 'ahead'), ending in rejected or failed when it ended there."""
    way = [*HAPPY_PATH[:-1], stage] if stage in (Stage.REJECTED, Stage.FAILED) else list(HAPPY_PATH)
    if stage is Stage.HELD:  # past its handoff's exception budget: waits just before delivering
        way = [*HAPPY_PATH[:-2], stage, *HAPPY_PATH[-2:]]
    position = way.index(stage)
    return [
        (step.value, "done" if index < position else "now" if index == position else "ahead")
        for index, step in enumerate(way)
    ]


def _timeline(status: HandoffStatus, summary: RunSummary | None) -> list[Moment]:
    """What happened to the run, in order: received, each case opened, escalated and decided, each delivery, the end."""
    moments: list[Moment] = []
    if summary is not None:
        moments.append(Moment(summary.received_at, "received"))
    for case in status.cases:
        rules = ", ".join(violation.rule for violation in case.violations)
        moments.append(Moment(case.opened_at, f"case {case.id} opened for {case.owner_group}: {rules}"))
        for step in case.escalations:
            moments.append(Moment(step.at, f"case {case.id} escalated from {step.from_group} to {step.to_group}"))
        for attempt in case.refused:
            moments.append(
                Moment(
                    attempt.at,
                    f"{attempt.request.operator} tried to {attempt.request.decision.value} case "
                    f"{case.id}: refused ({attempt.refusal})",
                )
            )
        if case.decision is not None:
            by = "the contract, as the SLA passed" if case.decision.by_timeout else case.decision.operator
            moments.append(Moment(case.decision.decided_at, f"case {case.id}: {case.decision.decision.value} by {by}"))
    for delivery in status.deliveries:
        moments.append(Moment(delivery.delivered_at, f"delivered to {delivery.system} as {delivery.record_key}"))
    if summary is not None and summary.finished_at is not None and status.stage.is_final:
        moments.append(Moment(summary.finished_at, f"ended: {status.stage.value}"))
    return sorted(moments, key=lambda moment: moment.at)
