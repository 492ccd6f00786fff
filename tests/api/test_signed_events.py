"""Signed events over HTTP: a source's good signature starts the run; a bad, stale, replayed or missing one, an
unknown source or an event the source may not send is a 401 naming the problem, and nothing is started."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from handoff.activities.ledger.sources import add_source, rotate_secret
from handoff.workers.api import create_app
from handoff.workers.request_signing import signature_header
from handoff.workers.testkit import HandoffKit
from tests.api.checks import assert_not_started
from tests.api.conftest import serving_url
from tests.runtime import payloads

EVENT = "/events/reservation.confirmed"


@pytest.fixture
def till(handoffs: HandoffKit) -> str:
    """The secret of `till`, a source that may send reservation.confirmed only."""
    return add_source(handoffs.ledger, "till", ["reservation.confirmed"], known_events=_events(handoffs))


def _events(kit: HandoffKit) -> list[str]:
    return [contract.trigger.event for contract in kit.app.catalog.contracts if contract.trigger is not None]


def signed(
    body: dict[str, Any], secrets: list[str], *, source: str = "till", at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The raw body and the headers a source sends with it."""
    content = json.dumps(body).encode()
    headers = {
        "content-type": "application/json",
        "Handoff-Source": source,
        "Handoff-Signature": signature_header(secrets, content, at),
    }
    return content, headers


def workflow_id(body: dict[str, Any]) -> str:
    return f"reservation-to-pos/{body['reservation']['id']}"


async def test_a_valid_signature_is_accepted(anonymous: httpx.AsyncClient, till: str) -> None:
    """A request signed with the source's secret, with no API token, starts the run: 202."""
    body = payloads.reservation()
    content, headers = signed(body, [till])

    response = await anonymous.post(EVENT, content=content, headers=headers)

    assert (202, workflow_id(body)) == (response.status_code, response.json()["workflow_id"])


async def test_refused_signatures_are_401_naming_the_problem_and_start_nothing(
    anonymous: httpx.AsyncClient, handoffs: HandoffKit, till: str
) -> None:
    """Each wrong request is a 401 whose kind says what is wrong; Temporal and the ledger hold no run for it."""
    crm = add_source(handoffs.ledger, "crm", ["deal.won"], known_events=_events(handoffs))
    now = int(time.time())
    tolerance = handoffs.settings.signature_tolerance_seconds
    cases: dict[str, tuple[dict[str, Any], bytes, dict[str, str]]] = {}

    def case(kind: str, body: dict[str, Any], content: bytes, headers: dict[str, str]) -> None:
        cases[kind] = (body, content, headers)

    body = payloads.reservation()
    case("bad-signature", body, *signed(body, ["not-the-secret"]))
    body = payloads.reservation()
    content, headers = signed(body, [till])
    case("bad-signature (body changed)", body, content.replace(b"}", b" }", 1), headers)
    body = payloads.reservation()
    case("stale-signature", body, *signed(body, [till], at=now - tolerance - 5))
    body = payloads.reservation()
    case("stale-signature (future)", body, *signed(body, [till], at=now + tolerance + 5))
    body = payloads.reservation()
    case("unknown-source", body, *signed(body, [till], source="oven"))
    body = payloads.reservation()
    case("event-not-allowed", body, *signed(body, [crm], source="crm"))
    body = payloads.reservation()
    content, headers = signed(body, [till])
    case("unsigned", body, content, {"content-type": "application/json"})
    body = payloads.reservation()
    content, headers = signed(body, [till])
    case("unsigned (no source)", body, content, {k: v for k, v in headers.items() if k != "Handoff-Source"})
    body = payloads.reservation()
    content, headers = signed(body, [till])
    case("bad-signature (malformed)", body, content, {**headers, "Handoff-Signature": "sha256=abc"})

    answers = {}
    for name, (_, content, headers) in cases.items():
        response = await anonymous.post(EVENT, content=content, headers=headers)
        answers[name] = (response.status_code, response.json()["kind"])

    assert {name: (401, name.split(" ")[0]) for name in cases} == answers
    for body, _, _ in cases.values():
        await assert_not_started(handoffs, workflow_id(body))


