"""Assertions the API tests share: what "nothing was started" and "nothing changed" mean, checked for real."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, select
from temporalio.service import RPCError, RPCStatusCode

from handoff.activities.ledger.tables import CaseRow, DecisionRow, RunRow
from handoff.schemas.cases import ExceptionCase
from handoff.schemas.runs import HandoffStatus, Stage
from handoff.workers.testkit import HandoffKit


async def assert_not_started(kit: HandoffKit, workflow_id: str) -> None:
    """Temporal has no run of this id and the ledger has no line for it."""
    with pytest.raises(RPCError) as missing:
        await kit.client.get_workflow_handle(workflow_id).describe()
    with Session(kit.ledger) as session:
        recorded = session.get(RunRow, workflow_id)
    assert (RPCStatusCode.NOT_FOUND, None) == (missing.value.status, recorded)


def ledger_runs(kit: HandoffKit) -> int:
    with Session(kit.ledger) as session:
        return session.exec(select(func.count()).select_from(RunRow)).one()


async def run_state(kit: HandoffKit, workflow_id: str) -> tuple[HandoffStatus, str, list[tuple[Any, ...]], int]:
    """What a refused decision must leave as it was: the live status, and the ledger's stage, cases and decisions.
    (Not the run's step count: a refusal may write the stage and the case again, as they were.)"""
    status = await kit.status(workflow_id)
    with Session(kit.ledger) as session:
        run = session.get(RunRow, workflow_id)
        cases = session.exec(select(CaseRow).where(CaseRow.workflow_id == workflow_id).order_by(CaseRow.id)).all()
        decisions = session.exec(
            select(func.count()).select_from(DecisionRow).where(DecisionRow.workflow_id == workflow_id)
        ).one()
    assert run is not None
    return status, run.stage, [(c.id, c.status, c.owner_group, c.decision) for c in cases], decisions


async def open_case_in_ledger(kit: HandoffKit, workflow_id: str) -> ExceptionCase:
    """The run's open case, once the ledger holds it too (the ledger is written just after the stage changes)."""
    case = await kit.open_case(workflow_id)
    for _ in range(200):
        with Session(kit.ledger) as session:
            if session.get(CaseRow, case.id) is not None:
                return case
        await asyncio.sleep(0.05)
    raise TimeoutError(f"case {case.id} of {workflow_id} never reached the ledger")


async def ledger_reaches(kit: HandoffKit, workflow_id: str, stage: Stage) -> None:
    """Wait until the ledger records the run in `stage` (Temporal's status moves first; the ledger follows)."""
    for _ in range(200):
        with Session(kit.ledger) as session:
            run = session.get(RunRow, workflow_id)
            if run is not None and run.stage == stage.value:
                return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the ledger never recorded {workflow_id} as {stage.value}")
