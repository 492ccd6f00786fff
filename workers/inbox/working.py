"""Working a case together from the inbox: claim it so the group sees who is on it, release it, comment on it.

The rules are the ledger's (`activities.ledger.case_history`), as at the API (`POST /cases/{id}/claim`, `/release`,
`/comments`): only an operator of the group that owns the case now acts on it, a held case is its holder's, a decided
case holds nobody but still takes comments. A refusal is shown on the case page in the ledger's words, with the
status the API gives it (`handoff.workers.api.claims.ACTION_STATUS`). Every form here carries the CSRF token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from handoff.activities.ledger.case_history import CaseActionRefused, claim_case, comment_on_case, release_case
from handoff.schemas.case_history import CaseActionRefusalKind
from handoff.workers.api.claims import ACTION_STATUS
from handoff.workers.api.context import Ready, api_context
from handoff.workers.inbox.case_page import Outcome, render_case
from handoff.workers.inbox.web import SECURITY_HEADERS, current_visitor, refused_forgery, to_sign_in
from handoff.workers.links import INBOX_PATH

log = structlog.get_logger(__name__)

router = APIRouter(prefix=INBOX_PATH)

Context = Annotated[Ready, Depends(api_context)]


@router.post("/cases/{case_id}/claim")
async def claim(case_id: str, request: Request, context: Context) -> Response:
    """Take the case: the group sees who holds it, and only the holder decides it while they do."""
    return await _act(request, context, case_id, "claim", claim_case)


@router.post("/cases/{case_id}/release")
async def release(case_id: str, request: Request, context: Context) -> Response:
    """Let the case go, so anyone of the group may take it."""
    return await _act(request, context, case_id, "release", release_case)


@router.post("/cases/{case_id}/comment")
async def comment(case_id: str, request: Request, context: Context) -> Response:
    """Add a note for the group to the case's history."""
    form = await request.form()
    text = form.get("comment")
    words = text if isinstance(text, str) else ""
    return await _act(request, context, case_id, "comment", comment_on_case, words)


async def _act(
    request: Request, context: Ready, case_id: str, verb: str, act: Callable[..., Any], *arguments: Any
) -> Response:
    """Check the session and the form's CSRF token, do the act in the ledger, and show the case again."""
    visitor = await current_visitor(request, context)
    if visitor is None:
        return to_sign_in(request)
    refused = await refused_forgery(request, visitor, context)
    if refused is not None:
        return refused
    bound = log.bind(operator=visitor.operator.name, case_id=case_id)
    try:
        await asyncio.to_thread(act, context.ledger, case_id, visitor.operator, *arguments, at=datetime.now(UTC))
    except CaseActionRefused as refusal:
        bound.info("inbox.case_act_refused", act=verb, refusal=refusal.kind.value)
        outcome = Outcome(status_code=ACTION_STATUS[refusal.kind])
        if refusal.kind is CaseActionRefusalKind.INVALID_COMMENT:
            outcome.problems["comment"] = refusal.message  # beside the box, which keeps the words typed
            outcome.comment = arguments[0] if arguments else ""
        else:
            outcome.error = refusal.message
        return await render_case(request, context, visitor, case_id, outcome)
    bound.info("inbox.case_act", act=verb)
    response = RedirectResponse(f"{INBOX_PATH}/cases/{quote(case_id, safe='')}", status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response
