"""A request HTTP cannot read is refused with Handoff's JSON error (`ErrorBody`), not uvicorn's plain text.

The requests are written byte by byte on a raw socket, because no HTTP client sends them; the server is uvicorn with
the API's protocol (`handoff.workers.api.protocol`), in this process over the kit, and `handoff api` as a process.
The reasons quoted are h11's: uvicorn parses with h11 here, as httptools is not installed.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from handoff.schemas.api import ErrorBody
from handoff.workers.api import create_app
from handoff.workers.api.protocol import HTTP_PROTOCOL
from handoff.workers.testkit import HandoffKit
from tests.api.checks import assert_not_started
from tests.runtime import payloads
from tests.runtime.processes import free_port, handoff_env, handoff_process

EVENT = json.dumps(payloads.reservation(reservation__id="R-MALFORMED")).encode()

MALFORMED = {
    "a Content-Length that is not a number": (
        b"POST /events/reservation.confirmed HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        b"Content-Length: abc\r\n\r\n" + EVENT,
        400,
        "bad Content-Length",
    ),
    "a request line that is not one": (b"GARBAGE\r\n\r\n", 400, "illegal request line"),
    "no Host header": (b"GET /healthz HTTP/1.1\r\n\r\n", 400, "Missing mandatory Host: header"),
    "a Transfer-Encoding the server does not speak": (
        b"POST /events/reservation.confirmed HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: gzip\r\n\r\n" + EVENT,
        400,  # h11 hints 501, but the fault is the request's: never a 5xx
        "Only Transfer-Encoding: chunked is supported",
    ),
    "headers that never end": (  # past h11's buffer (16 KiB) before the blank line that ends them
        b"GET /healthz HTTP/1.1\r\nHost: api\r\nX-Padding: " + b"x" * 70_000,
        431,
        "Receive buffer too long",
    ),
}


def test_the_protocol_is_the_one_uvicorn_would_pick_with_its_400_replaced() -> None:
    """h11 without httptools, httptools with it: the API's protocol is a subclass of uvicorn's own choice."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    assert (True, False) == (
        issubclass(HTTP_PROTOCOL, AutoHTTPProtocol),
        HTTP_PROTOCOL.send_400_response is AutoHTTPProtocol.send_400_response,  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_a_malformed_request_is_answered_with_handoffs_json_error(handoffs: HandoffKit, name: str) -> None:
    """The status, an `ErrorBody` of kind malformed-request quoting the parser, a closed connection; nothing starts."""
    request, status, reason = MALFORMED[name]

    async with _served_with_the_api_protocol(handoffs) as port:
        answer = await _raw_exchange(port, request)

    body = ErrorBody.model_validate_json(answer["body"])
    assert (status, "application/json", "close", "malformed-request") == (
        answer["status"],
        answer["headers"]["content-type"],
        answer["headers"]["connection"],
        body.kind,
    )
    assert reason in body.detail and "nothing was started or changed" in body.detail
    await assert_not_started(handoffs, "reservation-to-pos/R-MALFORMED")


async def test_a_wellformed_request_on_the_same_server_is_served_as_ever(handoffs: HandoffKit) -> None:
    """The protocol changes only the answer to what cannot be parsed: a good request still reaches the API."""
    async with _served_with_the_api_protocol(handoffs) as port:
        answer = await _raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")

    assert (200, "ok") == (answer["status"], json.loads(answer["body"])["status"])


async def test_handoff_api_answers_a_bad_content_length_in_json(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """`handoff api` serves with the API's protocol: `Content-Length: abc` is Handoff's 400, not uvicorn's text."""
    port = free_port()
    address = temporal_env.client.service_client.config.target_host
    env = handoff_env(tmp_path, address, "malformed-http", api_port=str(port))

    with handoff_process(["api"], env, tmp_path / "api.log"):
        await _wait_until_serving(port, tmp_path / "api.log")
        answer = await _raw_exchange(port, MALFORMED["a Content-Length that is not a number"][0])

    body = ErrorBody.model_validate_json(answer["body"])
    assert (400, "application/json", "malformed-request") == (
        answer["status"],
        answer["headers"]["content-type"],
        body.kind,
    )
    assert "bad Content-Length" in body.detail


@asynccontextmanager
async def _served_with_the_api_protocol(kit: HandoffKit) -> AsyncIterator[int]:
    """The API over `kit`, served by uvicorn as `handoff api` serves it (its protocol) on a free port: the port."""
    app = create_app(kit.settings, kit.app, client=kit.client, ledger=kit.ledger)
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on connections of a socket that says it is TCP,
    # and without it every answer after a connection's first waits ~40 ms for a delayed ACK (Nagle).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as listener:
        listener.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", http=HTTP_PROTOCOL))
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            if serving.done():
                serving.result()  # the server failed to start: raise its error
            await asyncio.sleep(0.01)
        try:
            yield listener.getsockname()[1]
        finally:
            server.should_exit = True
            await serving


async def _raw_exchange(port: int, request: bytes) -> dict[str, Any]:
    """Send `request` as it is and read the answer until the server closes: status, headers (lower-case), body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return {"status": int(status_line.split(" ")[1]), "headers": headers, "body": body}


async def _wait_until_serving(port: int, log: Path, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
        while asyncio.get_running_loop().time() < deadline:
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"`handoff api` did not serve on port {port} within {timeout}s:\n{log.read_text()}")
