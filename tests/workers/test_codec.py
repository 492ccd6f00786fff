"""Payloads in Temporal are encrypted and authenticated with a key derived from the decision key: the codec itself,
a real run whose history holds no personal data in clear, and the codec endpoint administrators read it through."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from examples.restaurant import RestaurantApp
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.operators import Role
from handoff.schemas.runs import Stage
from handoff.workers.api import codec as codec_api
from handoff.workers.api import create_app
from handoff.workers.codec import (
    ENCODING,
    KEY_ID,
    EncryptionCodec,
    Keyring,
    PayloadDecryptionError,
    decoded_history,
    handoff_data_converter,
)
from handoff.workers.replay_check import as_async, replay
from handoff.workers.server import temporal_binary
from handoff.workers.testkit import HandoffKit
from tests.api.conftest import bearer, serving
from tests.runtime import payloads

KEY = b"a-decision-key-for-codec-tests-0123456789"
OTHER_KEY = b"another-decision-key-for-codec-tests-9876"


def plain(text: str = '{"guest": {"name": "Ada Lovelace"}}') -> Payload:
    """A payload as the pydantic converter writes it."""
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def encrypted(keyring: Keyring, payload: Payload) -> Payload:
    [sealed] = await EncryptionCodec(keyring).encode([payload])
    return sealed


# -- the codec --------------------------------------------------------------------------------------------------------


async def test_a_payload_round_trips_encrypted_under_its_key_id() -> None:
    """Encoded, a payload is ciphertext marked binary/encrypted with its key's id, fresh each time; decoded, itself."""
    keyring = Keyring.of(KEY)
    codec = EncryptionCodec(keyring)

    first, second = await codec.encode([plain(), plain()])
    [decoded] = await codec.decode([first])

    assert (ENCODING, keyring.current.id.encode()) == (first.metadata["encoding"], first.metadata[KEY_ID])
    assert b"Ada" not in first.SerializeToString()
    assert first.data != second.data  # a fresh nonce per payload
    assert plain() == decoded


def a_case_as_json(guests: int) -> Payload:
    """The JSON of a case-like record: repetitive, as the pydantic converter's output of events and cases is."""
    rows = [
        {"field": f"guests.{n}.name", "value": f"Guest {n}", "reason": "Every guest needs a name."}
        for n in range(guests)
    ]
    return plain(json.dumps({"violations": rows, "status": "open"}))


async def test_a_large_payload_is_deflated_before_it_is_encrypted_and_round_trips() -> None:
    """Deflated, a repetitive payload is stored in well under its size (encryption alone would add to it)."""
    codec = EncryptionCodec(Keyring.of(KEY))
    payload = a_case_as_json(guests=20)

    [sealed] = await codec.encode([payload])
    [decoded] = await codec.decode([sealed])

    assert payload == decoded
    assert len(sealed.data) < len(payload.SerializeToString()) / 3


async def test_a_small_payload_is_encrypted_as_it_is() -> None:
    """Nothing to gain below 64 bytes: the ciphertext is the payload's size plus nonce and tag, and decodes."""
    codec = EncryptionCodec(Keyring.of(KEY))
    payload = plain('"validating"')

    [sealed] = await codec.encode([payload])

    assert len(payload.SerializeToString()) + 12 + 16 == len(sealed.data)
    assert [payload] == await codec.decode([sealed])


async def test_a_large_payload_encrypted_before_compression_still_decodes() -> None:
    """Histories written before payloads were deflated hold the serialized Payload itself under the encryption."""
    keyring = Keyring.of(KEY)
    payload = a_case_as_json(guests=20)
    nonce = b"\x01" * 12
    sealed_before = keyring.current.cipher.encrypt(nonce, payload.SerializeToString(), keyring.current.id.encode())
    written_before = Payload(
        metadata={"encoding": ENCODING, KEY_ID: keyring.current.id.encode()}, data=nonce + sealed_before
    )

    assert [payload] == await EncryptionCodec(keyring).decode([written_before])


async def test_a_payload_altered_after_it_was_written_fails_authentication() -> None:
    """A flipped byte, or a payload relabelled with another key's id, is refused as failing authentication."""
    sealed = await encrypted(Keyring.of(KEY), plain())
    flipped = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    other = Keyring.of(OTHER_KEY)
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: other.current.id.encode()}, data=sealed.data)

    with pytest.raises(PayloadDecryptionError) as altered:
        await EncryptionCodec(Keyring.of(KEY)).decode([flipped])
    with pytest.raises(PayloadDecryptionError) as wrong_key:
        await EncryptionCodec(other).decode([relabelled])

    assert "failed authentication" in str(altered.value)
    assert "failed authentication" in str(wrong_key.value)


