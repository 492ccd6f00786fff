"""Signed events: who sent `POST /events/{event}`, by the source's HMAC signature or an API token.

A source (`handoff sources add NAME --event EVENT`) signs each request with its secret and names itself:

    Handoff-Source: till
    Handoff-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

While it rotates (`handoff sources rotate`) it may send one `v1=` per active secret. The request is refused with a
401 whose `kind` says why: `unsigned` (neither a signature nor an API token), `unknown-source`, `bad-signature`
(malformed, or no `v1` matches an active secret), `stale-signature` (the timestamp is further than
`signature_tolerance_seconds` from the API's clock), `event-not-allowed` (a genuine source, but not of this event)
or `replayed-signature` (the same source sent the same `v1` within the window: the ledger's unique key decides, so
every API process agrees). Everything is checked before the payload is read as an event, so nothing is started.

An API token (`Authorization: Bearer`) is the other way in: an administrator's (or a source role's) token needs no
signature, and is checked as on every route (`auth`); when a request carries one, the token alone decides.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import Depends, Header, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, SecurityScopes

from handoff.activities.ledger.sources import SigningSource, remember_signatures, signing_source
from handoff.schemas.operators import Role
from handoff.workers.api.auth import authorised_caller, bearer, client_address, refuse_if_throttled
from handoff.workers.api.context import Ready, api_context
from handoff.workers.api.errors import ApiProblem
from handoff.workers.request_signing import SIGNATURE_HEADER, sign

log = structlog.get_logger(__name__)

SOURCE_HEADER = "Handoff-Source"


class SignatureRefused(Exception):
    """A signed request that is not let in: `kind` names the reason, the message says what to do."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass(frozen=True)
class Signature:
    """A `Handoff-Signature` header, read: its timestamp and its `v1` values (lower-case hex)."""

    timestamp: int
    v1: tuple[str, ...]


def parse_signature(header: str) -> Signature:
    """Read `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`; unknown schemes are ignored. `SignatureRefused` otherwise."""
    timestamps: list[str] = []
    v1: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamps.append(value.strip())
        elif key == "v1" and value.strip():
            v1.append(value.strip().lower())
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not v1:
        raise SignatureRefused(
            "bad-signature",
            f"The {SIGNATURE_HEADER} header must read `t=<unix seconds>,v1=<hex HMAC-SHA256>` (one `v1` per active "
            "secret), got something else.",
        )
    return Signature(timestamp=int(timestamps[0]), v1=tuple(v1))


def verify(
    source: SigningSource | None,
    name: str,
    event: str,
    signature: Signature,
    body: bytes,
    *,
    now: float,
    tolerance_seconds: float,
) -> list[str]:
    """The `v1` values that `source` really signed `body` with; `SignatureRefused` naming what is wrong otherwise."""
    if source is None:
        raise SignatureRefused(
            "unknown-source",
            f"No event source is named {name!r} ({SOURCE_HEADER}). An administrator adds one with "
            "`handoff sources add NAME --event EVENT`.",
        )
    if abs(now - signature.timestamp) > tolerance_seconds:
        raise SignatureRefused(
            "stale-signature",
            f"The signature's timestamp t={signature.timestamp} is {abs(now - signature.timestamp):.0f} s from the "
            f"API's clock; at most {tolerance_seconds:g} s are allowed. Sign with the current time (and check the "
            "sender's clock).",
        )
    expected = {sign(secret, signature.timestamp, body) for secret in source.secrets}
    matching = [value for value in signature.v1 if any(hmac.compare_digest(value, e) for e in expected)]
    if not matching:
        raise SignatureRefused(
            "bad-signature",
            f"The signature does not match any active secret of source {name!r}: sign `<t>.<raw body>` with "
            "HMAC-SHA256 and the secret `handoff sources add` or `rotate` printed.",
        )
    if event not in source.events:
        allowed = ", ".join(sorted(source.events))
        raise SignatureRefused(
            "event-not-allowed",
            f"Source {name!r} may not send event {event!r} (it may send: {allowed}). An administrator adds a source "
            "for that event with `handoff sources add NAME --event EVENT`.",
        )
    return matching


NOT_GUESSES = frozenset({"stale-signature", "replayed-signature", "event-not-allowed"})
"""Refusals of a sender that holds the secret (a slow clock, a retry, an event it may not send): not counted as bad
credentials. An unknown source or a signature that does not verify is a guess, and counts like a bad token."""


async def _event_sender(
    security_scopes: SecurityScopes,
    event: Annotated[str, Path()],
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    context: Annotated[Ready, Depends(api_context)],
    source_name: Annotated[
        str | None,
        Header(
            alias=SOURCE_HEADER,
            description="The name of the event source that signed the request (not needed with an API token).",
        ),
    ] = None,
    signature_value: Annotated[
        str | None,
        Header(
            alias=SIGNATURE_HEADER,
            description='`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, one `v1` per active secret '
            "of the source (not needed with an API token).",
        ),
    ] = None,
) -> str:
    """The name of whoever sent the event: a source whose signature holds, or the holder of an API token."""
    if credentials is not None:
        return (await authorised_caller(security_scopes, request, credentials, context)).name
    if not source_name or not signature_value:
        raise ApiProblem(
            401,
            f"This event is not signed: send `{SOURCE_HEADER}: <source>` and `{SIGNATURE_HEADER}: t=<unix seconds>,"
            "v1=<hex HMAC-SHA256>` (an administrator adds a source with `handoff sources add`), or an administrator's "
            "`Authorization: Bearer <token>`. Nothing was started.",
            kind="unsigned",
            headers={"WWW-Authenticate": "Bearer"},
        )
    address = client_address(request)
    refuse_if_throttled(context, address)
    tolerance = context.settings.signature_tolerance_seconds
    try:
        signature = parse_signature(signature_value)
        source = await asyncio.to_thread(signing_source, context.ledger, source_name)
        body = await request.body()
        matching = verify(source, source_name, event, signature, body, now=time.time(), tolerance_seconds=tolerance)
        expires_at = datetime.fromtimestamp(signature.timestamp + tolerance, UTC)
        fresh = await asyncio.to_thread(
            remember_signatures, context.ledger, source_name, matching, expires_at=expires_at
        )
        if not fresh:
            raise SignatureRefused(
                "replayed-signature",
                f"This signature of source {source_name!r} was accepted already: sign each event anew (a new "
                "timestamp makes a new signature).",
            )
    except SignatureRefused as refused:
        if refused.kind not in NOT_GUESSES:
            context.failures.record(address)  # a guess at a source or its secret counts like a bad token
        log.warning("api.signature_refused", source=source_name, kind=refused.kind, client=address, event_name=event)
        raise ApiProblem(401, f"{refused} Nothing was started.", kind=refused.kind) from None
    return source_name


EventSender = Annotated[str, Security(_event_sender, scopes=[Role.SOURCE.value, Role.ADMINISTRATOR.value])]
"""Who sent an event: a signing source, or an administrator's (or a source role's) API token."""
