"""A case in the inbox: what is wrong, beside the fields it is about; what happened to it; and, for an operator of
the group that owns it now, the decision form.

The case reads as `GET /cases/{id}` reads it (`case_detail`, then `shown_case`: personal fields masked for everyone
but the owner group's operators). A decision goes the API's way too: `handoff.workers.decisions.decide`, attested,
judged by the workflow, each refusal shown in the workflow's words with the status the API gives it
(`handoff.workers.api.cases.REFUSAL_STATUS`). A correction is checked against the payload model first
(`correction`), so a typo is shown next to its field and never reaches the run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from temporalio.service import RPCError, RPCStatusCode

from handoff.activities.ledger.case_history import CaseActionRefused, check_claim_for_decision
from handoff.activities.ledger.purge import purged_on
from handoff.activities.ledger.reads import case_detail, run_summary
from handoff.schemas.api import CaseDetail
from handoff.schemas.case_history import CaseEventKind
from handoff.schemas.cases import CaseStatus, DecisionRequest, Violation
from handoff.schemas.contract import DecisionKind, HandoffContract
from handoff.workers.api.cases import REFUSAL_STATUS
from handoff.workers.api.claims import ACTION_STATUS
from handoff.workers.api.context import Ready, api_context
from handoff.workers.app import Handoffs
from handoff.workers.decisions import DecisionRefused, decide, decision_key, workflow_of_case
from handoff.workers.inbox.correction import FIELD_PREFIX, FormField, form_fields, read_correction
from handoff.workers.inbox.web import (
    SECURITY_HEADERS,
    Visitor,
    current_visitor,
    message_page,
    page,
    refused_forgery,
    to_sign_in,
)
from handoff.workers.links import INBOX_PATH
from handoff.workers.masking import PersonalData, sees_personal_data, shown_case

log = structlog.get_logger(__name__)

router = APIRouter(prefix=INBOX_PATH)

Context = Annotated[Ready, Depends(api_context)]


@dataclass(frozen=True)
class Row:
    """One payload field on the case page: its value (an input, for the deciding operator), what broke on it, and
    what is wrong with the value just typed."""

    path: str
    text: str
    widget: str
    violations: list[Violation]
    problem: str | None = None


@dataclass(frozen=True)
class Event:
    """One line of the case's history."""

    at: datetime
    what: str
    who: str = ""
    words: str = ""


@dataclass(frozen=True)
class FirstApproval:
    """A four-eyes first approval an open case waits with, for a second operator of the group that owns it."""

    case_id: str
    operator: str
    group: str
    words: str
    """As the case's history keeps it: the decision, the corrected fields' names, the reason."""


@dataclass
class Outcome:
    """What a refused or invalid post puts back on the page: the words, per field where they belong."""

    status_code: int = 200
    error: str | None = None
    problems: dict[str, str] = field(default_factory=dict)
    fields: list[FormField] | None = None
    reason: str = ""
    comment: str = ""


@router.get("/cases/{case_id}")
async def case_page(case_id: str, request: Request, context: Context) -> Response:
    """The case as the visitor may see it, with the decision form when they may decide it."""
    visitor = await current_visitor(request, context)
    if visitor is None:
        return to_sign_in(request)
    return await render_case(request, context, visitor, case_id, Outcome())