async def test_a_payload_of_a_key_the_process_does_not_hold_is_refused_naming_both_keys() -> None:
    """Decoding with another decision key says which key the payload needs, which keys the process holds, and what
    to set."""
    mine, theirs = Keyring.of(KEY), Keyring.of(OTHER_KEY)
    sealed = await encrypted(theirs, plain())

    with pytest.raises(PayloadDecryptionError) as refused:
        await EncryptionCodec(mine).decode([sealed])

    assert theirs.current.id in str(refused.value) and mine.current.id in str(refused.value)
    assert "HANDOFF_DECISION_KEY" in str(refused.value)


async def test_payloads_that_are_not_encrypted_pass_through_unchanged() -> None:
    """Histories written before the codec, and payloads from a client without it, decode as they are."""
    payloads = [plain(), Payload(metadata={"encoding": b"binary/null"}), Payload()]

    assert payloads == await EncryptionCodec(Keyring.of(KEY)).decode(payloads)


async def test_after_a_rotation_old_payloads_decode_and_new_ones_use_the_new_key() -> None:
    """A keyring of the new and the old key decrypts both; it encrypts with the new one only."""
    old = await encrypted(Keyring.of(OTHER_KEY), plain("old"))
    rotated = EncryptionCodec(Keyring.of(KEY, OTHER_KEY))

    new = await encrypted(rotated.keyring, plain("new"))

    assert [plain("old"), plain("new")] == await rotated.decode([old, new])
    assert Keyring.of(KEY).current.id.encode() == new.metadata[KEY_ID]


def test_the_payload_key_is_the_same_in_every_process_of_one_decision_key() -> None:
    """Two processes with the same decision key agree on the key (and its id); another decision key gives another."""
    assert Keyring.of(KEY).current.id == Keyring.of(KEY).current.id
    assert Keyring.of(KEY).current.id != Keyring.of(OTHER_KEY).current.id


async def test_a_decode_only_codec_needs_a_key_only_for_an_encrypted_payload() -> None:
    """A Replayer's codec encrypts nothing and takes its key only when it meets an encrypted payload."""
    asked: list[str] = []

    def keys() -> Keyring:
        asked.append("key")
        return Keyring.of(KEY)

    codec = EncryptionCodec(keys, encrypt=False)
    passed = await codec.encode([plain()]) + await codec.decode([plain()])
    untouched = list(asked)
    [decoded] = await codec.decode([await encrypted(Keyring.of(KEY), plain())])

    assert ([plain(), plain()], []) == (passed, untouched)
    assert (plain(), ["key"]) == (decoded, asked)


async def test_failure_messages_are_encrypted_with_the_payloads() -> None:
    """An error's message (which may quote a guest's name) leaves the process encrypted, and comes back whole."""
    converter = handoff_data_converter(Keyring.of(KEY))
    failure = Failure()

    await converter.encode_failure(ApplicationError("No table for Ada Lovelace", type="NoTable"), failure)
    sent = failure.SerializeToString()
    back = await converter.decode_failure(failure)  # decodes `failure` in place

    assert b"Ada" not in sent and b"Encoded failure" in sent
    assert isinstance(back, ApplicationError)
    assert ("No table for Ada Lovelace", "NoTable") == (back.message, back.type)


# -- a real run on the dev server -------------------------------------------------------------------------------------


@dataclass
class Run:
    workflow_id: str
    guest: str
    raw: WorkflowHistory
    """The history as anyone with access to Temporal reads it, through a client without the key."""


@pytest.fixture
async def delivered(kit: HandoffKit, temporal_env: WorkflowEnvironment) -> Run:
    """A reservation run to delivery by the kit's worker, its guest's name unique to the test."""
    guest = f"Grace Hopper {uuid.uuid4().hex[:8]}"
    accepted = await kit.send("reservation.confirmed", payloads.reservation(guest__name=guest))
    assert Stage.DELIVERED == (await kit.result(accepted.workflow_id)).stage
    target = temporal_env.client.service_client.config.target_host
    outsider = await Client.connect(target, namespace=kit.client.namespace, data_converter=pydantic_data_converter)
    raw = await outsider.get_workflow_handle(accepted.workflow_id).fetch_history()
    return Run(workflow_id=accepted.workflow_id, guest=guest, raw=raw)


