"""Handoff's HTTP API: events in, cases and runs out, decisions by operators; every route but health needs a token.

`create_app(settings)` builds the FastAPI application; `handoff api` serves it with uvicorn. The OpenAPI
description is at `/docs` and `/openapi.json`.
"""

from __future__ import annotations

from handoff.workers.api.app import create_app

__all__ = ["create_app"]
