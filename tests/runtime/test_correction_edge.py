"""A correction is held to the edge's rules, like an event's payload: what no run could carry is refused before it
reaches the run (never a server error in the Update's encoding, never a value delivered into a target system)."""

from __future__ import annotations

import pytest

from handoff.schemas.cases import RefusalKind
from handoff.schemas.contract import DecisionKind
from handoff.workers.decisions import DecisionRefused
from handoff.workers.testkit import HandoffKit
from tests.runtime import payloads


@pytest.mark.parametrize(
    ("patch", "reason", "named"),
    [
        ({"reservation.party_size": float("nan")}, "checked", "reservation.party_size: nan is not a number"),
        ({"guest.name": "Ada\ud800"}, "checked", "guest.name: the text holds a lone surrogate"),
        ({"guest.name": "Ada\x00"}, "checked", "guest.name: the text holds a NUL character"),
        ({"reservation.party_size": 10**30}, "checked", "reservation.party_size: the integer is outside"),
    ],
)
async def test_a_correction_no_run_could_carry_is_refused_at_the_edge_and_the_case_stays_open(
    kit: HandoffKit, patch: dict[str, object], reason: str, named: str
) -> None:
    accepted = await kit.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    case = await kit.open_case(accepted.workflow_id)

    with pytest.raises(DecisionRefused) as refused:
        await kit.decide(
            accepted.workflow_id,
            case.id,
            DecisionKind.CORRECT,
            operator="ana",
            groups=("front-of-house",),
            reason=reason,
            patch=patch,
        )

    assert RefusalKind.INVALID_CORRECTION == refused.value.refusal.kind
    assert named in refused.value.refusal.message
    status = await kit.status(accepted.workflow_id)
    assert status.cases[0].decision is None and not status.cases[0].refused  # the run never saw it
