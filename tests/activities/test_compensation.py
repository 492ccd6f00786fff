"""Undoing a delivery, on real ledgers (SQLite, and PostgreSQL when configured): the adapter's undo is called until the
ledger marks the write undone, never after; an adapter without the method is answered, not crashed on; a write undone
and delivered again stands again."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.testing import ActivityEnvironment

from handoff.activities.compensation import CompensationActivities
from handoff.activities.ledger.tables import DeliveryRow
from handoff.activities.ledger.writes import delivery_undone, mark_delivery_undone, record_delivery
from handoff.activities.user_code import UnknownName
from handoff.schemas.activities import UndoRequest
from handoff.schemas.runs import Delivery

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
WORKFLOW_ID = "table-booking/B-1"


class _Crm:
    """Counts the undos it is asked for (a fake at the adapter boundary: no real CRM in tests)."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def write(self, record_key: str, fields: Mapping[str, Any]) -> str:
        return "written"

    async def cancel(self, record_key: str) -> None:
        self.cancelled.append(record_key)


class _Systems:
    def __init__(self, adapter: object) -> None:
        self._adapter = adapter

    def adapter(self, system: str) -> Any:
        if system != "crm":
            raise UnknownName(f"the app has no adapter for the system {system!r}")
        return self._adapter

    async def transformed(self, name: str, value: Any) -> Any:
        return value


def _request(system: str = "crm", undo: str = "cancel") -> UndoRequest:
    return UndoRequest(
        workflow_id=WORKFLOW_ID, handoff="table-booking", system=system, record_key=WORKFLOW_ID, undo=undo
    )


def _delivered(ledger: Engine, *, fields: dict[str, Any] | None = None, at: datetime = T0) -> Delivery:
    delivery = Delivery(system="crm", record_key=WORKFLOW_ID, fields=fields or {"party": 2}, delivered_at=at)
    return record_delivery(ledger, WORKFLOW_ID, "table-booking", delivery)


async def test_an_undo_calls_the_adapter_marks_the_ledger_and_a_retry_calls_it_no_more(ledger: Engine) -> None:
    """The first undo calls `cancel` and marks the delivery undone; a retried one finds the mark and calls nothing."""
    crm = _Crm()
    _delivered(ledger)
    activities = CompensationActivities(_Systems(crm), ledger)

    first = await ActivityEnvironment().run(activities.undo_delivery, _request())
    again = await ActivityEnvironment().run(activities.undo_delivery, _request())

    assert (True, True) == (first.undone, again.undone)
    assert [WORKFLOW_ID] == crm.cancelled
    assert delivery_undone(ledger, WORKFLOW_ID, "crm")


async def test_an_adapter_without_the_method_or_an_unknown_system_is_answered_with_why_the_write_stays(
    ledger: Engine,
) -> None:
    """No `refund` on the adapter, or no adapter at all: the write stays, the answer says why, the ledger is as it was."""
    _delivered(ledger)
    activities = CompensationActivities(_Systems(_Crm()), ledger)

    missing = await ActivityEnvironment().run(activities.undo_delivery, _request(undo="refund"))
    unknown = await ActivityEnvironment().run(activities.undo_delivery, _request(system="erp"))

    assert (False, "the adapter of 'crm' has no method refund(record_key)") == (missing.undone, missing.problem)
    assert not unknown.undone and "no adapter for the system 'erp'" in (unknown.problem or "")
    assert not delivery_undone(ledger, WORKFLOW_ID, "crm")


def test_marking_undone_once_keeps_the_first_time_and_a_new_delivery_stands_again(ledger: Engine) -> None:
    """A second mark changes nothing; a delivery after the undo replaces the row and clears the mark; a repeat of
    that delivery returns it, as any delivery recorded twice."""
    _delivered(ledger)
    assert mark_delivery_undone(ledger, WORKFLOW_ID, "crm", T0 + timedelta(minutes=1))
    assert not mark_delivery_undone(ledger, WORKFLOW_ID, "crm", T0 + timedelta(minutes=2))
    assert not mark_delivery_undone(ledger, WORKFLOW_ID, "pos", T0)  # nothing written there

    later = T0 + timedelta(hours=1)
    again = _delivered(ledger, fields={"party": 3}, at=later)
    repeat = _delivered(ledger, fields={"party": 9}, at=later + timedelta(hours=1))

    assert ({"party": 3}, later) == (again.fields, again.delivered_at)
    assert again == repeat
    with Session(ledger) as session:
        row = session.get(DeliveryRow, (WORKFLOW_ID, "crm"))
    assert row is not None and row.undone_at is None and {"party": 3} == row.fields