@router.post("/cases/{case_id}/decision")
async def decide_case(case_id: str, request: Request, context: Context) -> Response:
    """Send the operator's decision to the case's run; back to their cases once the run took it."""
    visitor = await current_visitor(request, context)
    if visitor is None:
        return to_sign_in(request)
    refused = await refused_forgery(request, visitor, context)
    if refused is not None:
        return refused
    operator = visitor.operator
    bound = log.bind(operator=operator.name, case_id=case_id)
    if not visitor.may_decide:
        return message_page(
            request,
            403,
            "You cannot decide cases",
            f"This needs the operator role; you ({operator.name}) are {operator.role.article}. Use a token of that "
            "role: an administrator adds one with `handoff operators add NAME --role ROLE`.",
            visitor,
        )
    form = await request.form()
    reason = str(form.get("reason") or "").strip()
    try:
        decision = DecisionKind(str(form.get("decision")))
    except ValueError:
        allowed = ", ".join(kind.value for kind in DecisionKind)
        return await render_case(request, context, visitor, case_id, Outcome(422, f"Choose a decision: {allowed}."))
    outcome = Outcome(reason=reason)
    patch: dict[str, Any] = {}
    if decision is DecisionKind.CORRECT:
        detail, contract = await asyncio.to_thread(_case_and_contract, context, case_id)
        if detail is None:
            return await render_case(request, context, visitor, case_id, outcome)  # the page says: no such case
        if contract is None or contract.trigger is None:
            outcome.status_code = 422
            outcome.error = (
                f"This API's app does not have the {detail.handoff} contract version this case's run started under, "
                "so a correction cannot be checked here; nothing was sent. Approve, reject or retry, or correct it "
                "through an API or CLI that runs with that version (kept in the app's lock file)."
            )
            return await render_case(request, context, visitor, case_id, outcome)
        correction = read_correction(contract.trigger.payload, detail.payload, form)
        outcome.fields = correction.fields
        if correction.problems:
            outcome.status_code, outcome.problems = 422, correction.problems
            outcome.error = "The correction does not fit the payload; nothing was sent. See the fields marked below."
            return await render_case(request, context, visitor, case_id, outcome)
        patch = correction.patch
    if not reason:
        outcome.status_code, outcome.problems = 422, {"reason": "Say why: the reason is kept in the audit trail."}
        outcome.error = "A decision needs a reason; nothing was sent."
        return await render_case(request, context, visitor, case_id, outcome)
    try:
        # A case another operator of the group holds is theirs to decide: the edge's rule, as at the API.
        await asyncio.to_thread(check_claim_for_decision, context.ledger, case_id, operator)
        workflow_id = await asyncio.to_thread(workflow_of_case, context.ledger, case_id)
        request_ = DecisionRequest(
            case_id=case_id,
            decision=decision,
            operator=operator.name,
            operator_groups=operator.groups,
            reason=reason,
            patch=patch,
        )
        await decide(context.client, workflow_id, request_, key=decision_key(context.settings))
    except CaseActionRefused as held:
        bound.info("inbox.decision_held", refusal=held.kind.value)
        outcome.status_code, outcome.error = ACTION_STATUS[held.kind], held.message
        return await render_case(request, context, visitor, case_id, outcome)
    except DecisionRefused as refusal:
        kind = refusal.refusal.kind
        bound.info("inbox.decision_refused", refusal=kind.value)
        outcome.status_code, outcome.error = REFUSAL_STATUS[kind], refusal.refusal.message
        return await render_case(request, context, visitor, case_id, outcome)
    except RPCError as error:
        bound.warning("inbox.temporal_error", status=error.status.name if error.status else None)
        unavailable = error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
        outcome.status_code = 503 if unavailable else 502
        outcome.error = (
            f"Temporal is unavailable ({error.message}); nothing was changed. Retry in a moment."
            if unavailable
            else f"Temporal refused the call: {error.message}"
        )
        return await render_case(request, context, visitor, case_id, outcome)
    bound.info("inbox.decision", decision=decision.value)
    response = RedirectResponse(f"{INBOX_PATH}?{urlencode({'decided': case_id})}", status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


async def render_case(request: Request, context: Ready, visitor: Visitor, case_id: str, outcome: Outcome) -> Response:
    """The case page, with what a post left to say."""

    def read() -> tuple[CaseDetail | None, HandoffContract | None, datetime | None, PersonalData]:
        detail, contract = _case_and_contract(context, case_id)
        purged_at = purged_on(context.ledger, detail.workflow_id) if detail else None
        return detail, contract, purged_at, PersonalData(context.app.every_version())

    detail, contract, purged_at, personal = await asyncio.to_thread(read)
    if detail is None:
        return message_page(request, 404, "No such case", f"No case {case_id!r} in the ledger.", visitor)
    owner = sees_personal_data(visitor.operator, {detail.owner_group})
    shown = shown_case(detail, caller=visitor.operator, personal=personal)
    model = contract.trigger.payload if contract is not None and contract.trigger is not None else None
    in_group = visitor.may_decide and owner
    deciding = in_group and detail.status is CaseStatus.OPEN
    correcting = deciding and model is not None and DecisionKind.CORRECT in detail.allowed and purged_at is None
    fields = (outcome.fields or form_fields(model, shown.payload)) if correcting and model else _flat(shown.payload)
    by_field: dict[str, list[Violation]] = {}
    for violation in shown.violations:
        by_field.setdefault(violation.field, []).append(violation)
    rows = [Row(f.path, f.text, f.widget, by_field.pop(f.path, []), outcome.problems.get(f.path)) for f in fields]
    return page(
        request,
        "case.html",
        {
            "visitor": visitor,
            "case": shown,
            "rows": rows,
            "elsewhere": [violation for found in by_field.values() for violation in found],
            "history": _history(shown),
            "first_approval": waiting_first_approval(detail),
            "deciding": deciding,
            "in_group": in_group,
            "holder": detail.claimed_by,
            "held_by_me": detail.claimed_by == visitor.operator.name,
            "comment": outcome.comment,
            "comment_problem": outcome.problems.get("comment"),
            "correcting": correcting,
            "others": [kind.value for kind in detail.allowed if kind is not DecisionKind.CORRECT],
            "why_read_only": _why_read_only(visitor, detail, deciding),
            "error": outcome.error,
            "general_problem": outcome.problems.get(""),
            "reason_problem": outcome.problems.get("reason"),
            "reason": outcome.reason,
            "purged_at": purged_at,
            "field_prefix": FIELD_PREFIX,
        },
        status_code=outcome.status_code,
    )


def _case_and_contract(context: Ready, case_id: str) -> tuple[CaseDetail | None, HandoffContract | None]:
    """The case from the ledger, and the contract version its run started under (None if the app lacks it)."""
    detail = case_detail(context.ledger, case_id, now=datetime.now(UTC))
    if detail is None:
        return None, None
    run = run_summary(context.ledger, detail.workflow_id)
    return detail, contract_of(context.app, detail.handoff, run.contract_version if run else None)


def contract_of(app: Handoffs, handoff: str, version: int | None) -> HandoffContract | None:
    """The contract version a run started under: a correction is checked against that version's payload model."""
    versions = [contract for contract in app.every_version() if contract.name == handoff]
    exact = next((contract for contract in versions if contract.version == version), None)
    if exact is not None or version is not None:
        return exact
    return max(versions, key=lambda contract: contract.version, default=None)


def _flat(payload: Mapping[str, Any], prefix: str = "") -> list[FormField]:
    """A payload's leaves as read-only rows: `entity.field` and its value as text (lists as JSON)."""
    rows: list[FormField] = []
    for key, value in payload.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            rows.extend(_flat(value, path))
        else:
            text = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            rows.append(FormField(path=path, text=text, widget="text"))
    return rows


def waiting_first_approval(case: CaseDetail | None) -> FirstApproval | None:
    """The first approval the open case waits with: its latest, unless the case escalated since (the workflow starts
    the next group afresh)."""
    if case is None or case.status is not CaseStatus.OPEN:
        return None
    for line in reversed(case.history):
        if line.kind is CaseEventKind.ESCALATED:
            return None
        if line.kind is CaseEventKind.FIRST_APPROVAL:
            return FirstApproval(case.id, line.operator or "", case.owner_group, line.text or "")
    return None


def _history(case: CaseDetail) -> list[Event]:
    """The case's history as the ledger tells it (`activities.ledger.case_history`), oldest first, in words."""
    events = []
    for line in case.history:
        who, words = line.operator or "", line.text or ""
        if line.kind is CaseEventKind.OPENED:
            what, who = "opened", f"for {line.to_group}"
            words = " ".join(violation.reason for violation in case.violations)
        elif line.kind is CaseEventKind.ESCALATED:
            what, who, words = "escalated", f"{line.from_group} → {line.to_group}", "the SLA passed"
        elif line.kind is CaseEventKind.REASSIGNED:
            what = f"handed to {line.to_operator}"
        elif line.kind is CaseEventKind.FIRST_APPROVAL:
            what = "first approval: waits for a second operator of the group"
        elif line.kind is CaseEventKind.REFUSED:
            what = f"{line.decision.value if line.decision else 'decision'} refused"
        elif line.kind is CaseEventKind.DECIDED:
            what = f"decided: {line.decision.value if line.decision else '?'}"
            if case.decision is not None:
                if case.decision.by_timeout:
                    who = "the contract, as the SLA passed"
                elif case.decision.group:
                    who = f"{who} ({case.decision.group})"
                changed = ", ".join(f"{path} = {_text(value)}" for path, value in case.decision.patch.items())
                words += f" — set {changed}" if changed else ""
        else:
            what = line.kind.value
        events.append(Event(line.at, what, who, words))
    return events


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _why_read_only(visitor: Visitor, detail: CaseDetail, deciding: bool) -> str | None:
    """Why there is no decision form, in a sentence; None when there is one."""
    if deciding:
        return None
    if detail.status is not CaseStatus.OPEN:
        return "This case has been decided."
    if not visitor.may_decide:
        return f"You are {visitor.operator.role.article}: you read cases, operators decide them."
    groups = ", ".join(visitor.operator.groups) or "no group"
    return f"This case is owned by {detail.owner_group} now; you are in {groups}, so you read it without deciding."
