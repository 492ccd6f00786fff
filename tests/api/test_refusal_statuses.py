"""Every reason the workflow gives for refusing a decision has its HTTP status: a new kind can never become a 500."""

from __future__ import annotations

from handoff.schemas.cases import RefusalKind
from handoff.workers.api.cases import REFUSAL_STATUS


def test_every_refusal_kind_has_a_client_error_status() -> None:
    assert set(RefusalKind) == set(REFUSAL_STATUS)
    assert all(400 <= status < 500 for status in REFUSAL_STATUS.values())
