"""The drift check's activities: compare delivered copies with their source of truth, and open a case per drift.

`find_drift` reads, for a handoff's runs delivered within the contract's lookback (newest first, up to its limit),
the source's record now (the app's reader, by the run's dedupe key) and each delivered target's copy (its adapter's
`read`, by the run's workflow id, the key delivery wrote it under). A synced field differs when the copy holds
something else than the source's value with the target's transform applied, as delivery would write it today.

`open_drift_cases` starts one drift run per finding, `<run>/drift-<n>`, through the opener it was built with
(`handoff.workers.schedules.drift_opener`, bound to the app). A drift run still open is not started again, and a
drift exactly like the one a decided drift case listed is not raised again: the operator has seen it already.
The ledger numbers drift runs (each has its own ledger record), so a later drift opens a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

import structlog
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from handoff.activities.ledger.tables import CaseRow, DeliveryRow, RunRow, ViolationRow
from handoff.schemas.contract import HandoffContract, SyncTarget
from handoff.schemas.drift import (
    DRIFT_EVENT,
    FIND_DRIFT,
    OPEN_DRIFT_CASES,
    WHOLE_RECORD,
    DriftCheckRequest,
    DriftCheckResult,
    DriftFinding,
    DriftFindings,
    FieldDrift,
    drift_violations,
)
from handoff.schemas.paths import value_at
from handoff.schemas.runs import Stage

log = structlog.get_logger(__name__)

Opener = Callable[[Client, DriftFinding, str, str], Awaitable[str]]
"""(client, finding, drift run's workflow id, task queue) -> the workflow id started (or found open)."""


class DriftSystems(Protocol):
    """What a drift check needs from the app: its contracts, the readers of its sources, its targets' copies."""

    def every_version(self) -> list[HandoffContract]: ...

    async def read_source(self, system: str, key: str) -> Mapping[str, Any] | None: ...

    async def read_copy(self, system: str, record_key: str) -> Mapping[str, Any] | None: ...

    async def transformed(self, name: str, value: Any) -> Any: ...


class DriftActivities:
    """Finds drift for one handoff, and opens a drift case for each finding."""

    def __init__(self, systems: DriftSystems, ledger: Engine, open_run: Opener) -> None:
        self._systems = systems
        self._ledger = ledger
        self._open_run = open_run

    @activity.defn(name=FIND_DRIFT)
    async def find_drift(self, request: DriftCheckRequest) -> DriftFindings:
        """Compare each recently delivered run's copies with the source's record now."""
        versions = {(c.name, c.version): c for c in self._systems.every_version() if c.name == request.handoff}
        if not versions:
            raise ApplicationError(
                f"the app has no handoff {request.handoff!r}", type="UnknownName", non_retryable=True
            )
        newest = versions[request.handoff, max(version for _, version in versions)]
        check = newest.sync.drift_check if newest.sync is not None else None
        if check is None:
            raise ApplicationError(
                f"{newest.name} declares no drift check: add Sync(drift_check=DriftCheck(every=...)) to its contract",
                type="NoDriftCheck",
                non_retryable=True,
            )
        runs, deliveries = await asyncio.to_thread(_delivered_runs, self._ledger, request, check.lookback, check.limit)
        found = DriftFindings(handoff=request.handoff, checked=len(runs))
        for run in runs:
            activity.heartbeat(run.workflow_id)
            contract = versions.get((run.handoff, run.contract_version), newest)
            try:
                finding = await self._compare(contract, run, deliveries.get(run.workflow_id, {}), request)
            except Exception as error:  # one unreadable run must not hide the others' drift
                log.warning("drift.unreadable", handoff=run.handoff, workflow_id=run.workflow_id, error=str(error))
                found.problems.append(f"{run.workflow_id}: {error}")
                continue
            if finding is not None:
                log.info("drift.found", handoff=run.handoff, workflow_id=run.workflow_id, systems=finding.systems)
                found.findings.append(finding)
        return found

    async def _compare(
        self, contract: HandoffContract, run: RunRow, delivered: Mapping[str, DeliveryRow], request: DriftCheckRequest
    ) -> DriftFinding | None:
        assert contract.sync is not None and contract.trigger is not None
        sources: dict[str, dict[str, Any]] = {}
        owners = _owners(contract)
        for system in dict.fromkeys(owners.values()):
            record = await self._systems.read_source(system, run.dedupe_key)
            if record is None:
                return _finding(contract, run, request, sources=owners, source_gone=system, payload=run.payload)
            sources[system] = _as_payload(contract, system, record)
        differences: list[FieldDrift] = []
        for target in contract.sync.targets:
            delivery = delivered.get(target.system)
            if delivery is None:  # never delivered to this target (an older version's sync): nothing to compare
                continue
            copy = await self._systems.read_copy(target.system, delivery.record_key)
            if copy is None:
                differences.append(FieldDrift(system=target.system, field=WHOLE_RECORD))
                continue
            differences += await self._field_drift(target, owners, sources, copy)
        if not differences:
            return None
        payload = next(iter(sources.values())) if len(sources) == 1 else _merged(owners, sources)
        return _finding(contract, run, request, sources=owners, differences=differences, payload=payload)

    async def _field_drift(
        self,
        target: SyncTarget,
        owners: Mapping[str, str],
        sources: Mapping[str, Mapping[str, Any]],
        copy: Mapping[str, Any],
    ) -> list[FieldDrift]:
        differences = []
        for path in target.fields:
            owner = owners.get(path.split(".", 1)[0])
            if owner is None:  # a field with no system of truth (the gate refuses it): nothing to hold it to
                continue
            expected = value_at(sources[owner], path)
            transform = target.transforms.get(path)
            if transform is not None:
                expected = await self._systems.transformed(transform, expected)
            name = target.target_name(path)
            should, holds = to_jsonable_python(expected), to_jsonable_python(copy.get(name))
            if should != holds:
                differences.append(
                    FieldDrift(
                        system=target.system,
                        field=path,
                        target_field=name,
                        source=owner,
                        source_value=should,
                        copy_value=holds,
                    )
                )
        return differences

    @activity.defn(name=OPEN_DRIFT_CASES)
    async def open_drift_cases(self, found: DriftFindings) -> DriftCheckResult:
        """Start a drift run for each finding, unless one is open, or a decided one listed the same drift."""
        result = DriftCheckResult(**found.model_dump())
        client, task_queue = activity.client(), activity.info().task_queue
        for finding in found.findings:
            earlier = await asyncio.to_thread(_earlier_drift_runs, self._ledger, finding.workflow_id)
            still_open = next((run.workflow_id for run in earlier if run.finished_at is None), None)
            if still_open is not None:
                result.opened.append(still_open)
                continue
            seen: bool = bool(earlier) and await asyncio.to_thread(
                _same_drift_decided, self._ledger, earlier[-1], finding
            )
            if seen:
                result.already_decided.append(finding.workflow_id)
                continue
            drift_id = f"{finding.workflow_id}/drift-{len(earlier) + 1}"
            result.opened.append(await self._open_run(client, finding, drift_id, task_queue))
            log.info("drift.case_opened", handoff=finding.handoff, workflow_id=drift_id, of=finding.workflow_id)
        return result


def _owners(contract: HandoffContract) -> dict[str, str]:
    """Entity -> its system of truth, for the entities the contract syncs."""
    assert contract.sync is not None
    entities = {path.split(".", 1)[0] for target in contract.sync.targets for path in target.fields}
    return {
        entity: contract.source_of_truth[entity] for entity in sorted(entities) if entity in contract.source_of_truth
    }


def _as_payload(contract: HandoffContract, system: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The reader's record as the trigger's model reads it (JSON types, as the edge passes payloads on)."""
    assert contract.trigger is not None
    try:
        return contract.trigger.payload.model_validate(record).model_dump(mode="json")
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise ValueError(
            f"the reader of {system!r} returned a record that does not fit {contract.trigger.payload.__name__}: "
            f"{details}"
        ) from None


def _merged(owners: Mapping[str, str], sources: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One payload from several systems of truth: each entity from the system that owns it."""
    merged = dict(next(iter(sources.values())))
    for entity, system in owners.items():
        if entity in sources[system]:
            merged[entity] = sources[system][entity]
    return merged


def _finding(
    contract: HandoffContract,
    run: RunRow,
    request: DriftCheckRequest,
    *,
    sources: Mapping[str, str],
    payload: dict[str, Any],
    source_gone: str | None = None,
    differences: Sequence[FieldDrift] = (),
) -> DriftFinding:
    return DriftFinding(
        handoff=contract.name,
        workflow_id=run.workflow_id,
        contract_version=run.contract_version,
        dedupe_key=run.dedupe_key,
        sources=tuple(dict.fromkeys(sources.values())),
        source_gone=source_gone,
        differences=tuple(differences),
        payload=payload,
        checked_at=request.checked_at,
    )


def _delivered_runs(
    ledger: Engine, request: DriftCheckRequest, lookback: timedelta, limit: int
) -> tuple[list[RunRow], dict[str, dict[str, DeliveryRow]]]:
    """The handoff's own runs (not drift runs) delivered within `lookback`, newest first, and their deliveries."""
    with Session(ledger) as session:
        runs = list(
            session.exec(
                select(RunRow)
                .where(
                    RunRow.handoff == request.handoff,
                    RunRow.stage == Stage.DELIVERED.value,
                    RunRow.event != DRIFT_EVENT,
                    col(RunRow.finished_at) >= request.checked_at - lookback,
                )
                .order_by(col(RunRow.finished_at).desc(), col(RunRow.workflow_id))
                .limit(limit)
            ).all()
        )
        deliveries: dict[str, dict[str, DeliveryRow]] = {}
        if runs:
            rows = session.exec(
                select(DeliveryRow).where(
                    col(DeliveryRow.workflow_id).in_([run.workflow_id for run in runs]),
                    col(DeliveryRow.undone_at).is_(None),  # an undone write left no copy to compare
                )
            ).all()
            for row in rows:
                deliveries.setdefault(row.workflow_id, {})[row.system] = row
    return runs, deliveries


def _earlier_drift_runs(ledger: Engine, workflow_id: str) -> list[RunRow]:
    """The drift runs of `workflow_id` the ledger has, oldest first."""
    with Session(ledger) as session:
        runs = session.exec(
            select(RunRow).where(
                col(RunRow.workflow_id).startswith(f"{workflow_id}/drift-", autoescape=True),
                RunRow.event == DRIFT_EVENT,
            )
        ).all()
    return sorted(runs, key=lambda run: _number(run.workflow_id))


def _number(drift_id: str) -> int:
    suffix = drift_id.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


def _same_drift_decided(ledger: Engine, drift_run: RunRow, finding: DriftFinding) -> bool:
    """Whether the drift run's decided case listed exactly this finding's differences (values included)."""
    with Session(ledger) as session:
        case = session.exec(select(CaseRow).where(CaseRow.workflow_id == drift_run.workflow_id)).first()
        if case is None or case.decision is None:
            return False
        rows = session.exec(
            select(ViolationRow).where(ViolationRow.case_id == case.id).order_by(col(ViolationRow.position))
        ).all()
    listed = [(row.rule, row.field, to_jsonable_python(row.value)) for row in rows]
    found = [(v.rule, v.field, to_jsonable_python(v.value)) for v in drift_violations(finding)]
    return listed == found
