"""Who holds a case, and what happened to it: claims, reassignments, comments, and the case's history in time order.

An operator of the group that owns a case may claim it, so the others see who is on it; the holder releases it or
hands it to another operator of that group; anyone of the group comments. A claim counts only while the case is open
and its holder is an operator of the group that owns it now: a decided case holds nobody (it shows who decided), and
a claim from before an escalation is no claim in the next group. The ledger keeps every act (`case_events`), and a
case's history shows them beside its opening, escalations, refused decisions and the decision.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from handoff.schemas.cases import CaseStatus
from handoff.schemas.contract import DecisionKind

COMMENT_MAX_CHARACTERS = 2000
"""A comment is a note for colleagues, not a document: longer text belongs in the system the case is about."""


def _without_nul(text: str) -> str:
    """Refuse NUL, which PostgreSQL text cannot hold (pydantic already refuses what is not Unicode text)."""
    if "\x00" in text:
        raise ValueError("the text holds a NUL character (\\u0000), which the ledger cannot store: remove it")
    return text


def trimmed_not_blank(text: str) -> str:
    """`text` without its surrounding spaces, which must leave something. Trimmed after the length is checked: the
    API's document says at most so many characters as sent, so a longer text is refused even when it is mostly
    spaces (trimming first accepted what the document says is too long)."""
    trimmed = text.strip()
    if not trimmed:
        raise ValueError("String should have at least 1 character other than spaces")
    return trimmed


CommentText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=COMMENT_MAX_CHARACTERS),
    AfterValidator(trimmed_not_blank),
    AfterValidator(_without_nul),
]
"""A comment's words: 1 to 2000 characters as sent, not only spaces, kept trimmed, without NUL. The API's body and
the ledger check the same."""


class CaseEventKind(StrEnum):
    """What a line of a case's history records. The people's acts are rows of `case_events`; the rest is read from
    the case, its escalations, refused decisions and decision."""

    OPENED = "opened"
    """The run opened the case for its group (`to_group`)."""
    CLAIMED = "claimed"
    RELEASED = "released"
    REASSIGNED = "reassigned"
    """`operator` handed the case to `to_operator`."""
    COMMENTED = "commented"
    FIRST_APPROVAL = "first-approval"
    """A first approval waiting for a second (four eyes)."""
    ESCALATED = "escalated"
    """The SLA passed: the case went from `from_group` to `to_group`; a claim from before holds no more."""
    REFUSED = "refused"
    """The run refused a decision (`decision`); `text` says why. Nothing changed."""
    DECIDED = "decided"
    """`operator` decided (`decision`), or 'contract' at the end of the chain; `text` is the reason."""


PEOPLES_ACTS = frozenset(
    {
        CaseEventKind.CLAIMED,
        CaseEventKind.RELEASED,
        CaseEventKind.REASSIGNED,
        CaseEventKind.COMMENTED,
        CaseEventKind.FIRST_APPROVAL,
    }
)
"""The kinds kept as rows of the ledger's `case_events`."""


class CaseEvent(BaseModel):
    """One line of a case's history. Only the fields its kind uses are set."""

    model_config = ConfigDict(frozen=True)

    kind: CaseEventKind
    at: datetime
    operator: str | None = Field(
        default=None, description="Who did it; 'contract' for an end-of-chain decision; none for the run's own acts."
    )
    to_operator: str | None = Field(default=None, description="For a reassignment: who holds the case now.")
    from_group: str | None = None
    to_group: str | None = Field(default=None, description="The group the case went to (opened, escalated).")
    decision: DecisionKind | None = Field(default=None, description="For a decision, or a refused one.")
    text: str | None = Field(default=None, description="A comment's words, a decision's reason, a refusal's words.")


class CaseClaim(BaseModel):
    """Who holds a case now: what claiming, releasing and reassigning answer, and what the inbox shows by a case."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    handoff: str
    owner_group: str
    status: CaseStatus
    claimed_by: str | None = Field(default=None, description="The holder; none when nobody holds the case.")
    claimed_at: datetime | None = None
    decided_by: str | None = Field(default=None, description="Who decided the case, once it is decided.")
    changed: bool = Field(
        default=True, description="False when the request changed nothing (a repeat: already held, already free)."
    )


class CaseActionRefusalKind(StrEnum):
    """Why a claim, release, reassignment or comment was refused. The API maps each to its HTTP status."""

    UNKNOWN_CASE = "unknown-case"
    NOT_AN_OPERATOR = "not-an-operator"
    """Only operators claim and comment; administrators and viewers read."""
    NOT_OWNER = "not-owner"
    """The operator is not in the group that owns the case now."""
    ALREADY_DECIDED = "already-decided"
    """A decided case holds nobody: it cannot be claimed, released or handed on (it can be commented on)."""
    HELD_BY_ANOTHER = "held-by-another"
    """Another operator holds the case: only they may release it, hand it on, or decide it."""
    BAD_ASSIGNEE = "bad-assignee"
    """The operator to hand the case to is unknown, or not an operator of the group that owns it."""
    INVALID_COMMENT = "invalid-comment"
