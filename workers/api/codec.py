"""The codec endpoint: Temporal's UI and CLI show Handoff's encrypted payloads to an administrator through it.

Temporal's "remote codec server" protocol: `POST <endpoint>/decode` (and `/encode`) with a `Payloads` message as
protobuf JSON, `{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`, answered in the same
shape. The UI calls it from the browser (`--ui-codec-endpoint http://api:8000/codec` on the dev server, `codec.endpoint`
in the UI's config), the CLI as `temporal workflow show --codec-endpoint http://api:8000/codec --codec-auth "Bearer
<token>"`. Both also send `X-Namespace`, which is not needed here: the API's key is the same for every namespace.

Only administrators may call it: it turns any payload of any run into clear text, which no other role reads whole
(an operator sees the cases of their groups, through the ledger). Decoding uses the API's own decision key, so it
shows what the API's workers wrote; a payload written with a key the API does not hold, or altered, is a 422 that
says which one.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload

from handoff.schemas.api import ErrorBody
from handoff.schemas.operators import Operator, Role
from handoff.workers.api.auth import AUTH_RESPONSES, require
from handoff.workers.api.context import Ready, api_context
from handoff.workers.api.errors import ApiProblem
from handoff.workers.client import keyring_for
from handoff.workers.codec import EncryptionCodec, PayloadDecryptionError

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/codec", tags=["codec"], responses=AUTH_RESPONSES)

Administrator = Annotated[Operator, require(Role.ADMINISTRATOR)]
"""Whoever may see every payload in clear."""


class CodecPayload(BaseModel):
    """One `temporal.api.common.v1.Payload` as protobuf JSON: bytes as base64."""

    metadata: dict[str, str] = Field(default_factory=dict, description="Metadata values, base64.")
    data: str = Field(default="", description="The payload's bytes, base64.")


class CodecPayloads(BaseModel):
    """A `temporal.api.common.v1.Payloads` message as protobuf JSON, as Temporal's UI and CLI send and expect it."""

    payloads: list[CodecPayload] = Field(default_factory=list)


_CODEC_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "A payload is not base64, or cannot be decrypted with the API's keys."},
}


@router.post(
    "/decode",
    response_model=CodecPayloads,
    summary="Decrypt payloads for Temporal's UI or CLI (administrators)",
    responses=_CODEC_RESPONSES,
)
async def decode(
    body: CodecPayloads, administrator: Administrator, context: Annotated[Ready, Depends(api_context)]
) -> CodecPayloads:
    """Each payload Handoff encrypted, in clear; any other payload as it came."""
    codec, payloads = await _codec(context), _parsed(body)
    try:
        decoded = await codec.decode(payloads)
    except PayloadDecryptionError as error:
        raise ApiProblem(422, str(error), kind="undecodable-payload") from None
    log.info("api.codec.decoded", operator=administrator.name, payloads=len(decoded))
    return _as_json(decoded)


@router.post(
    "/encode",
    response_model=CodecPayloads,
    summary="Encrypt payloads, as a Handoff process would, for Temporal's UI or CLI (administrators)",
    responses=_CODEC_RESPONSES,
)
async def encode(
    body: CodecPayloads, administrator: Administrator, context: Annotated[Ready, Depends(api_context)]
) -> CodecPayloads:
    """Each payload encrypted with the API's current key (what the UI sends when an administrator signals a run)."""
    codec, payloads = await _codec(context), _parsed(body)
    encoded = await codec.encode(payloads)
    log.info("api.codec.encoded", operator=administrator.name, payloads=len(encoded))
    return _as_json(encoded)


async def _codec(context: Ready) -> EncryptionCodec:
    """The codec of the API's decision key (as `POST /cases/{id}/decision` takes it: an API without one is
    misconfigured, a 500 whose log says what to set)."""
    # The development key is read from a file: off the event loop.
    return EncryptionCodec(await asyncio.to_thread(keyring_for, context.settings))


def _parsed(body: CodecPayloads) -> list[Payload]:
    """The body as protobuf payloads; 422 naming the value that is not base64."""
    return [
        Payload(
            metadata={name: _bytes(value, f"payloads[{n}].metadata.{name}") for name, value in item.metadata.items()},
            data=_bytes(item.data, f"payloads[{n}].data"),
        )
        for n, item in enumerate(body.payloads)
    ]


def _bytes(text: str, where: str) -> bytes:
    """Protobuf JSON's bytes: standard or URL-safe base64, padded or not; nothing else (not even stray characters,
    which a lenient decoder would drop, turning a typo into other bytes)."""
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        raise ApiProblem(
            422, f"{where} is not base64 (protobuf JSON's encoding of bytes).", kind="malformed-payloads"
        ) from None


def _as_json(payloads: list[Payload]) -> CodecPayloads:
    return CodecPayloads(
        payloads=[
            CodecPayload(
                metadata={name: base64.b64encode(value).decode() for name, value in payload.metadata.items()},
                data=base64.b64encode(payload.data).decode(),
            )
            for payload in payloads
        ]
    )
