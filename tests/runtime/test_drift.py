"""Drift checks on the real dev server: a delivered copy changed in its target is found and opens a drift case for
the contract's exception owner, naming the field with both values; an unchanged record opens none; a second check
while the case is open opens no second one; a decided drift is not raised again until it changes.

The source of truth and the targets here are test systems (the adapter boundary is where a fake belongs): they keep
records in memory, so a test can change a copy behind Handoff's back, as someone working in the target would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from handoff import DriftCheck, Handoffs, WriteOutcome
from handoff.activities.ledger.report import build_report
from handoff.activities.ledger.tables import RunRow
from handoff.schemas.contract import DecisionKind, Sync, SyncTarget
from handoff.schemas.drift import DRIFT_EVENT, DriftCheckInput, DriftCheckResult, FieldDrift, SystemDrift
from handoff.schemas.runs import Stage
from handoff.workers.decisions import DecisionRefused
from handoff.workers.testkit import HandoffKit, running_handoffs
from handoff.workflows.drift import DriftCheckWorkflow
from tests.workflows.sample_contracts import GROUPS, ready_contract

HANDOFF = "drifting-bookings"
HOSTS = ("hosts",)


class CopyKeeper:
    """A target that keeps each record by key, and reads it back as drift checks do."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        if record_key in self.records:
            return WriteOutcome.ALREADY_WRITTEN
        self.records[record_key] = dict(fields)
        return WriteOutcome.WRITTEN

    def read(self, record_key: str) -> dict[str, Any] | None:
        record = self.records.get(record_key)
        return None if record is None else dict(record)


class Bookings:
    """The source of truth: bookings by id, as its API would answer them now."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.unreachable: set[str] = set()

    def read(self, key: str) -> dict[str, Any] | None:
        if key in self.unreachable:
            raise ConnectionError(f"the booking system did not answer for {key}")
        return self.records.get(key)


class World:
    """The source and the two targets of one test."""

    def __init__(self) -> None:
        self.bookings = Bookings()
        self.pos = CopyKeeper()
        self.kitchen = CopyKeeper()


def drift_app(world: World, *, name: str = HANDOFF, personal: tuple[str, ...] = ()) -> Handoffs:
    """The sample contract, syncing to a POS (renamed fields) and a kitchen (a transformed one), checked for drift."""
    sync = Sync(
        targets=(
            SyncTarget(
                system="pos",
                fields=("booking.id", "booking.party_size", "guest.name"),
                rename={"booking.id": "booking_ref"},
            ),
            SyncTarget(system="kitchen", fields=("booking.party_size",), transforms={"booking.party_size": "covers"}),
        ),
        drift_check=DriftCheck(every=timedelta(hours=1)),
    )
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(name=name, sync=sync, personal=personal),))
    app.source("bookings")
    app.system("pos", world.pos)
    app.system("kitchen", world.kitchen)
    app.transform("covers")(lambda size: f"{size} covers")
    app.reader("bookings")(world.bookings.read)
    return app


async def deliver(kit: HandoffKit, world: World, name: str, party_size: int = 2) -> str:
    """A booking the source holds, delivered to both targets; its run's workflow id."""
    payload = {"booking": {"id": f"B-{uuid.uuid4().hex[:8]}", "party_size": party_size}, "guest": {"name": name}}
    world.bookings.records[payload["booking"]["id"]] = payload
    accepted = await kit.send("booking.confirmed", payload)
    assert Stage.DELIVERED == (await kit.result(accepted.workflow_id)).stage
    return accepted.workflow_id


async def check_now(kit: HandoffKit, handoff: str = HANDOFF) -> DriftCheckResult:
    """One drift check, as the schedule starts it, run to its end."""
    return await kit.client.execute_workflow(
        DriftCheckWorkflow.run,
        DriftCheckInput(handoff=handoff),
        id=f"drift-check-{uuid.uuid4().hex[:8]}",
        task_queue=kit.settings.task_queue,
    )


