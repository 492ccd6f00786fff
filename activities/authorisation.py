"""Decisions authorised where they are applied: the edge's attestation, and the operator as the ledger has them.

The edge (`workers/decisions.py`, for the API and the CLI) authenticates an operator by their token, then attests the
decision: an HMAC-SHA256, with the decision key only Handoff's processes hold, over the request's canonical form
(case, decision, operator, reason, patch, issued-at). Before a run judges a decision it asks `verify_decision`, a
local activity of its worker, which holds the same key: the attestation must match and be fresh, and the operator
must be in the ledger; the verdict carries the operator's groups from the ledger, never the ones the request claims.

A local activity, because it needs the key (a workflow must see no secret) and the ledger, and because its verdict is
recorded in the run's history: a replay does not ask again, so a rotated key or a removed operator never changes a
decision already taken.

New runs hand it the decision's stage change too, having judged everything but the operator's groups: once the
operator is verified and in the case's owner group, it records the decision in the ledger there and then, and the run
takes it without a second local activity. A write that fails is left to the run, which records the change itself,
retried until the ledger takes it, as it records any stage change.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import structlog
from pydantic_core import to_jsonable_python
from sqlalchemy import Engine
from temporalio import activity

from handoff.activities.ledger import writes
from handoff.activities.ledger.operators import UnknownOperator, operator_named
from handoff.schemas.activities import VERIFY_DECISION, DecisionCheck, DecisionVerdict
from handoff.schemas.cases import DecisionRequest
from handoff.schemas.operators import Role

log = structlog.get_logger(__name__)

SCHEME = "v1"
"""The attestation's format, its prefix (`v1:<hex>`): a later format can be told apart, and refused by name."""
ATTESTATION_LIFETIME = timedelta(minutes=15)
"""How long after the edge issued it a decision is taken: a request copied from a run's history goes stale."""
CLOCK_SKEW = timedelta(minutes=1)
"""How far ahead of the worker's clock the edge's may be."""


def canonical_decision(request: DecisionRequest) -> bytes:
    """The bytes an attestation covers: the request's fields that say who decides what, in one stable JSON form.

    `operator_groups` is not among them: the run takes the groups from the ledger. The patch is normalised as JSON,
    so the edge and the worker agree on it whatever Python types the edge was given.
    """
    if request.issued_at is None:
        raise ValueError("A decision is attested with its issued_at.")
    issued_at = request.issued_at if request.issued_at.tzinfo else request.issued_at.replace(tzinfo=UTC)
    fields = {
        "attests": f"handoff-decision/{SCHEME}",
        "case_id": request.case_id,
        "decision": request.decision.value,
        "operator": request.operator,
        "reason": request.reason,
        "patch": to_jsonable_python(request.patch),
        "issued_at": issued_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def attest(request: DecisionRequest, key: bytes, *, now: datetime | None = None) -> DecisionRequest:
    """The request, issued now (or at `now`) and attested with `key`: what the edge sends to the run."""
    issued = request.model_copy(update={"issued_at": now or datetime.now(UTC), "attestation": None})
    return issued.model_copy(update={"attestation": _mac(issued, key)})


def attestation_problem(request: DecisionRequest, key: bytes, *, at: datetime) -> str | None:
    """Why the request's attestation does not vouch for it at `at`, in words for the operator; None when it does."""
    about = f"The decision on case {request.case_id} by {request.operator!r} was refused"
    how = "Decide through Handoff's API (an operator's token) or `handoff decide`, which attest what they send."
    if request.attestation is None or request.issued_at is None:
        return f"{about}: it carries no attestation, so nothing vouches for who sent it. {how}"
    if not hmac.compare_digest(request.attestation.encode(), _mac(request, key).encode()):
        return (
            f"{about}: its attestation does not match (a forged or altered request, or an API or CLI that holds "
            f"another HANDOFF_DECISION_KEY than this worker). {how}"
        )
    issued_at = request.issued_at if request.issued_at.tzinfo else request.issued_at.replace(tzinfo=UTC)
    if issued_at > at + CLOCK_SKEW:
        return f"{about}: it was attested at {issued_at:%Y-%m-%d %H:%M:%S} UTC, later than now; check the clocks."
    if at - issued_at > ATTESTATION_LIFETIME:
        minutes = int(ATTESTATION_LIFETIME.total_seconds() // 60)
        return (
            f"{about}: it was attested at {issued_at:%Y-%m-%d %H:%M:%S} UTC, more than {minutes} minutes ago. "
            "Send the decision again."
        )
    return None


def _mac(request: DecisionRequest, key: bytes) -> str:
    return f"{SCHEME}:{hmac.new(key, canonical_decision(request), hashlib.sha256).hexdigest()}"


class AuthorisationActivities:
    """Verifies a decision against the decision key and the ledger's operators."""

    def __init__(self, ledger: Engine, key: bytes | None = None) -> None:
        self._ledger = ledger
        self._key = key

    def use_key(self, key: bytes) -> None:
        """The key to verify with: the worker's plugin sets it when a worker is built (a replayer needs none)."""
        self._key = key

    @activity.defn(name=VERIFY_DECISION)
    async def verify_decision(self, check: DecisionCheck) -> DecisionVerdict:
        """The operator's groups in the ledger, or why the decision is not authorised."""
        if self._key is None:
            raise RuntimeError("This worker has no decision key: build it with Handoff's plugin (`app.plugin()`).")
        request = check.request
        problem = attestation_problem(request, self._key, at=check.at)
        if problem is None:
            try:
                operator = await asyncio.to_thread(operator_named, self._ledger, request.operator)
            except UnknownOperator:
                problem = (
                    f"The decision on case {request.case_id} was refused: {request.operator!r} is not an operator "
                    "in the ledger (any more). `handoff operators list` shows who is."
                )
            else:
                if operator.role is Role.OPERATOR:
                    recorded = await self._record_if_owner(check, operator.groups)
                    return DecisionVerdict(operator_groups=operator.groups, recorded=recorded)
                problem = (
                    f"The decision on case {request.case_id} was refused: {request.operator!r} is a "
                    f"{operator.role.value}, and only operators decide cases."
                )
        log.warning(
            "decision.unauthorised", workflow_id=check.workflow_id, case_id=request.case_id, operator=request.operator
        )
        return DecisionVerdict(problem=problem)

    async def _record_if_owner(self, check: DecisionCheck, operator_groups: tuple[str, ...]) -> bool:
        """Record the check's stage change when the verified operator is in the case's owner group; whether the ledger
        holds it (a retried attempt finds it there already). A failed write is logged and left to the run, as is a
        step that holds another change."""
        if check.stage_change is None or check.owner_group not in operator_groups:
            return False
        try:
            return await asyncio.to_thread(writes.record_decision, self._ledger, check.stage_change)
        except Exception:  # any failure: the run records the change itself, retried as it is for any change
            log.warning(
                "decision.unrecorded", workflow_id=check.workflow_id, case_id=check.request.case_id, exc_info=True
            )
            return False
