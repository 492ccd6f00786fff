"""Who may use Handoff's API, and for what: operators, administrators, viewers and event sources, by their role.

Everyone the API knows is a row of the ledger's operators table with a role. An operator belongs to one or more
groups declared in the catalog and decides their cases; the other roles need no group. A token is shown once, when
its holder is added, and the ledger keeps only its hash, so no listing here carries a token.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """What a token may do over the API (`GET /healthz` needs none)."""

    ADMINISTRATOR = "administrator"
    """Manages operators, sources and settings; reads everything and may send events. Does not decide cases."""
    OPERATOR = "operator"
    """Decides the cases their groups own; reads."""
    VIEWER = "viewer"
    """Reads cases, runs and the report; changes nothing."""
    SOURCE = "source"
    """Another system that sends events (`POST /events/{event}`), and nothing else."""

    @property
    def article(self) -> str:
        """'an administrator', 'a viewer': the role in a sentence."""
        return f"{'an' if self.value[0] in 'aeiou' else 'a'} {self.value}"


class Operator(BaseModel):
    """Someone with an API token, as listings show them: never with the token."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    groups: tuple[str, ...]
    created_at: datetime
    role: Role = Role.OPERATOR


class OperatorAdded(BaseModel):
    """What adding an operator answers: the operator, and the API token, which is shown this once only."""

    model_config = ConfigDict(frozen=True)

    operator: Operator
    token: str = Field(description="The bearer token for the HTTP API. Only its hash is stored: keep it now.")
