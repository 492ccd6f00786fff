"""Payloads in Temporal encrypted and authenticated with a key only Handoff's processes hold: AES-256-GCM as a
`PayloadCodec`, in the data converter of every Client, Worker and Replayer built with Handoff's plugin.

A run's payloads (the event that started it, with its guests' names and phone numbers; activity inputs and results;
decisions; memos) are stored in Temporal's history. Encrypted there, whoever can read the history (an operator of the
Temporal cluster, a backup, the UI without the codec endpoint) sees ciphertext, and a payload altered in the database
fails to decode instead of reaching the workflow. Failure messages and stack traces move into the encrypted part too
(`DefaultFailureConverterWithEncodedAttributes`), since an error may quote a field's value.

What stays in clear: workflow ids (`<handoff>/<dedupe key>`), search attributes, task queues, activity and workflow
type names, timer durations. A dedupe key must therefore not be personal data.

The key is derived from the decision key (`HANDOFF_DECISION_KEY`, or the development key under `HANDOFF_HOME`) with
HKDF-SHA256 and its own `info` label, rather than being a setting of its own: every process that must read payloads
(worker, API, CLI) already holds that one secret and nothing else holds it, so there is no second secret to
distribute, to forget on one host, or to see drift from the first; the label makes the derived key independent of the
HMAC key decisions are attested with. The price is that the two are rotated together (see `Keyring`).

Each encrypted payload carries the id of its key (`encryption-key-id`, also bound into the authentication tag), so a
keyring holding the previous keys still decodes histories written before a rotation. A payload without the
`binary/encrypted` encoding passes through unchanged: histories written before the codec, and payloads sent by a
client without it, still decode.

A payload is deflated before it is encrypted when that makes it smaller (the JSON of an event, a case, a delivery
mostly does, by half): the history is what Temporal stores, replicates, sends to every worker that replays a run and
keeps for the retention period, and encryption alone adds some 80 bytes to every payload. The form is the first byte
of what is encrypted, where it is authenticated with the rest: a Payload's protobuf never starts with a zero byte (no
field has number 0), so `_DEFLATED` (0) marks a deflated one, and anything else is the Payload itself, as every
payload encrypted before compression was. The price: a payload's length, which Temporal's readers see, now depends on
how repetitive its content is. Someone who can both read histories and place chosen text in many events beside a
value they want could learn about that value from the lengths (the CRIME attack on TLS compression). Handoff's
payloads are business records, not session secrets, and that attacker reads the cluster's database; keep it in mind
before putting secrets such as passwords or API tokens in events.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from handoff.workers.keys import derive_key

ENCODING = b"binary/encrypted"
"""The `encoding` metadata of an encrypted payload (the name Temporal's encryption sample uses)."""
KEY_ID = "encryption-key-id"
"""The metadata naming the key a payload was encrypted with."""

_KEY_INFO = b"handoff/payload-encryption/aes-256-gcm/v1"
_KEY_ID_INFO = b"handoff/payload-encryption/key-id/v1"
_NONCE_BYTES = 12
_DEFLATED = b"\x00"
"""The first plaintext byte of a deflated payload (no serialized Payload starts with it: see the module's text)."""
_DEFLATE_FROM = 64
"""Payloads shorter than this (serialized) are encrypted as they are: deflating them saves nothing."""


class PayloadDecryptionError(ValueError):
    """A payload that says it is encrypted could not be decrypted: an unknown key, or it failed authentication."""


@dataclass(frozen=True)
class PayloadKey:
    """One AES-256-GCM key and its public id, both derived from a secret (the decision key)."""

    id: str
    cipher: AESGCM

    @classmethod
    def derive(cls, secret: bytes) -> PayloadKey:
        """The payload key of `secret`; the id is derived under another label, so it reveals nothing of the key."""
        return cls(id=derive_key(secret, _KEY_ID_INFO, 8).hex(), cipher=AESGCM(derive_key(secret, _KEY_INFO, 32)))


@dataclass(frozen=True)
class Keyring:
    """The key new payloads are encrypted with (the first), and every key old payloads may be decrypted with.

    To rotate the decision key: give every process the new key first and the old one after it (the settings take
    one key today, so `Keyring.of(new, old)` is for code that builds its own converter), until no open run and no
    history you still replay was written with the old one.
    """

    current: PayloadKey
    by_id: Mapping[str, PayloadKey]

    @classmethod
    def of(cls, current: bytes, *previous: bytes) -> Keyring:
        """The keyring of these secrets: encrypting with `current`, decrypting with any of them."""
        keys = [PayloadKey.derive(secret) for secret in (current, *previous)]
        return cls(current=keys[0], by_id={key.id: key for key in reversed(keys)})


KeySource = Keyring | Callable[[], Keyring]
"""A keyring, or what makes it when a payload first needs one (so a process that never meets an encrypted payload
needs no key: a replay of old, unencrypted histories)."""


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole payload (its metadata and data), with a fresh random nonce per payload.

    Args:
        keys: the keyring, or a function that makes it, called once, when a payload first needs a key.
        encrypt: False for a codec that only decodes (a Replayer: nothing it encodes leaves the process, so it
            needs no key for histories that hold no encrypted payload).
    """

    def __init__(self, keys: KeySource, *, encrypt: bool = True) -> None:
        self._keys = keys
        self._keyring: Keyring | None = keys if isinstance(keys, Keyring) else None
        self.encrypts = encrypt

    @property
    def keyring(self) -> Keyring:
        """The keyring, made on first use (an error making it, such as a missing key, is raised each time)."""
        if self._keyring is None:
            assert not isinstance(self._keys, Keyring)
            self._keyring = self._keys()
        return self._keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each payload encrypted with the current key; unchanged when this codec only decodes."""
        if not self.encrypts:
            return list(payloads)
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each encrypted payload decrypted; every other payload unchanged."""
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key = self.keyring.current
        nonce = os.urandom(_NONCE_BYTES)
        sealed = key.cipher.encrypt(nonce, _deflated_if_smaller(payload.SerializeToString()), key.id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key.id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """`payload` decrypted, or itself if it is not encrypted; `PayloadDecryptionError` saying why it cannot be."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        if not key_id:
            raise PayloadDecryptionError(
                f"A payload marked {ENCODING.decode()} names no key ({KEY_ID} is missing): it was not written by "
                "Handoff's codec, or its metadata was altered. Nothing of it was decoded."
            )
        key = self.keyring.by_id.get(key_id)
        if key is None:
            raise PayloadDecryptionError(
                f"A payload was encrypted with key {key_id}, which this process does not hold (it holds "
                f"{', '.join(self.keyring.by_id)}): give it the HANDOFF_DECISION_KEY of the processes that wrote it "
                "(the same value on every worker, API and CLI host)."
            )
        try:
            plain = key.cipher.decrypt(payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise PayloadDecryptionError(
                f"A payload encrypted with key {key_id} failed authentication: it was altered after it was written "
                "(or written with another secret under the same key id). Nothing of it was decoded."
            ) from None
        if plain.startswith(_DEFLATED):
            plain = zlib.decompress(plain[1:], wbits=-zlib.MAX_WBITS)
        return Payload.FromString(plain)


def _deflated_if_smaller(serialized: bytes) -> bytes:
    """The plaintext to encrypt: the serialized payload, deflated behind `_DEFLATED` when that is shorter. Raw deflate
    (no zlib header or checksum): the authentication tag already detects any change."""
    if len(serialized) < _DEFLATE_FROM:
        return serialized
    deflated = _DEFLATED + zlib.compress(serialized, 6, wbits=-zlib.MAX_WBITS)
    return deflated if len(deflated) < len(serialized) else serialized


def handoff_data_converter(
    keys: KeySource, base: DataConverter | None = None, *, encrypt: bool = True
) -> DataConverter:
    """`base` (default: the pydantic converter) with Handoff's payload converter (pydantic models), failure messages
    moved into the payloads, and the encryption codec for `keys` (replacing any codec `base` had)."""
    return dataclasses.replace(
        base or pydantic_data_converter,
        payload_converter_class=pydantic_data_converter.payload_converter_class,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
        payload_codec=EncryptionCodec(keys, encrypt=encrypt),
    )


async def decoded_history(history: WorkflowHistory, codec: PayloadCodec) -> WorkflowHistory:
    """A copy of `history` with every payload decoded by `codec`: to save a history readable by people and by
    replayers without the key (as tests/histories holds them), or to read one."""
    events = [type(event).FromString(event.SerializeToString()) for event in history.events]
    for event in events:
        await _decode_within(event, codec)
    return WorkflowHistory(workflow_id=history.workflow_id, events=events)


async def _decode_within(message: Message, codec: PayloadCodec) -> None:
    """Decode, in place, every payload in `message` and in the messages it holds (fields, lists and maps)."""
    for _field, value in message.ListFields():
        children: Iterable[object]
        if isinstance(value, Message):
            children = [value]
        elif isinstance(value, Mapping):  # map<string, Payload> (memo, header) or map<string, scalar>
            children = value.values()
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):  # a repeated field
            children = value
        else:
            continue
        for child in children:
            if isinstance(child, Payload):
                child.CopyFrom((await codec.decode([child]))[0])
            elif isinstance(child, Message):
                await _decode_within(child, codec)