def drift_runs(kit: HandoffKit) -> list[RunRow]:
    with Session(kit.ledger) as session:
        return list(session.exec(select(RunRow).where(RunRow.event == DRIFT_EVENT)).all())


async def test_a_changed_copy_opens_one_drift_case_naming_the_field_and_an_unchanged_record_none(
    client: Client, tmp_path: Path, ledger_url: str
) -> None:
    """The acceptance path, on SQLite and PostgreSQL: found, owned by the exception owner, both values named; open
    once; approve closes it."""
    world = World()
    async with running_handoffs(client, drift_app(world), tmp_path, database_url=ledger_url) as kit:
        changed = await deliver(kit, world, "Ada")
        unchanged = await deliver(kit, world, "Grace")
        world.pos.records[changed]["booking_party_size"] = 5  # someone at the POS changed the party

        first = await check_now(kit)
        drift_id = f"{changed}/drift-1"
        case = await kit.open_case(drift_id)
        second = await check_now(kit)  # while the case is open

        assert 2 == first.checked and [] == first.problems
        [finding] = first.findings
        assert changed == finding.workflow_id
        assert (
            FieldDrift(
                system="pos",
                field="booking.party_size",
                target_field="booking_party_size",
                source="bookings",
                source_value=2,
                copy_value=5,
            ),
        ) == finding.differences
        assert [drift_id] == first.opened
        assert "hosts" == case.owner_group  # the contract's exception owner
        [violation] = case.violations
        assert ("drift", "drift: pos", "booking.party_size", 5) == (
            violation.kind,
            violation.rule,
            violation.field,
            violation.value,
        )
        assert "pos holds 5" in violation.reason and "bookings (the source of truth) says 2" in violation.reason
        assert [drift_id] == second.opened  # the open case, not a second one
        assert [drift_id] == [run.workflow_id for run in drift_runs(kit)]  # none for the unchanged record
        assert unchanged not in {finding.workflow_id for finding in second.findings}

        with pytest.raises(DecisionRefused) as refused:
            await kit.decide(
                drift_id, case.id, DecisionKind.CORRECT, operator="ana", groups=HOSTS, patch={"booking.party_size": 5}
            )
        assert "drift case" in refused.value.refusal.message
        await kit.decide(drift_id, case.id, DecisionKind.APPROVE, operator="ana", groups=HOSTS, reason="POS fixed")
        result = await kit.result(drift_id)
        again = await check_now(kit)  # the same drift, decided: not raised again

        assert Stage.DELIVERED == result.stage
        assert [changed] == again.already_decided and [] == again.opened
        assert [Stage.DELIVERED.value] == [run.stage for run in drift_runs(kit)]

        world.pos.records[changed]["booking_party_size"] = 7  # it drifted again, differently
        later = await check_now(kit)
        assert [f"{changed}/drift-2"] == later.opened


async def test_a_gone_copy_and_a_gone_source_record_each_open_a_case_and_reject_dismisses_it(
    client: Client, tmp_path: Path
) -> None:
    """A record deleted in a target, or in the source of truth, is drift too; rejecting ends the drift run rejected."""
    world = World()
    async with running_handoffs(client, drift_app(world), tmp_path) as kit:
        copy_gone = await deliver(kit, world, "Ada")
        source_gone = await deliver(kit, world, "Grace")
        del world.kitchen.records[copy_gone]
        del world.bookings.records[source_gone.rsplit("/", 1)[1]]

        result = await check_now(kit)
        kitchen_case = await kit.open_case(f"{copy_gone}/drift-1")
        source_case = await kit.open_case(f"{source_gone}/drift-1")
        await kit.decide(f"{copy_gone}/drift-1", kitchen_case.id, DecisionKind.REJECT, operator="ana", groups=HOSTS)
        dismissed = await kit.result(f"{copy_gone}/drift-1")

    assert {copy_gone, source_gone} == {finding.workflow_id for finding in result.findings}
    [gone_copy] = kitchen_case.violations
    assert ("drift: kitchen", "") == (gone_copy.rule, gone_copy.field)
    assert "kitchen no longer holds the record" in gone_copy.reason
    [gone_source] = source_case.violations
    assert "drift: bookings" == gone_source.rule and "no longer has record" in gone_source.reason
    assert Stage.REJECTED == dismissed.stage


