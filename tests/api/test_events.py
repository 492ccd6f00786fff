"""`POST /events/{event}`: good events start one run, repeats find it, and bad input of any kind starts nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from handoff.schemas.runs import Stage, TriggerAccepted
from handoff.workers.testkit import HandoffKit
from tests.api.checks import assert_not_started, ledger_runs
from tests.runtime import payloads


async def test_valid_event_is_accepted_and_its_run_delivers(api: httpx.AsyncClient, handoffs: HandoffKit) -> None:
    """202 with the run's ids; the run is the handoff's workflow `<handoff>/<dedupe key>` and ends delivered."""
    body = payloads.reservation()

    response = await api.post("/events/reservation.confirmed", json=body)

    accepted = TriggerAccepted.model_validate(response.json())
    expected_id = f"reservation-to-pos/{body['reservation']['id']}"
    assert (202, expected_id, False) == (response.status_code, accepted.workflow_id, accepted.duplicate)
    settled = await handoffs.wait_for(
        expected_id, lambda s: s.stage.is_final or Stage.AWAITING_DECISION == s.stage, what="the run to settle"
    )
    assert Stage.DELIVERED == settled.stage


async def test_repeated_event_finds_the_same_run(api: httpx.AsyncClient, handoffs: HandoffKit) -> None:
    """The same event sent twice answers the same workflow and run id, marked duplicate; one run exists."""
    body = payloads.reservation()

    first = (await api.post("/events/reservation.confirmed", json=body)).json()
    again = await api.post("/events/reservation.confirmed", json=body)

    assert 202 == again.status_code
    repeat = again.json()
    assert (first["workflow_id"], first["run_id"], True) == (
        repeat["workflow_id"],
        repeat["run_id"],
        repeat["duplicate"],
    )
    await handoffs.wait_for_stage(first["workflow_id"], Stage.DELIVERED)
    assert 1 == ledger_runs(handoffs)


async def test_invalid_payload_is_422_with_each_field_error_and_starts_nothing(
    api: httpx.AsyncClient, handoffs: HandoffKit
) -> None:
    """Every field problem is listed by path and message; no run exists in Temporal or the ledger."""
    body = payloads.reservation(reservation__party_size="many", reservation__starts_at="next friday")
    del body["guest"]

    response = await api.post("/events/reservation.confirmed", json=body)

    answer = response.json()
    assert (422, "invalid-payload") == (response.status_code, answer["kind"])
    assert {
        ("reservation.party_size", "Input should be a valid integer, unable to parse string as an integer"),
        ("reservation.starts_at", "Input should be a valid datetime or date, invalid character in year"),
        ("guest", "Field required"),
    } == {(error["field"], error["message"]) for error in answer["errors"]}
    assert "reservation.party_size" in answer["detail"]
    await assert_not_started(handoffs, f"reservation-to-pos/{body['reservation']['id']}")


async def test_unknown_event_is_404_naming_the_known_events(api: httpx.AsyncClient, handoffs: HandoffKit) -> None:
    """An event no contract is triggered by is refused with the list of events that exist."""
    response = await api.post("/events/reservation.cancelled", json=payloads.reservation())

    assert (404, "unknown-event") == (response.status_code, response.json()["kind"])
    assert "known: reservation.confirmed, deal.won, order.placed" in response.json()["detail"]
    assert 0 == ledger_runs(handoffs)


async def test_malformed_json_is_422_saying_where_it_broke(api: httpx.AsyncClient, handoffs: HandoffKit) -> None:
    """A body that is not JSON is refused with the parser's reason and position; nothing starts."""
    response = await api.post(
        "/events/reservation.confirmed",
        content=b'{"reservation": {"id": "R-1",}',
        headers={"content-type": "application/json"},
    )

    assert (422, "malformed-json") == (response.status_code, response.json()["kind"])
    assert "Expecting property name enclosed in double quotes at line 1, column 30" in response.json()["detail"]
    await assert_not_started(handoffs, "reservation-to-pos/R-1")


async def test_json_that_is_not_an_object_is_422(api: httpx.AsyncClient, handoffs: HandoffKit) -> None:
    """A JSON array is not a payload of entities: 422 naming what arrived, nothing starts."""
    response = await api.post("/events/reservation.confirmed", json=[payloads.reservation()])

    assert 422 == response.status_code
    assert "must be a JSON object of entities, got an array" in response.json()["detail"]
    assert 0 == ledger_runs(handoffs)


async def test_oversized_body_is_413_by_its_content_length(api: httpx.AsyncClient, handoffs: HandoffKit) -> None:
    """A body whose Content-Length passes max_payload_bytes is refused unread; the otherwise valid event never starts."""
    body = payloads.reservation(reservation__notes="x" * handoffs.settings.max_payload_bytes)

    response = await api.post("/events/reservation.confirmed", json=body)

    assert (413, "payload-too-large") == (response.status_code, response.json()["kind"])
    assert f"the limit is {handoffs.settings.max_payload_bytes} bytes" in response.json()["detail"]
    await assert_not_started(handoffs, f"reservation-to-pos/{body['reservation']['id']}")


async def test_oversized_chunked_body_is_413_as_it_arrives(api: httpx.AsyncClient, handoffs: HandoffKit) -> None:
    """Without a Content-Length (chunked), the body is counted as it arrives and refused past the limit."""
    body = payloads.reservation(reservation__notes="x" * handoffs.settings.max_payload_bytes)
    encoded = json.dumps(body).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(encoded), 8192):
            yield encoded[start : start + 8192]

    response = await api.post("/events/reservation.confirmed", content=chunks())

    assert "content-length" not in response.request.headers
    assert (413, "payload-too-large") == (response.status_code, response.json()["kind"])
    await assert_not_started(handoffs, f"reservation-to-pos/{body['reservation']['id']}")


HOSTILE = {
    "JSON nested 10,000 deep": ('{"reservation": ' + "[" * 10_000 + "]" * 10_000 + "}", "malformed-json"),
    "NaN": ('{"reservation": {"party_size": NaN}}', "malformed-json"),
    "a lone surrogate": ("guest.name", "\ud800"),
    "an integer beyond 64 bits": ("reservation.deposit_cents", 10**30),
    "a NUL byte in a name": ("guest.name", "Ada\x00"),
    "a 5,000-character dedupe key": ("reservation.id", "R" * 5000),
    "a path as dedupe key": ("reservation.id", "../../etc/passwd"),
    "a blank dedupe key": ("reservation.id", "   "),
}


async def test_hostile_input_is_a_422_naming_the_problem_and_starts_nothing(
    api: httpx.AsyncClient, handoffs: HandoffKit
) -> None:
    """What no run could carry is refused at the door with Handoff's JSON error: never a 5xx, never a run."""
    answers = {}
    for name, (where, value) in HOSTILE.items():
        if value == "malformed-json":
            content = where.encode()
        else:
            body = payloads.reservation()
            entity, field = where.split(".")
            body[entity][field] = value
            content = json.dumps(body).encode()  # json.dumps writes the lone surrogate as \\ud800, as a client would
        response = await api.post(
            "/events/reservation.confirmed", content=content, headers={"content-type": "application/json"}
        )
        answers[name] = (response.status_code, response.json()["kind"], response.json().get("errors", []))

    assert {name: 422 for name in HOSTILE} == {name: status for name, (status, _, _) in answers.items()}
    for name, (where, value) in HOSTILE.items():
        if value != "malformed-json":
            assert [where] == [error["field"] for error in answers[name][2]], name
    assert 0 == ledger_runs(handoffs)