async def test_a_replayed_signature_is_refused(anonymous: httpx.AsyncClient, handoffs: HandoffKit, till: str) -> None:
    """The same signed request sent again within the window is a 401 `replayed-signature`; its headers on another
    body are a bad signature, and start nothing."""
    body = payloads.reservation()
    content, headers = signed(body, [till])
    first = await anonymous.post(EVENT, content=content, headers=headers)
    again = await anonymous.post(EVENT, content=content, headers=headers)

    assert 202 == first.status_code
    assert (401, "replayed-signature") == (again.status_code, again.json()["kind"])
    assert "accepted already" in again.json()["detail"]
    other = payloads.reservation()
    forged = await anonymous.post(EVENT, json=other, headers={k: v for k, v in headers.items() if k != "content-type"})
    assert (401, "bad-signature") == (forged.status_code, forged.json()["kind"])
    await assert_not_started(handoffs, workflow_id(other))


async def test_rotation_keeps_the_previous_secret_and_drops_the_one_before(
    anonymous: httpx.AsyncClient, handoffs: HandoffKit, till: str
) -> None:
    """After one rotation the old and the new secret both verify; after a second, the oldest no longer does."""
    second = rotate_secret(handoffs.ledger, "till")

    async def status(secrets: list[str]) -> tuple[int, str | None]:
        body = payloads.reservation()
        content, headers = signed(body, secrets)
        response = await anonymous.post(EVENT, content=content, headers=headers)
        return response.status_code, response.json().get("kind")

    after_one = [await status([till]), await status([second]), await status([till, second])]
    third = rotate_secret(handoffs.ledger, "till")
    after_two = [await status([till]), await status([second]), await status([third])]

    assert [(202, None)] * 3 == after_one
    assert [(401, "bad-signature"), (202, None), (202, None)] == after_two


async def test_an_administrator_token_needs_no_signature(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """The bearer path stays: an administrator's token alone starts the run; a viewer's token is 403 even with a
    good signature, because a token, when sent, decides alone."""
    secret = add_source(handoffs.ledger, "till", ["reservation.confirmed"], known_events=_events(handoffs))
    body = payloads.reservation()
    content, headers = signed(body, [secret])

    by_token = await api.post(EVENT, json=payloads.reservation())
    viewer = await api.post(EVENT, content=content, headers={**headers, "Authorization": f"Bearer {tokens['vera']}"})

    assert (202, 403) == (by_token.status_code, viewer.status_code)
    await assert_not_started(handoffs, workflow_id(body))


async def test_guessed_signatures_count_like_bad_tokens_and_the_address_is_held_off_with_429(
    handoffs: HandoffKit, till: str
) -> None:
    """Bad signatures and unknown sources are guesses: after the limit, the address gets 429 even with a good
    signature, and nothing is started. A stale signature (a slow clock, not a guess) does not count."""
    settings = handoffs.settings.model_copy(update={"auth_failure_limit": 2, "auth_failure_window_seconds": 60})
    app = create_app(settings, handoffs.app, client=handoffs.client, ledger=handoffs.ledger)
    guesser = {"X-Forwarded-For": "203.0.113.9"}
    stale_body, bad_body, good_body = payloads.reservation(), payloads.reservation(), payloads.reservation()
    async with serving_url(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def send(body: dict[str, Any], secrets: list[str], **options: Any) -> httpx.Response:
            content, headers = signed(body, secrets, **options)
            return await http.post(EVENT, content=content, headers={**headers, **guesser})

        stale = await send(stale_body, [till], at=int(time.time()) - 3600)
        guesses = [await send(bad_body, ["not-the-secret"]), await send(bad_body, [till], source="nobody")]
        held = await send(good_body, [till])

    assert ("stale-signature", ["bad-signature", "unknown-source"]) == (
        stale.json()["kind"],
        [guess.json()["kind"] for guess in guesses],
    )
    assert (429, "too-many-bad-tokens") == (held.status_code, held.json()["kind"])
    for body in (stale_body, bad_body, good_body):
        await assert_not_started(handoffs, workflow_id(body))