async def test_an_unreadable_source_is_reported_and_the_other_runs_are_still_compared(
    client: Client, tmp_path: Path
) -> None:
    """A reader that fails for one run names it among the problems, opens nothing for it, and hides no other drift."""
    world = World()
    async with running_handoffs(client, drift_app(world), tmp_path) as kit:
        unreadable = await deliver(kit, world, "Ada")
        drifted = await deliver(kit, world, "Grace")
        world.bookings.unreachable.add(unreadable.rsplit("/", 1)[1])
        world.kitchen.records[drifted]["booking_party_size"] = "9 covers"
        result = await check_now(kit)

    [problem] = result.problems
    assert problem.startswith(unreadable) and "did not answer" in problem
    [finding] = result.findings
    assert drifted == finding.workflow_id
    [difference] = finding.differences
    # The kitchen gets the party through the `covers` transform: the source's 2 is compared as "2 covers".
    assert ("kitchen", "2 covers", "9 covers") == (difference.system, difference.source_value, difference.copy_value)
    assert [f"{drifted}/drift-1"] == result.opened


async def test_the_report_counts_drift_per_system_apart_from_the_handoffs_figures(
    client: Client, tmp_path: Path, ledger_url: str
) -> None:
    """Drift cases show per handoff and system; drift runs change neither the runs, nor the exception rate. (A
    personal field's values stay out of the reasons, which notices carry.)"""
    world = World()
    app = drift_app(world, personal=("guest.name",))
    async with running_handoffs(client, app, tmp_path, database_url=ledger_url) as kit:
        drifted = await deliver(kit, world, "Ada")
        await deliver(kit, world, "Grace")
        world.pos.records[drifted]["guest_name"] = "Ada L."
        world.kitchen.records[drifted]["booking_party_size"] = "3 covers"
        await check_now(kit)
        case = await kit.open_case(f"{drifted}/drift-1")
        report = build_report(kit.ledger, list(app.catalog.contracts))

    [line] = report.handoffs
    assert (2, 2, 0.0, 0) == (line.runs, line.delivered, line.exception_rate_pct, line.open_cases)
    assert [SystemDrift(system="kitchen", cases=1, open_cases=1), SystemDrift(system="pos", cases=1, open_cases=1)] == (
        line.drift
    )
    name = next(violation for violation in case.violations if violation.field == "guest.name")
    assert "Ada L." == name.value and "Ada" not in name.reason and "personal data" in name.reason


async def test_a_drift_check_of_a_handoff_without_one_fails_saying_so(client: Client, tmp_path: Path) -> None:
    """Asking a handoff that declares no drift check for one fails at once, naming what to add."""
    world = World()
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(name="unchecked-bookings"),))
    app.source("bookings")
    app.system("pos", world.pos)
    async with running_handoffs(client, app, tmp_path) as kit:
        handle = await kit.client.start_workflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(handoff="unchecked-bookings"),
            id=f"drift-check-{uuid.uuid4().hex[:8]}",
            task_queue=kit.settings.task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), timeout=30)

    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError) and isinstance(activity_error.cause, ApplicationError)
    assert "NoDriftCheck" == activity_error.cause.type and "declares no drift check" in activity_error.cause.message


async def test_no_drift_run_is_visible_in_temporal_for_an_unchanged_record(client: Client, tmp_path: Path) -> None:
    """An unchanged record: no finding, and no drift run in Temporal either."""
    world = World()
    async with running_handoffs(client, drift_app(world), tmp_path) as kit:
        unchanged = await deliver(kit, world, "Grace")
        result = await check_now(kit)
        with pytest.raises(RPCError) as missing:
            await kit.client.get_workflow_handle(f"{unchanged}/drift-1").describe()

    assert (1, [], []) == (result.checked, result.findings, result.opened)
    assert RPCStatusCode.NOT_FOUND == missing.value.status