def serialized(history: WorkflowHistory) -> bytes:
    """Every byte of the history's events as Temporal stores them (a payload's data appears here as it is)."""
    return b"".join(event.SerializeToString() for event in history.events)


async def test_a_guests_name_is_not_in_temporals_history_in_clear(
    delivered: Run, kit: HandoffKit, restaurant: RestaurantApp
) -> None:
    """Read without the key, the history holds neither the guest's name nor their phone; the Handoff client reads the
    run, the target system got the name, and the same history decoded with the kit's key holds it."""
    status = await kit.status(delivered.workflow_id)
    readable = await decoded_history(delivered.raw, EncryptionCodec(Keyring.of(kit.decision_key)))

    assert delivered.guest.encode() not in serialized(delivered.raw)
    assert payloads.reservation()["guest"]["phone"].encode() not in serialized(delivered.raw)
    assert delivered.guest == status.payload["guest"]["name"]
    assert [delivered.guest] == [row["guest_name"] for row in restaurant.systems.rows("pos")]
    assert delivered.guest.encode() in serialized(readable)


async def test_a_client_without_the_key_cannot_read_a_runs_payloads(
    delivered: Run, temporal_env: WorkflowEnvironment
) -> None:
    """A plain client (or one with another decision key) gets an error instead of the payload."""
    target = temporal_env.client.service_client.config.target_host
    outsider = await Client.connect(target, data_converter=pydantic_data_converter)
    other = await Client.connect(target, data_converter=handoff_data_converter(Keyring.of(OTHER_KEY)))

    with pytest.raises(KeyError, match="Unknown payload encoding binary/encrypted"):
        await outsider.get_workflow_handle(delivered.workflow_id).query("status")
    with pytest.raises(PayloadDecryptionError, match="does not hold"):
        await other.get_workflow_handle(delivered.workflow_id).query("status")


async def test_an_encrypted_history_replays_with_the_key_and_a_saved_decoded_one_without(
    delivered: Run, kit: HandoffKit, restaurant: RestaurantApp
) -> None:
    """The replay check decrypts with the decision key; the same history saved decoded replays with no key at all."""
    readable = await decoded_history(delivered.raw, EncryptionCodec(Keyring.of(kit.decision_key)))

    with_key = await replay(restaurant, as_async([delivered.raw]), source="test", decision_key=kit.decision_key)
    without = await replay(restaurant, as_async([readable]), source="test", decision_key=None)

    assert (1, 0) == (with_key.replayed, with_key.failed), with_key
    assert (1, 0) == (without.replayed, without.failed), without


# -- the codec endpoint -----------------------------------------------------------------------------------------------


@pytest.fixture
async def codec_endpoint(kit: HandoffKit) -> AsyncIterator[tuple[httpx.AsyncClient, dict[Role, str]]]:
    """The API over the kit with the codec router included (as `create_app` includes its routers), and a token of
    each role."""
    api = create_app(kit.settings, kit.app, client=kit.client, ledger=kit.ledger)
    api.include_router(codec_api.router)
    tokens = {
        role: add_operator(
            kit.ledger,
            f"{role.value}-1",
            ["front-of-house"] if role is Role.OPERATOR else [],
            declared_groups=kit.app.catalog.group_names,
            role=role,
        )
        for role in Role
    }
    async with serving(api) as http:
        yield http, tokens


def as_json(*items: Payload) -> dict[str, Any]:
    """Payloads as protobuf JSON, as Temporal's UI and CLI send them."""
    return {
        "payloads": [
            {
                "metadata": {name: base64.b64encode(value).decode() for name, value in item.metadata.items()},
                "data": base64.b64encode(item.data).decode(),
            }
            for item in items
        ]
    }


def from_json(body: dict[str, Any]) -> list[Payload]:
    """Payloads from protobuf JSON, as the codec endpoint answers (and the CLI prints) them."""
    return [
        Payload(
            metadata={name: base64.b64decode(value) for name, value in item.get("metadata", {}).items()},
            data=base64.b64decode(item.get("data", "")),
        )
        for item in body["payloads"]
    ]


