"""A browser's visit to the inbox over plain HTTP: cookies kept, redirects not followed, forms' CSRF tokens read
from the pages as a browser's form would send them."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from handoff.workers.inbox.session import CSRF_FIELD, SESSION_COOKIE

_CSRF = re.compile(rf'name="{CSRF_FIELD}" value="([^"]*)"')


def csrf_of(page: str) -> str:
    """The CSRF token in a page's first form."""
    found = _CSRF.search(page)
    assert found is not None, f"no CSRF field in the page:\n{page[:2000]}"
    return html.unescape(found.group(1))


class Visit:
    """One browser: its cookie jar and the pages it was given."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def sign_in(self, token: str, *, next_page: str = "/inbox") -> httpx.Response:
        """Load the sign-in page and send its form with `token`; the answer (a 303 when it worked)."""
        form = await self.http.get("/inbox/sign-in")
        return await self.http.post(
            "/inbox/sign-in", data={"token": token, CSRF_FIELD: csrf_of(form.text), "next": next_page}
        )

    async def csrf(self, path: str) -> str:
        """The CSRF token of the forms on the page at `path`."""
        return csrf_of((await self.http.get(path)).text)

    async def post(self, path: str, data: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, data=data)

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get(SESSION_COOKIE)


@asynccontextmanager
async def visiting(url: str) -> AsyncIterator[Visit]:
    """A fresh browser visiting the inbox at `url`."""
    async with httpx.AsyncClient(base_url=url, timeout=30, follow_redirects=False) as http:
        yield Visit(http)


@asynccontextmanager
async def visiting_as(url: str, token: str) -> AsyncIterator[Visit]:
    """A fresh browser visiting the inbox at `url`, signed in with `token`."""
    async with visiting(url) as visit:
        answer = await visit.sign_in(token)
        assert 303 == answer.status_code, answer.text
        yield visit
