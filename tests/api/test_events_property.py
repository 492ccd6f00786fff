"""`POST /events/{event}` under generated JSON: 202 with a run, or a 4xx in Handoff's error shape and no run; never a
5xx, and a run exists only for a 202.

Hypothesis generates the event name and the body: reservations with fields replaced by any JSON value or left out,
any JSON value at all (NaN, huge integers and lone surrogates included, as `json.dumps` writes them), and bytes that
are no JSON. Requests are sent from a thread, so the server and the worker keep running on the test's event loop;
what Temporal knows is asked on that loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select
from temporalio.service import RPCError, RPCStatusCode

from handoff.activities.ledger.tables import RunRow
from handoff.schemas.api import ErrorBody
from handoff.schemas.runs import TriggerAccepted
from handoff.workers.testkit import HandoffKit
from tests.api.conftest import bearer
from tests.runtime import payloads

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
"""Any JSON value, and the floats JSON has no words for (NaN, Infinity), which `json.dumps` writes anyway."""


def same_kind_as(value: Any) -> st.SearchStrategy[Any]:
    """Another value of the JSON type of `value`: text for text, a number for a number, so many payloads still fit."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers()
    if isinstance(value, str):
        return st.text(max_size=30)
    return JSON_VALUES


@st.composite
def changed_reservations(draw: st.DrawFn) -> dict[str, Any]:
    """A valid reservation with up to three fields changed: left out, another value of their type, or any JSON
    value; a good part of them still fit the model (and start a run, or open a case)."""
    payload = payloads.reservation(reservation__id=f"R-{draw(st.uuids()).hex[:8]}")
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        entity = draw(st.sampled_from(sorted(payload)))
        if not isinstance(payload[entity], dict):
            payload[entity] = draw(JSON_VALUES)
            continue
        field = draw(st.sampled_from([*sorted(payload[entity]), "unexpected"]))
        change = draw(st.sampled_from(["leave out", "same kind", "same kind", "any"]))
        if change == "leave out":
            payload[entity].pop(field, None)
        elif change == "same kind":
            payload[entity][field] = draw(same_kind_as(payload[entity].get(field)))
        else:
            payload[entity][field] = draw(JSON_VALUES)
    return payload


RESERVATIONS = changed_reservations().map(lambda payload: json.dumps(payload).encode())
EVENTS = st.sampled_from(
    [*[st.just("reservation.confirmed")] * 6, st.sampled_from(["deal.won", "order.placed"]), st.text(max_size=12)]
).flatmap(lambda events: events)
"""Mostly the reservation's event; sometimes another handoff's (whose model the reservation does not fit), or none."""
BODIES = st.sampled_from(
    [*[RESERVATIONS] * 6, JSON_VALUES.map(lambda value: json.dumps(value).encode()), st.binary(max_size=40)]
).flatmap(lambda bodies: bodies)
"""Mostly reservations, changed; sometimes any JSON value, or bytes that are not JSON."""


async def test_generated_events_get_a_run_only_with_a_202_and_never_a_5xx(
    api_url: str, tokens: dict[str, str], handoffs: HandoffKit
) -> None:
    """Every answer is a 202 naming a run that exists, or a 4xx `ErrorBody` after which no run of that id exists."""
    loop = asyncio.get_running_loop()
    accepted: set[str] = set()

    def on_this_loop(coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(event_name=EVENTS, body=BODIES)
    def send(event_name: str, body: bytes) -> None:
        response = http.post(f"/events/{quote(event_name, safe='')}", content=body)

        assert response.status_code == 202 or 400 <= response.status_code < 500, response.text
        if response.status_code == 202:
            run = TriggerAccepted.model_validate(response.json())
            on_this_loop(handoffs.client.get_workflow_handle(run.workflow_id).describe())
            accepted.add(run.workflow_id)
            return
        refusal = ErrorBody.model_validate(response.json())
        assert refusal.detail
        candidate = _run_id_it_would_have(event_name, body)
        if candidate is not None and candidate not in accepted:
            assert RPCStatusCode.NOT_FOUND == on_this_loop(_describe_status(handoffs, candidate)), candidate

    with httpx.Client(base_url=api_url, timeout=30, headers=bearer(tokens["ada"])) as http:
        await asyncio.to_thread(send)

    assert accepted, "no generated event was accepted: the strategy no longer reaches the happy path"
    assert accepted == await _runs_on_the_task_queue(handoffs, len(accepted))
    assert _ledger_runs(handoffs) <= accepted


def _run_id_it_would_have(event: str, body: bytes) -> str | None:
    """The workflow id a refused reservation would have had, when its body names one."""
    try:
        key = json.loads(body)["reservation"]["id"]
    except (ValueError, TypeError, KeyError):
        return None
    return f"reservation-to-pos/{key}" if event == "reservation.confirmed" and isinstance(key, str) else None


async def _describe_status(kit: HandoffKit, workflow_id: str) -> RPCStatusCode | None:
    try:
        await kit.client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        return error.status
    return None


async def _runs_on_the_task_queue(kit: HandoffKit, expected: int) -> set[str]:
    """The ids of every run on the kit's task queue, once Temporal's visibility lists at least `expected` of them."""
    query = f'TaskQueue = "{kit.settings.task_queue}"'
    for _ in range(100):
        found = {execution.id async for execution in kit.client.list_workflows(query)}
        if len(found) >= expected:
            return found
        await asyncio.sleep(0.1)
    return found


def _ledger_runs(kit: HandoffKit) -> set[str]:
    with Session(kit.ledger) as session:
        return set(session.exec(select(RunRow.workflow_id)).all())
