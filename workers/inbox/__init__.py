"""The operators' inbox: server-rendered pages on the API's address, at `/inbox`, for deciding cases from a browser
or a phone.

Sign in with an API token (`signing`); the browser then holds a signed, httponly session cookie, and every form a
CSRF token (`session`). "My cases" lists the open cases of the operator's groups, most urgent first (`pages`); a case
shows each broken rule beside the field it is about, its history, and (for an operator of the owner group) the
decision form, a correction checked against the payload model before it is sent (`case_page`, `correction`). Reads
and decisions go through the same functions as the HTTP API's, so the inbox shows what the API would answer, in its
words, and masks what the API masks.

Serve it by including `router` in the API's FastAPI app (`api.include_router(inbox.router)`): it uses the API's
context (`handoff.workers.api.context`) for the ledger, the Temporal client, the app and the bad-token count.
"""

from __future__ import annotations

from fastapi import APIRouter

from handoff.workers.inbox import case_page, pages, report_page, signing, working
from handoff.workers.links import INBOX_PATH

router = APIRouter(include_in_schema=False)
"""Every page of the inbox, under `/inbox`; out of the OpenAPI document, which describes the JSON API."""
for _module in (signing, pages, case_page, working, report_page):
    router.include_router(_module.router)

__all__ = ["INBOX_PATH", "router"]
