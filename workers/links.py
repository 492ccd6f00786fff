"""Where operators open Handoff, and the address of a case's page there: for the links in notices and on the console.

Kept apart from the inbox (a FastAPI router) so that a worker, which writes these links into its notices, does not
import the web stack to do it.
"""

from __future__ import annotations

from urllib.parse import quote

from handoff.workers.settings import Settings

INBOX_PATH = "/inbox"
"""Where the API serves the operators' inbox (`handoff.workers.inbox`)."""


def public_url(settings: Settings) -> str:
    """Where operators open Handoff: `HANDOFF_PUBLIC_URL`, else the API's own address on this machine."""
    return (settings.public_url or f"http://127.0.0.1:{settings.api_port}").rstrip("/")


def case_link(base_url: str, case_id: str) -> str:
    """The case's page in the inbox, under `base_url` (see `public_url`)."""
    return f"{base_url.rstrip('/')}{INBOX_PATH}/cases/{quote(case_id, safe='')}"