async def test_an_administrator_decodes_a_runs_input_through_the_codec_endpoint(
    delivered: Run, codec_endpoint: tuple[httpx.AsyncClient, dict[Role, str]]
) -> None:
    """The run's start input, sealed in the history, comes back in clear; a plain payload comes back as it was; what
    /encode seals, /decode opens."""
    http, tokens = codec_endpoint
    started = delivered.raw.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    admin = bearer(tokens[Role.ADMINISTRATOR])

    decoded = await http.post("/codec/decode", json=as_json(started, plain()), headers=admin)
    sealed = await http.post("/codec/encode", json=as_json(plain("sealed")), headers=admin)
    opened = await http.post("/codec/decode", json=sealed.json(), headers=admin)

    assert (200, 200, 200) == (decoded.status_code, sealed.status_code, opened.status_code), decoded.text
    clear, passed = from_json(decoded.json())
    assert ENCODING == started.metadata["encoding"]
    assert (b"json/plain", delivered.guest) == (
        clear.metadata["encoding"],
        json.loads(clear.data)["payload"]["guest"]["name"],
    )
    assert plain() == passed
    assert ENCODING == from_json(sealed.json())[0].metadata["encoding"]
    assert [plain("sealed")] == from_json(opened.json())


async def test_only_an_administrator_may_use_the_codec_endpoint(
    delivered: Run, codec_endpoint: tuple[httpx.AsyncClient, dict[Role, str]]
) -> None:
    """Viewers, operators and sources get 403, no token 401; none of them sees the payload."""
    http, tokens = codec_endpoint
    started = delivered.raw.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    body = as_json(started)

    answers = {
        role.value: (await http.post("/codec/decode", json=body, headers=bearer(tokens[role]))).status_code
        for role in (Role.VIEWER, Role.OPERATOR, Role.SOURCE)
    }
    anonymous = await http.post("/codec/decode", json=body)
    encode = await http.post("/codec/encode", json=body, headers=bearer(tokens[Role.VIEWER]))

    assert {"viewer": 403, "operator": 403, "source": 403} == answers
    assert (401, 403) == (anonymous.status_code, encode.status_code)
    assert delivered.guest not in anonymous.text


async def test_a_payload_the_endpoint_cannot_open_is_a_422_saying_why(
    codec_endpoint: tuple[httpx.AsyncClient, dict[Role, str]],
) -> None:
    """A payload of another key, an altered one, or bytes that are not base64: 422 with the reason, nothing else."""
    http, tokens = codec_endpoint
    admin = bearer(tokens[Role.ADMINISTRATOR])
    foreign = await encrypted(Keyring.of(OTHER_KEY), plain())

    [sealed] = from_json((await http.post("/codec/encode", json=as_json(plain()), headers=admin)).json())
    flipped = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))

    other_key = await http.post("/codec/decode", json=as_json(foreign), headers=admin)
    altered = await http.post("/codec/decode", json=as_json(plain(), flipped), headers=admin)
    not_base64 = await http.post("/codec/decode", json={"payloads": [{"data": "%%%"}]}, headers=admin)

    assert (422, "undecodable-payload") == (other_key.status_code, other_key.json()["kind"])
    assert "does not hold" in other_key.json()["detail"]
    assert (422, "undecodable-payload") == (altered.status_code, altered.json()["kind"])
    assert "failed authentication" in altered.json()["detail"]
    assert (422, "malformed-payloads", "payloads[0].data is not base64") == (
        not_base64.status_code,
        not_base64.json()["kind"],
        not_base64.json()["detail"].split(" (")[0],
    )


async def test_temporals_own_cli_shows_a_run_in_clear_through_the_codec_endpoint(
    delivered: Run, codec_endpoint: tuple[httpx.AsyncClient, dict[Role, str]], temporal_env: WorkflowEnvironment
) -> None:
    """`temporal workflow show --codec-endpoint <api>/codec --codec-auth "Bearer <token>"` (the remote codec protocol
    the UI speaks too) shows the run's input in clear to an administrator; without the endpoint, sealed."""
    http, tokens = codec_endpoint
    endpoint = f"{str(http.base_url).rstrip('/')}/codec"
    address = temporal_env.client.service_client.config.target_host

    async def started_input(*codec: str) -> Payload:
        process = await asyncio.create_subprocess_exec(
            *(temporal_binary(), "workflow", "show", "--workflow-id", delivered.workflow_id, "--output", "json"),
            *("--address", address, *codec),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert 0 == process.returncode, err.decode()
        start = json.loads(out)["events"][0]["workflowExecutionStartedEventAttributes"]
        [payload] = from_json(start["input"])
        return payload

    through_codec = await started_input(
        "--codec-endpoint", endpoint, "--codec-auth", f"Bearer {tokens[Role.ADMINISTRATOR]}"
    )
    without = await started_input()

    assert delivered.guest == json.loads(through_codec.data)["payload"]["guest"]["name"]
    assert (ENCODING, False) == (without.metadata["encoding"], delivered.guest.encode() in without.data)
