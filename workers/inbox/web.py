"""What every inbox page shares: the templates, who is signed in, the CSRF check, and how a page is answered.

Pages are rendered on the server by Jinja2 with autoescaping on, so every value from a payload, a reason or a
refusal is shown as text, never as markup. Every answer carries headers for pages that hold personal data and a
decision form: not cached, not framed by another site (a framed form could be clicked blind), forms posted only to
the inbox itself, and no script but the inbox's own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from handoff.activities.ledger.operators import UnknownOperator, operator_named
from handoff.schemas.operators import Operator, Role
from handoff.workers.api.context import Ready
from handoff.workers.decisions import decision_key
from handoff.workers.inbox.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    InboxKeys,
    Session,
    csrf_matches,
    csrf_token,
    decode_session,
)
from handoff.workers.links import INBOX_PATH

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
STATIC_DIRECTORY = HERE / "static"

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
"""Sent with every inbox page (see the module's docstring for why each)."""

READER_ROLES = (Role.OPERATOR, Role.VIEWER, Role.ADMINISTRATOR)
"""Who may sign in: everyone who may read cases over the API. An event source's token may not."""


@dataclass(frozen=True)
class Visitor:
    """The signed-in operator, as the ledger has them now, with their session and its CSRF token."""

    operator: Operator
    session: Session
    csrf: str

    @property
    def may_decide(self) -> bool:
        return self.operator.role is Role.OPERATOR


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined, trim_blocks=True
    )
    environment.filters["time_left"] = time_left
    environment.filters["when"] = when
    environment.filters["path_quote"] = lambda text: quote(str(text), safe="/")
    environment.globals["inbox"] = INBOX_PATH
    environment.globals["csrf_field"] = CSRF_FIELD
    return environment


def keys_of(context: Ready) -> InboxKeys:
    """The inbox's keys, derived from this API's decision key."""
    return InboxKeys.derive(decision_key(context.settings))


def page(request: Request, name: str, values: dict[str, Any], *, status_code: int = 200) -> Response:
    """The template `name` rendered with `values`, and the inbox's security headers."""
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def message_page(
    request: Request, status_code: int, title: str, detail: str, visitor: Visitor | None = None
) -> Response:
    """A page that says what went wrong, in the words the API would answer with."""
    return page(
        request, "message.html", {"title": title, "detail": detail, "visitor": visitor}, status_code=status_code
    )


async def current_visitor(request: Request, context: Ready) -> Visitor | None:
    """Who is signed in, re-read from the ledger; None for no session, a bad or expired one, or an operator who is
    no longer there or may no longer read."""
    keys = keys_of(context)
    session = decode_session(request.cookies.get(SESSION_COOKIE), keys)
    if session is None:
        return None
    try:
        operator = await asyncio.to_thread(operator_named, context.ledger, session.operator)
    except UnknownOperator:
        log.info("inbox.operator_gone", operator=session.operator)
        return None
    if operator.role not in READER_ROLES:
        log.info("inbox.role_lost", operator=operator.name, role=operator.role.value)
        return None
    return Visitor(operator=operator, session=session, csrf=csrf_token(session.nonce, keys))


def to_sign_in(request: Request, *, ended: str | None = None) -> Response:
    """Send the browser to the sign-in page, to come back here after; a stale session cookie is dropped."""
    query: dict[str, str] = {}
    if request.method == "GET" and request.url.path not in (INBOX_PATH, f"{INBOX_PATH}/sign-in"):
        query["next"] = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if ended is not None or request.cookies.get(SESSION_COOKIE):
        query["ended"] = ended or "expired"
    target = f"{INBOX_PATH}/sign-in" + (f"?{urlencode(query)}" if query else "")
    response = RedirectResponse(target, status_code=303)
    if request.cookies.get(SESSION_COOKIE):
        response.delete_cookie(SESSION_COOKIE, path=INBOX_PATH)
    response.headers.update(SECURITY_HEADERS)
    return response


def safe_next(target: object) -> str:
    """Where to go after signing in: a page of the inbox only, so the sign-in cannot be made to send anyone away."""
    if (
        isinstance(target, str)
        and target.startswith(INBOX_PATH)
        and "\\" not in target
        and not any(ord(character) < 32 for character in target)
    ):
        return target
    return INBOX_PATH


async def refused_forgery(request: Request, visitor: Visitor, context: Ready) -> Response | None:
    """403 for a form post without this session's CSRF token (nothing is changed); None when the token is right."""
    form = await request.form()
    if csrf_matches(visitor.session.nonce, form.get(CSRF_FIELD), keys_of(context)):
        return None
    log.warning("inbox.csrf_refused", operator=visitor.operator.name, path=request.url.path)
    return message_page(
        request,
        403,
        "Refused: this form did not come from your inbox",
        "The form's CSRF token is missing or does not belong to your session, so nothing was changed. If you sent "
        "it from the inbox, the page was older than your sign-in: open it again and resend.",
        visitor,
    )


def secure_cookies(request: Request) -> bool:
    """Mark cookies Secure when the browser reached us over https (directly, or through a proxy uvicorn trusts
    with --proxy-headers / FORWARDED_ALLOW_IPS, which sets the scheme from X-Forwarded-Proto)."""
    return request.url.scheme == "https"


def time_left(seconds: float) -> str:
    """An SLA as a person reads it: '29 min left', '1 h 5 min left', '3 min overdue'."""
    span = _span(abs(seconds))
    return f"{span} overdue" if seconds < 0 else f"{span} left"


def _span(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 86400:
        hours, minutes = divmod(whole // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(whole // 3600, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def when(moment: datetime | None) -> str:
    """A moment in UTC, to the second: operators in several time zones read the same time."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates = Jinja2Templates(env=_environment())
"""The inbox's pages (templates/), autoescaped."""
