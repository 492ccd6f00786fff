"""Validation look-ups: the contract's `Lookup` rules, checked against the systems that know the answer."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import structlog
from sqlalchemy import Engine
from temporalio import activity

from handoff.activities.ledger.writes import record_stage_change
from handoff.schemas.activities import RUN_LOOKUPS, LookupRequest, LookupResult
from handoff.schemas.cases import Violation

log = structlog.get_logger(__name__)


class LookupProvider(Protocol):
    """Whatever answers named checks: the app, with the look-ups its user registered."""

    async def look_up(self, name: str, value: Any) -> bool: ...


class ValidationActivities:
    """Runs every look-up of one validation pass, and returns the ones that failed as violations."""

    def __init__(self, provider: LookupProvider, ledger: Engine | None = None) -> None:
        self._provider = provider
        self._ledger = ledger

    @activity.defn(name=RUN_LOOKUPS)
    async def run_lookups(self, request: LookupRequest) -> LookupResult:
        """The look-ups' violations; first, the run's stage change that rides with them (the run's first record,
        `validating`, in new runs), so a run costs one activity less than with a ledger write of its own."""
        if request.stage_change is not None:
            if self._ledger is None:
                raise RuntimeError("a stage change rides with the look-ups, but these activities have no ledger")
            await asyncio.to_thread(record_stage_change, self._ledger, request.stage_change)
        violations, failed = [], []
        for lookup in request.checks:
            passed = await self._provider.look_up(lookup.check, lookup.value)
            log.info(
                "lookup.checked",
                handoff=request.handoff,
                workflow_id=request.workflow_id,
                check=lookup.check,
                passed=passed,
            )
            if not passed:
                failed.append(lookup.rule)
            if not passed and not lookup.nested:
                violations.append(
                    Violation(
                        rule=lookup.rule, kind="lookup", field=lookup.field, value=lookup.value, reason=lookup.reason
                    )
                )
        return LookupResult(violations=violations, failed=failed)
