"""Event sources: the systems that send events, each with the events it may send and a secret to sign them with."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Source(BaseModel):
    """A system that sends events, as listings show it: never with its secrets."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    events: tuple[str, ...]
    created_at: datetime
    active_secrets: int = Field(default=1, description="1, or 2 while a rotation is under way.")
    rotated_at: datetime | None = Field(default=None, description="When its newest secret was made by a rotation.")


class SourceSecret(BaseModel):
    """What adding a source or rotating its secret answers: the source, and the new secret, shown this once only."""

    model_config = ConfigDict(frozen=True)

    source: Source
    secret: str = Field(description="The key of the HMAC-SHA256 in `Handoff-Signature`. Keep it now.")
