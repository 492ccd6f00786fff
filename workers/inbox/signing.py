"""Signing in to the inbox with an API token, and signing out.

The token is checked as the API checks a bearer token (`operator_for_token`), and a wrong one counts against the
client's address in the same count the API keeps (`handoff.workers.api.throttle`): guessing through the sign-in form
is no cheaper than guessing through `Authorization`. A right one becomes a session cookie (`session`) and is not kept.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from handoff.activities.ledger.operators import operator_for_token
from handoff.workers.api.context import Ready, api_context
from handoff.workers.inbox.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGN_IN_COOKIE,
    SIGN_IN_SECONDS,
    csrf_matches,
    csrf_token,
    encode_session,
    new_session,
    new_sign_in_nonce,
)
from handoff.workers.inbox.web import (
    READER_ROLES,
    SECURITY_HEADERS,
    current_visitor,
    keys_of,
    page,
    refused_forgery,
    safe_next,
    secure_cookies,
    to_sign_in,
)
from handoff.workers.links import INBOX_PATH

log = structlog.get_logger(__name__)

router = APIRouter(prefix=INBOX_PATH)

Context = Annotated[Ready, Depends(api_context)]

ENDED = {
    "expired": "Your session has ended (it expired, or it is not valid here any more). Sign in again.",
    "signed-out": "You have signed out.",
}
"""What the sign-in page says after a session ended, by the `ended` query parameter (never its raw text)."""


@router.get("/sign-in")
async def sign_in_page(request: Request, context: Context) -> Response:
    """The sign-in form; a visitor who is signed in already goes to their cases."""
    if await current_visitor(request, context) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    notice = ENDED.get(request.query_params.get("ended", ""))
    return _sign_in_form(request, context, notice=notice, status_code=200)


@router.post("/sign-in")
async def sign_in(request: Request, context: Context) -> Response:
    """Check the token and the form's CSRF token; start a session for the token's holder."""
    form = await request.form()
    keys = keys_of(context)
    next_page = safe_next(form.get("next"))
    if not csrf_matches(request.cookies.get(SIGN_IN_COOKIE), form.get(CSRF_FIELD), keys):
        log.warning("inbox.sign_in_csrf_refused")
        return _sign_in_form(
            request,
            context,
            error="This sign-in form was not the one your browser was given (it is too old, or it came from "
            "another site). Nothing happened: sign in again here.",
            status_code=403,
            next_page=next_page,
        )
    address = request.client.host if request.client else "unknown"
    wait = context.failures.retry_after(address)
    if wait is not None:
        response = _sign_in_form(
            request,
            context,
            error=f"Too many requests with a bad API token from {address}: {context.failures.limit} within "
            f"{context.failures.window_seconds:g} s. Wait {wait} s, then send a valid token.",
            status_code=429,
            next_page=next_page,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    token = form.get("token")
    token = token.strip() if isinstance(token, str) else ""
    operator = await asyncio.to_thread(operator_for_token, context.ledger, token) if token else None
    if operator is None:
        context.failures.record(address)
        log.warning("inbox.bad_token", client=address)
        return _sign_in_form(
            request,
            context,
            error="The API token is not valid: it matches no one. Ask an administrator for a new one "
            "(`handoff operators add NAME --role operator --group GROUP` prints it once).",
            status_code=401,
            next_page=next_page,
        )
    if operator.role not in READER_ROLES:
        log.info("inbox.wrong_role", operator=operator.name, role=operator.role.value)
        return _sign_in_form(
            request,
            context,
            error=f"The inbox needs the viewer, operator or administrator role; you ({operator.name}) are "
            f"{operator.role.article}. Use a token of that role: an administrator adds one with "
            "`handoff operators add NAME --role ROLE`.",
            status_code=403,
            next_page=next_page,
        )
    session = new_session(operator.name)
    log.info("inbox.signed_in", operator=operator.name, role=operator.role.value)
    response = RedirectResponse(next_page, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        encode_session(session, keys),
        max_age=SESSION_SECONDS,
        path=INBOX_PATH,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=INBOX_PATH)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, context: Context) -> Response:
    """End the session in this browser (the form's CSRF token is checked: another site cannot sign you out)."""
    visitor = await current_visitor(request, context)
    if visitor is None:
        return to_sign_in(request)
    refused = await refused_forgery(request, visitor, context)
    if refused is not None:
        return refused
    log.info("inbox.signed_out", operator=visitor.operator.name)
    return to_sign_in(request, ended="signed-out")


def _sign_in_form(
    request: Request,
    context: Ready,
    *,
    status_code: int,
    notice: str | None = None,
    error: str | None = None,
    next_page: str | None = None,
) -> Response:
    """The form, with a CSRF token tied to this browser's pre-session cookie (made now if it has none)."""
    nonce = request.cookies.get(SIGN_IN_COOKIE) or new_sign_in_nonce()
    values = {
        "visitor": None,
        "notice": notice,
        "error": error,
        "csrf": csrf_token(nonce, keys_of(context)),
        "next": next_page or safe_next(request.query_params.get("next")),
    }
    response = page(request, "sign_in.html", values, status_code=status_code)
    response.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        max_age=SIGN_IN_SECONDS,
        path=INBOX_PATH,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    return response
