"""Operators: the people who decide exception cases, as the CLI and the API show them.

An operator belongs to one or more groups declared in the catalog. Their API token is shown once, when they are
added, and the ledger keeps only its hash, so no listing here carries a token.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Operator(BaseModel):
    """An operator as listings show them: never with a token."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    groups: tuple[str, ...]
    created_at: datetime


class OperatorAdded(BaseModel):
    """What adding an operator answers: the operator, and the API token, which is shown this once only."""

    model_config = ConfigDict(frozen=True)

    operator: Operator
    token: str = Field(description="The bearer token for the HTTP API. Only its hash is stored: keep it now.")
